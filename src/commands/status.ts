/**
 * `talos-dr status [--json] [--watch]`: every control-plane node's own view of etcd, read by the wizard's one node
 * reader (src/wizard/observe.ts) in one parallel round with short deadlines (a node whose etcd has no quorum makes
 * etcd calls hang until the deadline, and status must stay quick), and the quorum verdict of machines/decisions.ts. Exit 0 whenever it could ask: the verdict is in
 * the output (PRODUCT.md §2).
 */
import { parseArgs } from 'node:util';
import type { CommandContext, CommandRun } from './types.js';
import { EXIT, UsageError } from '../errors.js';
import { loadClientFromFlags } from '../talos/client.js';
import type { TalosClient } from '../talos/types.js';
import { connectMaintenance } from '../talos/maintenance.js';
import { DEFAULT_TALOS_PORT, type TalosContextConfig } from '../talos/talosconfig.js';
import { gatherStatus as gatherReport, isBlank, type StatusReport } from '../wizard/observe.js';
import type { BrokenKind, BrokenMember } from '../../machines/decisions.js';

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

export type { StatusNode, StatusReport } from '../wizard/observe.js';

/** How long status waits for a node that does not answer the Talos API to answer as a blank machine instead. */
const BLANK_CONNECT_MS = 1500;

/** One round of the one node reader (src/wizard/observe.ts) and its verdict, with the status deadline by default. */
export function gatherStatus(
  client: TalosClient,
  nodes: string[],
  opts: { timeoutMs?: number; signal?: AbortSignal; isBlank?: (node: string) => Promise<boolean> } = {},
): Promise<StatusReport> {
  return gatherReport(client, nodes, {
    timeoutMs: opts.timeoutMs ?? statusDeadlineMs(nodes.length),
    ...(opts.signal ? { signal: opts.signal } : {}),
    ...(opts.isBlank ? { isBlank: opts.isBlank } : {}),
  });
}

/**
 * Asks a node that does not answer the Talos API whether it is a blank machine in maintenance mode: maintenance is
 * served on the node's own address, on the port the endpoints use (as the wizard asks, src/wizard/run.ts).
 */
export function blankProbe(config: TalosContextConfig, signal: AbortSignal): (node: string) => Promise<boolean> {
  const port = config.endpoints[0]?.port ?? DEFAULT_TALOS_PORT;
  const address = (node: string) =>
    node.includes(':') && !node.startsWith('[') ? `[${node}]:${port}` : `${node}:${port}`;
  const connect = (node: string) => connectMaintenance(address(node), { connectTimeoutMs: BLANK_CONNECT_MS, signal });
  return (node) => isBlank({ connectMaintenance: connect }, node);
}

/**
 * The JSON object of PRODUCT.md §2, one line. Raft indices are written as JSON numbers from their exact digits.
 * `broken` (the members to replace while quorum holds: node, memberId, name, kind, why) and `alarms` (memberId, node,
 * alarm) are always arrays, empty when there is nothing to list.
 */
export function statusJson(report: StatusReport): string {
  const marker = (n: bigint) => `\u0000big:${n.toString()}\u0000`;
  const object = {
    verdict: report.verdict,
    reason: report.reason,
    freshest: report.freshest,
    broken: (report.broken ?? []).map((b) => ({
      node: b.node,
      memberId: b.memberId,
      name: b.name,
      kind: b.kind,
      why: b.why,
    })),
    alarms: (report.alarms ?? []).map((a) => ({ memberId: a.memberId, node: a.node, alarm: a.alarm })),
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

/** The verdict as the table's last line names it. */
const VERDICT_WORDS: Record<StatusReport['verdict'], string> = {
  healthy: 'healthy',
  degraded: 'degraded, members to replace',
  nospace: 'NOSPACE, the cluster is read-only',
  lost: 'lost',
  unknown: 'unknown',
};

/** What the BROKEN column and the member list say for each kind. */
const KIND_WORDS: Record<BrokenKind, string> = {
  unreachable: 'not answering',
  'etcd-failing': 'etcd failing',
  blank: 'blank machine',
  learner: 'learner',
};

/** The lines under the table naming each member to replace: its node (or none), kind, member id, and why. */
function brokenLines(broken: readonly BrokenMember[]): string[] {
  if (broken.length === 0) return [];
  return [
    '',
    `Member${broken.length === 1 ? '' : 's'} to replace:`,
    ...broken.map(
      (b) =>
        `  ${b.node ?? '(no node given)'}  ${KIND_WORDS[b.kind]}  member ${b.memberId ?? 'unknown'}${b.name ? ` (${b.name})` : ''}: ${b.why}`,
    ),
  ];
}

/**
 * A small table and the verdict sentence, for people. The ALARMS and BROKEN columns appear when some node has an
 * alarm or a member to replace (a healthy cluster's table stays as narrow as before); the members to replace follow
 * the table with their member id and why.
 */
export function statusText(report: StatusReport): string {
  const alarms = report.alarms ?? [];
  const broken = report.broken ?? [];
  const alarmsOf = (node: string) => [...new Set(alarms.filter((a) => a.node === node).map((a) => a.alarm))];
  const brokenOf = (node: string) => broken.find((b) => b.node === node);
  const attention = alarms.length > 0 || broken.length > 0;
  const header = [
    ...['NODE', 'HOSTNAME', 'TYPE', 'ETCD', 'HEALTHY', 'MEMBERS', 'APPLIED INDEX'],
    ...(attention ? ['ALARMS', 'BROKEN'] : []),
  ];
  const rows = report.nodes.map((n) => {
    const kind = brokenOf(n.node)?.kind;
    return [
      n.node,
      n.hostname ?? '-',
      n.reachable ? n.machineType : brokenOf(n.node)?.kind === 'blank' ? 'maintenance' : 'unreachable',
      n.etcdService ?? '-',
      yesNo(n.healthy),
      n.members ? String(n.members.length) : '-',
      n.raftAppliedIndex?.toString() ?? '-',
      ...(attention ? [alarmsOf(n.node).join(',') || '-', kind ? KIND_WORDS[kind] : '-'] : []),
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  const notes = report.nodes.filter((n) => n.error).map((n) => `  ${n.error}`);
  const unplaced = alarms
    .filter((a) => a.node === null)
    .map((a) => `  Alarm ${a.alarm} on member ${a.memberId}, which matches no node given.`);
  const freshest = report.freshest ? [`Freshest member (best snapshot source): ${report.freshest}`] : [];
  return [
    line(header),
    ...rows.map(line),
    ...(notes.length || unplaced.length ? ['', ...notes, ...unplaced] : []),
    ...brokenLines(broken),
    '',
    `Verdict: ${VERDICT_WORDS[report.verdict]}. ${report.reason}`,
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
      const report = await gatherStatus(client, nodes, { signal: ctx.signal, isBlank: blankProbe(config, ctx.signal) });
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
