/**
 * The one reader of node state: every node's own view, asked in one parallel round with short deadlines (a node
 * whose etcd has lost quorum makes etcd calls wait until the deadline). `status` prints it; the wizard keeps it in
 * the machine's context and on its live node table.
 *
 * The quorum verdict rests on EtcdStatus from every control-plane node. Real Talos answers EtcdMemberList only with
 * a leader, even with query_local (siderolabs/talos:
 * internal/app/machined/internal/server/v1alpha1/v1alpha1_server.go@v1.11.6:1784 sets clientv3.WithRequireLeader;
 * ../shared/talos-behaviour-facts.md §2), so after a quorum loss every node fails it with "etcdserver: no leader":
 * that failure is what the member list does without a leader, not a fault of the node, and is explained once.
 */
import type {
  EtcdMember,
  EtcdMemberAlarm,
  EtcdMemberStatus,
  MachineType,
  MaintenanceClient,
  NodeResult,
  RpcFailure,
  ServiceInfo,
  TalosClient,
  VersionInfo,
} from '../talos/types.js';
import { cutNote, cutOf } from '../talos/bounded.js';
import { classifyFailure, describeFailure } from '../talos/errors.js';
import { computeVerdict, type NodeObservation, type VerdictResult } from '../../machines/decisions.js';
import type { NodeView } from '../../machines/recovery-types.js';
import { statusTimeout, type EffectDeps } from './deps.js';

/** Talos keeps this many events per service; a full list may have lost its oldest (boot-time) entries. */
const SERVICE_EVENTS_KEPT = 64;

/** What one round of calls got from one node; a call not made (or not answered) is undefined. */
export interface NodeReading {
  node: string;
  version: NodeResult<VersionInfo> | undefined;
  service: NodeResult<ServiceInfo[]> | undefined;
  members: NodeResult<EtcdMember[]> | undefined;
  status: NodeResult<EtcdMemberStatus> | undefined;
  type: NodeResult<MachineType> | undefined;
  /** the machine's own hostname (COSI HostnameStatuses), when the client can ask for it */
  hostname?: NodeResult<string> | undefined;
  /** EtcdAlarmList: the cluster's active alarms as this node's etcd lists them (needs quorum) */
  alarms?: NodeResult<EtcdMemberAlarm[]> | undefined;
}

const byNode = <T>(results: NodeResult<T>[]): Map<string, NodeResult<T>> => new Map(results.map((r) => [r.node, r]));

const thrown = (error: unknown): RpcFailure => ({
  code: 14,
  codeName: 'Unavailable',
  message: error instanceof Error ? (error.message.split('\n')[0] ?? 'failed') : String(error),
});

/** A fan-out call that threw (the endpoint itself failed, or a client without it) becomes one failure per node. */
async function settle<T>(call: () => Promise<NodeResult<T>[]>, nodes: string[]): Promise<Map<string, NodeResult<T>>> {
  try {
    return byNode(await call());
  } catch (error) {
    return byNode(nodes.map((node) => ({ node, ok: false as const, error: thrown(error) })));
  }
}

/** A per-node COSI call; one that throws fails only its own node. */
function perNode<T>(
  nodes: string[],
  ask: (node: string) => Promise<NodeResult<T>>,
): Promise<Map<string, NodeResult<T>>> {
  return Promise.all(
    nodes.map((node) =>
      ask(node).catch((error: unknown): NodeResult<T> => ({ node, ok: false, error: thrown(error) })),
    ),
  ).then(byNode);
}

/**
 * How long the alarm list may still take once every other call of the round has answered. Talos answers
 * EtcdAlarmList from the local etcd member with the whole cluster's alarms (siderolabs/talos:
 * internal/app/machined/internal/server/v1alpha1/v1alpha1_server.go@v1.14.0-rc.1:2092-2118), which etcd reads through
 * raft (etcd-io/etcd: server/etcdserver/v3_server.go@v3.6.4:482-488, 777-781): without a leader raft takes no
 * proposal (etcd-io/raft: node.go@v3.6.0:370-378) and the call waits until the request times out, so after a quorum
 * loss it would hold every round to its deadline. The alarms are in EtcdStatus's
 * errors too (machines/verdict.ts), so a list that has not answered by then is dropped, not waited for.
 */
const ALARM_LIST_GRACE_MS = 300;

/**
 * One round: Version, ServiceList, EtcdMemberList(query_local), EtcdStatus, EtcdAlarmList fanned out; the machine
 * type and the hostname per node (COSI). The alarm list never makes the round longer than the other calls (plus a
 * short grace).
 */
