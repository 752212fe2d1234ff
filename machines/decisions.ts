/**
 * The recovery's decisions as pure functions: no I/O, no clock, no xstate. The machine, `status` and the drill score
 * all call these, so a decision is made the same way everywhere and is unit-tested on its own.
 */
import type { EtcdMember, EtcdMemberAlarm, EtcdMemberStatus, EtcdVolumeKind, MachineType } from '../src/talos/types.js';
import type { SnapshotReport } from '../src/etcd/types.js';
import { isControlPlane } from './verdict.js';

/** Everything one node said about itself when asked (its *local* view). A field it could not answer is null. */
export interface NodeObservation {
  /** the address as given (-n or the talosconfig's nodes) */
  node: string;
  hostname: string | null;
  /** answered the authenticated (mTLS) API */
  reachable: boolean;
  /** a blank machine that answers only the maintenance API: it holds no etcd data */
  maintenance?: boolean;
  machineType: MachineType;
  /** the etcd service's Talos state (Running, Preparing, Waiting, Failed, Finished, …) or null */
  etcdService: string | null;
  /** the etcd service's health check; null when unknown */
  etcdHealthy: boolean | null;
  /** the newest etcd service event message (says what a Waiting node waits for) */
  etcdLastEvent?: string | null;
  /** EtcdMemberList with query_local */
  members: EtcdMember[] | null;
  membersError: string | null;
  /** EtcdStatus (the client's EtcdMemberStatus fits; indices may also be decimal strings, as kept in JSON) */
  status: ObservedStatus | null;
  statusError: string | null;
  /** the node answered EtcdStatus with bytes that could not be decoded: a protocol mismatch, not an etcd verdict */
  statusUnreadable?: boolean;
  /** EtcdStatus did not answer within the read's deadline (a slow machine, or an etcd that is not ready) */
  statusTimedOut?: boolean;
  /**
   * EtcdAlarmList: the whole cluster's active alarms as this node's etcd lists them; null or absent when it could not
   * (etcd reads alarms through raft, so the list needs quorum; EtcdStatus's errors still name them without it)
   */
  alarms?: EtcdMemberAlarm[] | null;
  /** sentence for a node that could not be asked at all */
  error?: string | null;
}

/**
 * What the assessment found, which decides the path: nothing to do (healthy), replace the broken members while quorum
 * holds (degraded), clear a full database (nospace: an etcd NOSPACE alarm, the cluster is read-only), the full
 * recovery (lost), or ask again (unknown).
 */
export type Verdict = 'healthy' | 'degraded' | 'nospace' | 'lost' | 'unknown';

/** Why a member counts as broken while quorum holds. */
export type BrokenKind =
  /** the node does not answer (powered off, network): it may come back, so it is waited for before any removal */
  | 'unreachable'
  /** the node answers but its etcd is crash-looping, Failed, or not healthy */
  | 'etcd-failing'
  /** a blank machine in maintenance mode answers at the node's address: the old member's data is gone */
  | 'blank'
  /** a learner that was never promoted (a join that did not finish) */
  | 'learner';

/** One member to replace, as the assessment found it. */
export interface BrokenMember {
  /** the node address given to the tool, when the member maps to one */
  node: string | null;
  /** the etcd member id (16 hex digits) read from a *different*, healthy node's member list; null when not listed */
  memberId: string | null;
  /** the etcd member name (Talos uses the hostname); null for a learner that has not started (etcd lists it empty) */
  name: string | null;
  kind: BrokenKind;
  /** one sentence shown on screen and journalled */
  why: string;
}

/** An etcd alarm as one member listed it. */
export interface AlarmSeen {
  memberId: string;
  /** the node address of that member, when known */
  node: string | null;
  alarm: 'NOSPACE' | 'CORRUPT';
}

export interface VerdictResult {
  verdict: Verdict;
  /** one sentence saying why */
  reason: string;
  /** the node with the highest raft applied index among those whose etcd answered, or null */
  freshest: string | null;
  /** degraded: the members to replace (absent in incident folders saved before this field existed) */
  broken?: BrokenMember[];
  /** the active alarms any member listed (absent when none, and in older incident folders) */
  alarms?: AlarmSeen[];
}

/** The part of EtcdStatus the decisions read. 64-bit values are bigint or decimal/hex strings, never JS numbers. */
export type ObservedStatus = Pick<EtcdMemberStatus, 'memberId' | 'leader' | 'errors'> & {
  raftAppliedIndex: bigint | string;
};

/** How one node's local view counts towards quorum. */
export type MemberHealth = 'healthy' | 'broken' | 'unknown';

