/**
 * `talos-dr status [--json] [--watch]`: every control-plane node's own view of etcd, asked in one parallel round
 * with short deadlines (a node whose etcd has no quorum makes etcd calls hang until the deadline, and status must
 * stay quick), and the quorum verdict of machines/decisions.ts. Exit 0 whenever it could ask: the verdict is in
 * the output (PRODUCT.md §2).
 */
import { parseArgs } from 'node:util';
import type { CommandContext, CommandRun } from './types.js';
import { EXIT, UsageError } from '../errors.js';
import { loadClientFromFlags } from '../talos/client.js';
import { describeFailure } from '../talos/errors.js';
import type { EtcdMember, MachineType, NodeResult, ServiceInfo, TalosClient } from '../talos/types.js';
import { computeVerdict, type NodeObservation, type VerdictResult } from '../../machines/decisions.js';

const USAGE = 'talos-dr status [--json] [--watch]';
/** Deadline of each status call: long enough for a healthy node across a WAN, short enough for a lost cluster. */
export const STATUS_TIMEOUT_MS = 4000;
/**
 * Past a handful of nodes the answers also wait on this process decoding them (every member answers the member list
 * with every member: 40 000 entries a round at 200 nodes), so the deadline grows a little with each node; otherwise
 * a large healthy cluster on a busy machine shows up as unreachable.
 */
export const statusDeadlineMs = (nodeCount: number): number => STATUS_TIMEOUT_MS + Math.max(0, nodeCount - 5) * 25;
const WATCH_INTERVAL_MS = 2000;

export interface StatusNode {
  node: string;
  hostname: string | null;
  reachable: boolean;
  machineType: MachineType;
  etcdService: string | null;
  healthy: boolean | null;
  members: { id: string; name: string; peerUrls: string[]; isLearner: boolean }[] | null;
  /** decimal digits of a uint64, written into JSON as a number without passing through a JS number */
  raftAppliedIndex: bigint | null;
  error: string | null;
}

export interface StatusReport extends VerdictResult {
  nodes: StatusNode[];
}

const settle = async <T>(promise: Promise<NodeResult<T>>, node: string): Promise<NodeResult<T>> => {
  try {
    return await promise;
  } catch (error) {
    return { node, ok: false, error: { code: 2, codeName: 'Unknown', message: (error as Error).message } };
  }
};

const byNode = <T>(results: NodeResult<T>[]) => new Map(results.map((r) => [r.node, r]));