export async function readNodes(
  client: TalosClient,
  nodes: string[],
  opts: { timeoutMs: number; signal?: AbortSignal },
): Promise<NodeReading[]> {
  if (nodes.length === 0) return [];
  const call = { timeoutMs: opts.timeoutMs, ...(opts.signal ? { signal: opts.signal } : {}) };
  const hostname = client.hostname?.bind(client);
  const dropAlarms = new AbortController();
  const alarmSignal = opts.signal ? AbortSignal.any([opts.signal, dropAlarms.signal]) : dropAlarms.signal;
  const pendingAlarms = settle(() => client.etcdAlarmList(nodes, { ...call, signal: alarmSignal }), nodes);
  const [versions, services, members, statuses, types, hostnames] = await Promise.all([
    settle(() => client.version(nodes, call), nodes),
    settle(() => client.serviceList(nodes, call), nodes),
    settle(() => client.etcdMemberList(nodes, true, call), nodes),
    settle(() => client.etcdStatus(nodes, call), nodes),
    perNode(nodes, (node) => client.machineType(node, call)),
    hostname ? perNode(nodes, (node) => hostname(node, call)) : Promise.resolve(new Map<string, NodeResult<string>>()),
  ]);
  const alarms = await withinGrace(pendingAlarms, ALARM_LIST_GRACE_MS, () => dropAlarms.abort());
  return nodes.map((node) => ({
    node,
    version: versions.get(node),
    service: services.get(node),
    members: members.get(node),
    status: statuses.get(node),
    type: types.get(node),
    hostname: hostnames.get(node),
    alarms: alarms?.get(node),
  }));
}

/** The value if it settles within `ms`, else null (and `giveUp` is called so the call ends too). */
async function withinGrace<T>(pending: Promise<T>, ms: number, giveUp: () => void): Promise<T | null> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<null>((resolve) => {
    timer = setTimeout(() => resolve(null), ms);
  });
  const value = await Promise.race([pending, late]);
  clearTimeout(timer);
  if (value === null) giveUp();
  return value;
}

/** The member list failed because etcd has no leader: what it always does then (facts §2), not a node fault. */
export function isNoLeader(result: NodeResult<unknown> | undefined): boolean {
  return Boolean(result && !result.ok && /no leader/i.test(result.error.message));
}

/**
 * A member list cut by the client's bounds (more members than any real cluster has) is damaged or not from a Talos
 * node: it is unknown, never counted as voters.
 */
const membersCut = (r: NodeReading): string | null =>
  r.members?.ok ? cutNote(r.node, 'etcd member list', r.members.value) : null;

const usableMembers = (r: NodeReading): r is NodeReading & { members: { ok: true; value: EtcdMember[] } } =>
  Boolean(r.members?.ok && !cutOf(r.members.value));

const etcdOf = (r: NodeReading): ServiceInfo | undefined =>
  r.service?.ok ? r.service.value.find((s) => s.id === 'etcd') : undefined;

/**
 * The node's hostname: the machine's own (COSI HostnameStatuses, answered without etcd), else its etcd member name
 * (Talos names members by hostname) from its own member list, which answers only with a leader (facts §2).
 */
function ownHostname(r: NodeReading): string | null {
  if (r.hostname?.ok) return r.hostname.value;
  if (!usableMembers(r) || !r.status?.ok) return null;
  const id = r.status.value.memberId;
  return r.members.value.find((m) => m.id === id)?.hostname ?? null;
}

/** The sentence for a node that answered but whose calls failed: the first real fault, never a missing leader. */
function nodeFault(r: NodeReading): string | null {
  const calls: [NodeResult<unknown> | undefined, string][] = [
    [r.version, 'the version check'],
    [r.service, 'the service list'],
    [isNoLeader(r.members) ? undefined : r.members, 'the etcd member list'],
    [r.status, 'etcd status'],
  ];
  const failed = calls.find(([result]) => result && !result.ok);
  if (!failed) return null;
  const [result, action] = failed as [NodeResult<unknown> & { ok: false }, string];
  return describeFailure(r.node, result.error, action);
}