// the verdict itself (quorum, broken members, alarms) lives in machines/verdict.ts; callers import it from here
export {
  alarmInStatusError,
  brokenSummary,
  computeVerdict,
  freshestMember,
  isControlPlane,
  memberHealth,
  memberListNeedsLeader,
  quorumSize,
} from './verdict.js';

/** What a node needs before bootstrap: a wipe of its etcd data, or re-creation from a backed-up configuration. */
export type Preparation = 'wipe' | 'recreate';

export interface NodePlan {
  node: string;
  preparation: Preparation;
  /** Reset labels (wipe only) */
  labels: string[];
}

/** Reset labels: EPHEMERAL, plus the dedicated ETCD partition where etcd lives outside EPHEMERAL (facts §9). */
export function wipeLabels(volume: EtcdVolumeKind | null): string[] {
  return volume === 'partition' ? ['EPHEMERAL', 'ETCD'] : ['EPHEMERAL'];
}

/**
 * Which nodes get wiped and which re-created. Blank machines in maintenance mode are re-created from their config
 * backup; every other control-plane node is wiped. The snapshot source goes last, so that it keeps its data as long
 * as possible (SAFETY.md rule 3).
 */
export function planPreparation(
  observations: readonly NodeObservation[],
  volumes: Readonly<Record<string, EtcdVolumeKind | null>>,
  snapshotSource: string | null,
): NodePlan[] {
  const plans = observations
    .filter((o) => o.maintenance || (isControlPlane(o) && o.machineType !== 'unknown'))
    .map<NodePlan>((o) =>
      o.maintenance
        ? { node: o.node, preparation: 'recreate', labels: [] }
        : { node: o.node, preparation: 'wipe', labels: wipeLabels(volumes[o.node] ?? null) },
    );
  return [...plans.filter((p) => p.node !== snapshotSource), ...plans.filter((p) => p.node === snapshotSource)];
}

/** Nodes that must be converted from `init` to `controlplane` before anything else (PRODUCT.md §1 step 5). */
export function initNodes(observations: readonly NodeObservation[]): string[] {
  return observations.filter((o) => o.reachable && o.machineType === 'init').map((o) => o.node);
}

/** Nodes whose etcd may still hold data: reachable, not blank, and not yet wiped. */
export function dataHoldingNodes(observations: readonly NodeObservation[], wiped: readonly string[]): string[] {
  return observations
    .filter((o) => !o.maintenance && isControlPlane(o) && !wiped.includes(o.node) && o.machineType !== 'unknown')
    .map((o) => o.node);
}

export type HashCheckDecision =
  { usable: true; skipHashCheck: boolean; reason: string } | { usable: false; skipHashCheck: false; reason: string };

/**
 * Whether bootstrap needs --recover-skip-hash-check (SAFETY.md rule 7): only a file without a trailer (a raw db copy)
 * whose bbolt check passed. A mismatching trailer, a damaged structure or anything that is not bbolt is unusable.
 */
export function hashCheckDecision(
  report: Pick<SnapshotReport, 'kind' | 'structure' | 'integrity' | 'usable' | 'problems'>,
): HashCheckDecision {
  if (report.kind !== 'bbolt')
    return {
      usable: false,
      skipHashCheck: false,
      reason: `The file is not a plain etcd snapshot (it is ${report.kind}).`,
    };
  if (report.structure !== 'ok')
    return { usable: false, skipHashCheck: false, reason: 'The bbolt database is damaged.' };
  if (report.integrity === 'mismatch')
    return {
      usable: false,
      skipHashCheck: false,
      reason: 'The sha256 trailer does not match: the file is corrupted or truncated.',
    };
  if (!report.usable)
    return { usable: false, skipHashCheck: false, reason: report.problems[0] ?? 'The snapshot is not usable.' };
  if (report.integrity === 'absent')
    return {
      usable: true,
      skipHashCheck: true,
      reason:
        'This is a raw database copy without a sha256 trailer: bootstrap needs skip-hash-check, and writes after the copy point may be missing.',
    };
  return { usable: true, skipHashCheck: false, reason: 'The snapshot carries a matching sha256 trailer.' };
}

/**
 * A live member whose raft applied index is higher than the snapshot source's at snapshot time holds newer data
 * (SAFETY.md "Always": warn). For a file that was not taken now, any member whose etcd still answers may be newer.
 */