/** One round: Version, ServiceList, EtcdMemberList(query_local) and EtcdStatus fanned out, machine type per node. */
export async function gatherStatus(
  client: TalosClient,
  nodes: string[],
  opts: { timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<StatusReport> {
  const call = {
    timeoutMs: opts.timeoutMs ?? statusDeadlineMs(nodes.length),
    ...(opts.signal ? { signal: opts.signal } : {}),
  };
  const [versions, services, members, statuses, types] = await Promise.all([
    client.version(nodes, call).then(byNode),
    client.serviceList(nodes, call).then(byNode),
    client.etcdMemberList(nodes, true, call).then(byNode),
    client.etcdStatus(nodes, call).then(byNode),
    Promise.all(nodes.map((node) => settle(client.machineType(node, call), node))).then(byNode),
  ]);
  const observations: NodeObservation[] = [];
  const rows: StatusNode[] = [];
  for (const node of nodes) {
    const version = versions.get(node);
    const service = services.get(node);
    const memberList = members.get(node);
    const status = statuses.get(node);
    const type = types.get(node);
    const reachable = Boolean(version?.ok);
    const etcd: ServiceInfo | undefined = service?.ok ? service.value.find((s) => s.id === 'etcd') : undefined;
    const healthy = etcd && !etcd.health.unknown ? etcd.health.healthy : null;
    const ownMembers: EtcdMember[] | null = memberList?.ok ? memberList.value : null;
    const memberId = status?.ok ? status.value.memberId : null;
    const self = ownMembers?.find((m) => m.id === memberId);
    const firstFailure = [version, service, memberList, status].find((r) => r && !r.ok);
    const error =
      firstFailure && !firstFailure.ok
        ? describeFailure(
            node,
            firstFailure.error,
            failedAction(firstFailure, {
              version,
              service,
              memberList,
              status,
            }),
          )
        : null;
    observations.push({
      node,
      hostname: self?.hostname ?? null,
      reachable,
      machineType: type?.ok ? type.value : 'unknown',
      etcdService: etcd?.state ?? null,
      etcdHealthy: healthy,
      etcdLastEvent: etcd?.events.at(-1)?.msg ?? null,
      members: reachable ? ownMembers : null,
      membersError: memberList && !memberList.ok ? memberList.error.message : null,
      status: reachable && status?.ok ? status.value : null,
      statusError: status && !status.ok ? status.error.message : null,
      error,
    });
    rows.push({
      node,
      hostname: self?.hostname ?? null,
      reachable,
      machineType: type?.ok ? type.value : 'unknown',
      etcdService: etcd?.state ?? null,
      healthy,
      members:
        ownMembers?.map((m) => ({ id: m.id, name: m.hostname, peerUrls: m.peerUrls, isLearner: m.isLearner })) ?? null,
      raftAppliedIndex: status?.ok ? status.value.raftAppliedIndex : null,
      error,
    });
  }
  return { ...computeVerdict(observations), nodes: rows };
}

function failedAction(
  failed: NodeResult<unknown>,
  calls: Record<'version' | 'service' | 'memberList' | 'status', NodeResult<unknown> | undefined>,
): string {
  if (failed === calls.version) return 'the version check';
  if (failed === calls.service) return 'the service list';
  if (failed === calls.memberList) return 'the etcd member list';
  return 'etcd status';
}

/** The JSON object of PRODUCT.md §2, one line. Raft indices are written as JSON numbers from their exact digits. */
export function statusJson(report: StatusReport): string {
  const marker = (n: bigint) => `\u0000big:${n.toString()}\u0000`;
  const object = {
    verdict: report.verdict,
    reason: report.reason,
    freshest: report.freshest,
    nodes: report.nodes.map((n) => ({
      node: n.node,
      hostname: n.hostname,
      reachable: n.reachable,
      machineType: n.machineType,
      etcdService: n.etcdService,
      healthy: n.healthy,
      members: n.members,
      raftAppliedIndex: n.raftAppliedIndex === null ? null : marker(n.raftAppliedIndex),
      error: n.error,
    })),
  };
  return JSON.stringify(object).replace(/"\\u0000big:(\d+)\\u0000"/g, '$1');
}

const yesNo = (value: boolean | null) => (value === null ? '?' : value ? 'yes' : 'no');

/** A small table and the verdict sentence, for people. */
export function statusText(report: StatusReport): string {
  const header = ['NODE', 'HOSTNAME', 'TYPE', 'ETCD', 'HEALTHY', 'MEMBERS', 'APPLIED INDEX'];
  const rows = report.nodes.map((n) => [
    n.node,
    n.hostname ?? '-',
    n.reachable ? n.machineType : 'unreachable',
    n.etcdService ?? '-',
    yesNo(n.healthy),
    n.members ? String(n.members.length) : '-',
    n.raftAppliedIndex?.toString() ?? '-',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  const notes = report.nodes.filter((n) => n.error).map((n) => `  ${n.error}`);
  const freshest = report.freshest ? [`Freshest member (best snapshot source): ${report.freshest}`] : [];
  return [
    line(header),
    ...rows.map(line),
    ...(notes.length ? ['', ...notes] : []),
    '',
    `Verdict: ${report.verdict}. ${report.reason}`,
    ...freshest,
  ].join('\n');
}

function parseStatusArgs(args: string[]): { json: boolean; watch: boolean } {
  try {
    const { values } = parseArgs({
      args,
      options: { json: { type: 'boolean' }, watch: { type: 'boolean' } },
      strict: true,
      allowPositionals: false,
    });
    return { json: values.json === true, watch: values.watch === true };
  } catch (error) {
    const detail = error instanceof Error ? (error.message.split('\n')[0] ?? '') : String(error);
    throw new UsageError(`${detail.replace(/\.$/, '')}; usage: ${USAGE}.`);
  }
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });

const run: CommandRun = async (ctx: CommandContext) => {
  const { json, watch } = parseStatusArgs(ctx.args);
  const { client, config } = loadClientFromFlags(ctx.global, ctx.io.env);
  try {
    const nodes = config.nodes;
    if (nodes.length === 0) {
      throw new UsageError(
        `No nodes to ask: pass the control-plane nodes with -n (e.g. -n 10.0.0.2,10.0.0.3,10.0.0.4) or add them to the talosconfig context "${config.contextName}".`,
      );
    }
    const clearScreen = watch && !json && ctx.io.stdout.isTTY;
    for (;;) {
      const report = await gatherStatus(client, nodes, { signal: ctx.signal });
      if (ctx.signal.aborted) return EXIT.ok;
      const text = json ? statusJson(report) : statusText(report);
      const stamp = watch && !json ? `${new Date().toISOString().slice(11, 19)} UTC — every 2 s, Ctrl-C to stop\n` : '';
      ctx.io.stdout.write(`${clearScreen ? '\u001b[2J\u001b[H' : ''}${stamp}${text}\n${watch && !json ? '\n' : ''}`);
      if (!watch) return report.nodes.some((n) => n.reachable) ? EXIT.ok : unreachable(ctx, report);
      await sleep(WATCH_INTERVAL_MS, ctx.signal);
      if (ctx.signal.aborted) return EXIT.ok;
    }
  } finally {
    client.close();
  }
};

/** No node answered at all: the output says so per node; the exit code says the cluster could not be asked. */
function unreachable(ctx: CommandContext, report: StatusReport): number {
  const first = report.nodes[0]?.error;
  ctx.io.stderr.write(`No node answered. ${first ?? 'Check the endpoints (-e) and that the nodes are up.'}\n`);
  return EXIT.failure;
}

export default run;