/** One node's reading as the observation the decisions and the machine read. */
export function viewOf(r: NodeReading, opts: { maintenance?: boolean; hostname?: string | null } = {}): NodeView {
  const reachable = Boolean(r.version?.ok);
  if (!reachable) {
    const blank = opts.maintenance === true;
    return {
      node: r.node,
      hostname: opts.hostname ?? null,
      reachable: false,
      maintenance: blank,
      machineType: 'unknown',
      etcdService: null,
      etcdHealthy: null,
      members: null,
      membersError: null,
      status: null,
      statusError: null,
      error: blank
        ? `${r.node} is a blank machine in maintenance mode`
        : r.version && !r.version.ok
          ? describeFailure(r.node, r.version.error)
          : 'no answer',
      talosVersion: null,
    };
  }
  const etcd = etcdOf(r);
  const events = etcd?.events.map((e) => e.msg) ?? [];
  const s = r.status;
  const cut = membersCut(r);
  return {
    node: r.node,
    hostname: ownHostname(r) ?? opts.hostname ?? null,
    reachable: true,
    maintenance: false,
    machineType: r.type?.ok ? r.type.value : 'unknown',
    etcdService: etcd?.state ?? null,
    etcdHealthy: etcd ? (etcd.health.unknown ? null : etcd.health.healthy) : null,
    etcdLastEvent: events.at(-1) ?? null,
    etcdEvents: events.slice(-8),
    etcdHistoryStart: etcd && etcd.events.length < SERVICE_EVENTS_KEPT ? (etcd.events[0]?.ts ?? null) : null,
    members: usableMembers(r) ? r.members.value : null,
    membersError: cut ?? (r.members && !r.members.ok ? r.members.error.message : null),
    status: s?.ok
      ? {
          memberId: s.value.memberId,
          leader: s.value.leader,
          errors: s.value.errors,
          raftAppliedIndex: s.value.raftAppliedIndex.toString(),
        }
      : null,
    statusError: s && !s.ok ? s.error.message : null,
    // an EtcdStatus that could not be decoded is a protocol mismatch: it says nothing about this node's etcd
    statusUnreadable: Boolean(s && !s.ok && classifyFailure(s.error) === 'undecodable-answer'),
    statusTimedOut: Boolean(s && !s.ok && classifyFailure(s.error) === 'deadline'),
    alarms: r.alarms?.ok ? r.alarms.value : null,
    error: cut,
    talosVersion: r.version?.ok ? r.version.value.tag : null,
  };
}

/** Is this node a blank machine answering only the maintenance API? */
export async function isBlank(deps: Pick<EffectDeps, 'connectMaintenance'>, node: string): Promise<boolean> {
  if (!deps.connectMaintenance) return false;
  let m: MaintenanceClient | null = null;
  try {
    m = await deps.connectMaintenance(node);
    await m.machineType({ timeoutMs: 3000 });
    return true;
  } catch {
    return false;
  } finally {
    m?.close();
  }
}

/** Hostnames seen so far per session: a member list answers only with a leader, the hostname stays the same. */
const seenHostnames = new WeakMap<EffectDeps, Map<string, string>>();

/**
 * Every node's local view, side by side (PRODUCT.md §1 step 2). Never throws: a node that cannot be asked says so,
 * and a node that does not answer the Talos API is asked whether it is a blank machine in maintenance mode.
 */
export async function observeNodes(deps: EffectDeps, nodes: string[]): Promise<NodeView[]> {
  // short deadlines instead of the run's signal: a live view ends on its own within one deadline
  const readings = await readNodes(deps.client, nodes, { timeoutMs: statusTimeout(deps) });
  let names = seenHostnames.get(deps);
  if (!names) seenHostnames.set(deps, (names = new Map()));
  const known = names;
  return Promise.all(
    readings.map(async (r) => {
      const blank = r.version?.ok ? false : await isBlank(deps, r.node);
      const view = viewOf(r, { maintenance: blank, hostname: known.get(r.node) ?? null });
      if (view.hostname) known.set(r.node, view.hostname);
      return view;
    }),
  );
}

// ---- status ----------------------------------------------------------------------------------------------------

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

/** The verdict and one row per node, from one round of readNodes; `blank` names the blank machines found. */
export function statusReport(readings: readonly NodeReading[], blank: ReadonlySet<string> = new Set()): StatusReport {
  const observations: NodeObservation[] = [];
  const rows: StatusNode[] = [];
  for (const r of readings) {
    const view = viewOf(r, { maintenance: blank.has(r.node) });
    const error = nodeFault(r) ?? view.error ?? null;
    observations.push({ ...view, error });
    rows.push({
      node: r.node,
      hostname: view.hostname,
      reachable: view.reachable,
      machineType: view.machineType,
      etcdService: view.etcdService,
      healthy: view.etcdHealthy,
      members:
        view.members?.map((m) => ({ id: m.id, name: m.hostname, peerUrls: m.peerUrls, isLearner: m.isLearner })) ??
        null,
      raftAppliedIndex: r.status?.ok ? r.status.value.raftAppliedIndex : null,
      error,
    });
  }
  return { ...computeVerdict(observations), nodes: rows };
}

/**
 * One status round and its verdict. With `isBlank`, each node that does not answer the Talos API is asked whether it
 * is a blank machine in maintenance mode (the verdict's `blank` kind), as the wizard's observeNodes does.
 */
export async function gatherStatus(
  client: TalosClient,
  nodes: string[],
  opts: { timeoutMs: number; signal?: AbortSignal; isBlank?: (node: string) => Promise<boolean> },
): Promise<StatusReport> {
  const readings = await readNodes(client, nodes, opts);
  const blank = new Set<string>();
  const probe = opts.isBlank;
  if (probe)
    await Promise.all(
      readings
        .filter((r) => !r.version?.ok)
        .map(async (r) => {
          if (await probe(r.node).catch(() => false)) blank.add(r.node);
        }),
    );
  return statusReport(readings, blank);
}