export function newerLiveMembers(
  observations: readonly NodeObservation[],
  snapshot: { node: string | null; raftAppliedIndex: string | null },
): string[] {
  return observations
    .filter((o) => o.reachable && !o.maintenance && o.status && o.node !== snapshot.node)
    .filter((o) =>
      snapshot.raftAppliedIndex === null
        ? true
        : BigInt((o.status as ObservedStatus).raftAppliedIndex) > BigInt(snapshot.raftAppliedIndex),
    )
    .map((o) => o.node);
}

/** The reason a node's etcd sits in Waiting, from its newest service event ("Waiting for time sync", …). */
export function waitingCause(o: Pick<NodeObservation, 'etcdService' | 'etcdLastEvent'>): string | null {
  if (o.etcdService !== 'Waiting') return null;
  const msg = o.etcdLastEvent?.trim();
  if (!msg) return 'no reason given by the node';
  return msg.replace(/^Waiting for\s+/i, '').replace(/\.$/, '') || msg;
}

/** Every prepared node shows etcd Preparing: the cluster is ready for bootstrap (PRODUCT.md §1 step 7). */
export function allPreparing(observations: readonly Pick<NodeObservation, 'etcdService'>[]): boolean {
  return observations.length > 0 && observations.every((o) => o.etcdService === 'Preparing');
}

/**
 * After bootstrap (step 9): the bootstrap node and every other node Running and healthy, and their member lists agree
 * (same ids on every node, as many as nodes).
 */
export function recoveryComplete(observations: readonly NodeObservation[]): { done: boolean; reason: string } {
  const notRunning = observations.find((o) => o.etcdService !== 'Running' || o.etcdHealthy !== true);
  if (notRunning)
    return {
      done: false,
      reason: `${notRunning.node}: etcd is ${notRunning.etcdService ?? 'not answering'}${notRunning.etcdService === 'Running' ? ' but not healthy yet' : ''}.`,
    };
  const lists = observations.map((o) =>
    o.members
      ? o.members
          .map((m) => m.id)
          .sort()
          .join(',')
      : null,
  );
  const missing = observations.findIndex((o) => o.members === null);
  if (missing >= 0) return { done: false, reason: `${observations[missing]?.node}: member list not available yet.` };
  if (new Set(lists).size !== 1) return { done: false, reason: 'The nodes do not agree on the member list yet.' };
  const size = observations[0]?.members?.length ?? 0;
  if (size < observations.length)
    return { done: false, reason: `${size} of ${observations.length} nodes have joined etcd so far.` };
  return {
    done: true,
    reason: `All ${observations.length} control-plane nodes are Running, healthy and agree on the members.`,
  };
}

/**
 * Whether an interrupted Bootstrap already happened (SAFETY.md "Always"): AlreadyExists "etcd data directory is not
 * empty" counts as done only when this node was wiped, the upload and Bootstrap were sent, and its etcd is now starting
 * or Running. Anything else is an error naming the node.
 */
export function bootstrapAlreadyDone(args: {
  wiped: boolean;
  uploadSent: boolean;
  bootstrapSent: boolean;
  etcdService: string | null;
}): boolean {
  const starting =
    args.etcdService === 'Running' || args.etcdService === 'Starting' || args.etcdService === 'Preparing';
  return args.wiped && args.uploadSent && args.bootstrapSent && starting;
}

/** The node's etcd service history began after `sentAt`: its services restarted since (a boot, or a new etcd runner). */
function etcdRestartedAfter(view: { etcdHistoryStart?: number | null }, sentAt: number | null): boolean {
  return sentAt !== null && view.etcdHistoryStart != null && view.etcdHistoryStart > sentAt;
}

/**
 * Talos keeps this many events per service and drops the oldest beyond it (siderolabs/talos
 * internal/app/machined/pkg/system/events/events.go@v1.13.9:17-18 MaxEventsToKeep): only a shorter history still
 * starts where the service started.
 */
const SERVICE_EVENTS_KEPT = 64;

/** What a node's service histories say about a boot since a call was sent. */
export type BootSince = 'rebooted' | 'same boot' | 'unknown';

/**
 * Whether the node booted since `sentAt`, read from its services' histories (ServiceList): every service starts a new
 * history when the machine boots, so one complete history (fewer events than Talos keeps, its first event dated)
 * that began at or before the send shows the node has been up since before it ('same boot'), and complete histories
 * that all began after it show a boot since ('rebooted'). No complete history (no service listed yet, as right after
 * a boot before etcd's service is loaded; or every history full, as a crash-looping etcd's is after a few minutes)
 * shows nothing ('unknown'): it is never read as "unchanged".
 */
export function bootSince(
  services: readonly { events: readonly { ts: number | null }[] }[] | null,
  sentAt: number | null,
): BootSince {
  if (sentAt === null || !services) return 'unknown';
  const starts = services
    .filter((s) => s.events.length > 0 && s.events.length < SERVICE_EVENTS_KEPT)
    .map((s) => s.events[0]?.ts ?? null)
    .filter((ts): ts is number => ts !== null);
  if (starts.length === 0) return 'unknown';
  return starts.some((ts) => ts <= sentAt) ? 'same boot' : 'rebooted';
}

/**
 * What the node's boot id, read before a call was sent and again now, says about a boot since (like for like: no
 * clocks compared). The kernel draws a new boot id at every boot, so a different one shows a boot since the send
 * ('rebooted') and the same one shows none ('same boot'), as talosctl's post-check reads it
 * (cmd/talosctl/pkg/talos/action/tracker.go@v1.13.9:60-76). A read that failed now (no answer, a timeout) shows
 * nothing ('unknown'). Null when the boot ids cannot tell at all: none was read before the send (a journal of an older
 * version, a node that refused Read), or the node refuses Read now (Read needs os:admin, talosctl skips the check
 * then: tracker.go@v1.13.9:62-64,368-370): the services' start times decide then (bootSince).
 */
export function bootSinceByBootId(before: string | null, now: string | 'refused' | null): BootSince | null {
  if (before === null || now === 'refused') return null;
  if (now === null) return 'unknown';
  return now === before ? 'same boot' : 'rebooted';
}

/**
 * A node that answered shows that a Reset sent at `sentAt` took effect: its etcd service history restarted after the
 * send (services start a new history at every boot). Talos answers Reset before it does anything (siderolabs/talos:
 * internal/app/machined/internal/server/v1alpha1/v1alpha1_server.go@v1.11.6:686-692), so an answer of Preparing right
 * after the send is not evidence: a node that was Preparing before still says so until it goes down. A node that did
 * not answer shows nothing here: one timed-out read looks the same as a node inside its reset, so the callers weigh
 * silence over time themselves (and a node back blank, in maintenance mode, before asking this).
 */
export function resetTookEffect(
  view: (Pick<NodeObservation, 'reachable'> & { etcdHistoryStart?: number | null }) | null,
  sentAt: number | null,
): boolean {
  if (!view?.reachable) return false;
  return etcdRestartedAfter(view, sentAt);
}

/**
 * An interrupted Bootstrap (sent at `sentAt`) landed: etcd Running on the wiped node, or an etcd service history that
 * is not the one it had just before the send (`historyBefore`, its start as the node dated it), or, without that
 * (a journal of an older version), one that began after the send by our clock. Bootstrap stops etcd and loads a new runner whose history starts empty (siderolabs/talos:
 * internal/app/machined/pkg/system/services/etcd.go@v1.11.6:656-690, system.go@v1.11.6:92,132), so the text
 * "Bootstrap requested" is gone by the time anyone looks and is never the evidence.
 */
export function bootstrapLanded(
  view: (Pick<NodeObservation, 'reachable' | 'etcdService'> & { etcdHistoryStart?: number | null }) | null,
  sentAt: number | null,
  historyBefore: number | null = null,
): boolean {
  if (!view?.reachable) return false;
  if (view.etcdService === 'Running') return true;
  // Like for like when the history's start was read just before the send: both dated by the node's clock, so a
  // node whose clock is behind ours still shows its new runner's history as a different one
  if (historyBefore !== null && view.etcdHistoryStart != null) return view.etcdHistoryStart !== historyBefore;
  return etcdRestartedAfter(view, sentAt);
}

/**
 * The drill's time to recover: from the start of the assessment to the end of the verification, read from the
 * machine's own step rows (so autopilot's score line, the interactive summary and a resumed drill give the same
 * figure), or null when it did not recover.
 */
/** The step whose end is the recovery's end, per successful outcome (kubelet restarts after it do not count). */
const RESTORED_AT: Record<string, string> = {
  recovered: 'verify',
  'member-replaced': 'check members',
  'nospace-cleared': 'check space',
};

export function timeToRecoverMs(ctx: {
  steps: readonly { name: string; startedAt: number | null; endedAt: number | null }[];
  outcome: string | null;
}): number | null {
  const assessed = ctx.steps.find((s) => s.name === 'assess')?.startedAt ?? null;
  // the moment etcd was whole again: the full recovery's verify, the last member check, the space check
  const lastStep = RESTORED_AT[ctx.outcome ?? ''];
  const restored = lastStep ? (ctx.steps.find((s) => s.name === lastStep)?.endedAt ?? null) : null;
  return assessed !== null && restored !== null ? restored - assessed : null;
}
