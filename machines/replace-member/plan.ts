/**
 * The member replacement's decisions as pure functions of the machine's context (no I/O, no clock): which member of a
 * healthy node's list is the broken one, which node the removal goes through, what a removal would leave, and which
 * phase a join is in. The rules (rules.ts), the guards (guards.ts) and the states (states.ts) all read these.
 */
import type { EtcdMember } from '../../src/talos/types.js';
import { memberHealth, type BrokenMember, type NodeObservation } from '../decisions.js';
import type { RecoveryContext } from '../recovery-types.js';
import type { PlannedSwap, ReplaceMemberState } from './types.js';

/** The order members are replaced in: a leftover learner first (it blocks every other removal), then the rest. */
const KIND_ORDER: Record<BrokenMember['kind'], number> = { learner: 0, blank: 1, 'etcd-failing': 2, unreachable: 3 };

export function initialReplace(broken: readonly BrokenMember[]): ReplaceMemberState {
  return {
    queue: [...broken].sort((a, b) => KIND_ORDER[a.kind] - KIND_ORDER[b.kind]),
    current: null,
    via: null,
    phase: null,
    done: [],
    memberId: null,
    removeDecided: false,
    fate: null,
    keptOff: [],
    cameBack: [],
  };
}

/** The procedure's state, never null (a context restored from before the procedure started has none). */
export const replaceOf = (context: RecoveryContext): ReplaceMemberState => context.replace ?? initialReplace([]);

/** The host part of a peer URL, lower case, brackets of an IPv6 literal dropped; null when it is not a URL. */
function urlHost(url: string): string | null {
  try {
    return new URL(url).hostname.replace(/^\[|\]$/g, '').toLowerCase();
  } catch {
    return null;
  }
}

const observationOf = (context: RecoveryContext, node: string | null): NodeObservation | null =>
  node === null ? null : (context.observations.find((o) => o.node === node) ?? null);

/** The member list `via` reported in the latest read, or null. */
export const listOf = (context: RecoveryContext, via: string | null): EtcdMember[] | null =>
  observationOf(context, via)?.members ?? null;

/**
 * The broken member in a healthy node's list: by the id the assessment read, else by its etcd name (Talos names a
 * member after the machine's hostname), else by a peer URL at the node's address. A learner that has not started yet
 * is listed without a name (etcd fills the name in when the member first publishes itself), so only its peer URL can
 * match it.
 */
export function listedMember(
  list: readonly EtcdMember[],
  current: BrokenMember,
  hostname: string | null,
): EtcdMember | null {
  const byId = current.memberId ? list.find((m) => m.id === current.memberId) : undefined;
  if (byId) return byId;
  const names = [current.name, hostname].filter((n): n is string => Boolean(n));
  const byName = list.find((m) => m.hostname !== '' && names.includes(m.hostname));
  if (byName) return byName;
  const host = current.node?.replace(/^\[|\]$/g, '').toLowerCase();
  return host ? (list.find((m) => m.peerUrls.some((u) => urlHost(u) === host)) ?? null) : null;
}

/** A node whose own etcd answered as a working member (not the current member's node). */
export const isHealthy = (o: NodeObservation): boolean => memberHealth(o) === 'healthy';

/** The node the member list is read from and the removal sent through: healthy, listing members, not the member's. */
export function viaNode(context: RecoveryContext, current: BrokenMember): string | null {
  const witness = context.observations.find(
    (o) => o.node !== current.node && o.machineType !== 'worker' && isHealthy(o) && o.members !== null,
  );
  return witness?.node ?? null;
}

/** The current member's node answers again as a healthy voting member: it came back, nothing is to be removed. */
export function currentHealthyNow(context: RecoveryContext): boolean {
  const r = replaceOf(context);
  const o = observationOf(context, r.current?.node ?? null);
  if (!o || !isHealthy(o)) return false;
  const listed = listOf(context, r.via)?.find((m) => m.id === o.status?.memberId);
  return listed ? !listed.isLearner : true;
}

/** What a removal of the current member through `via` would leave, for the rules. */
export interface RemovalView {
  via: NodeObservation | null;
  current: BrokenMember | null;
  /** the member id to remove, as `via` lists it */
  target: string | null;
  members: readonly EtcdMember[];
  voters: readonly EtcdMember[];
  /** ids of the members whose own node answered as a working member */
  healthyIds: ReadonlySet<string>;
}

export function removalView(context: RecoveryContext): RemovalView {
  const r = replaceOf(context);
  const via = observationOf(context, r.via);
  const members = via?.members ?? [];
  const healthyIds = new Set(
    context.observations
      .filter((o) => isHealthy(o) && o.status)
      .map((o) => (o.status as { memberId: string }).memberId),
  );
  return {
    via,
    current: r.current,
    target: r.memberId ?? null,
    members,
    voters: members.filter((m) => !m.isLearner),
    healthyIds,
  };
}

/** The address typed to confirm the current member's removal: its node, else its name, else its member id. */
export function removalTarget(context: RecoveryContext): string {
  const c = replaceOf(context).current;
  return c?.node ?? c?.name ?? replaceOf(context).memberId ?? c?.memberId ?? '';
}

/** Where a join is, in the screen's words, from `via`'s member list: the phases a healthy replacement goes through. */
export function joinPhase(context: RecoveryContext): { joined: boolean; phase: string } {
  const r = replaceOf(context);
  const node = r.current?.node ?? null;
  const o = observationOf(context, node);
  const list = listOf(context, r.via);
  if (!node || !r.current) return { joined: true, phase: 'no machine to wait for' };
  if (!o?.reachable)
    return { joined: false, phase: `${node} is rebooting (normal: it goes away for a minute or two after the wipe)` };
  if (o.maintenance)
    return { joined: false, phase: `${node} is still in maintenance mode, installing its configuration (normal)` };
  const member = list ? listedMember(list, { ...r.current, memberId: null }, o.hostname) : null;
  if (!member || (r.memberId && member.id === r.memberId))
    return {
      joined: false,
      phase: `${node} is up, its etcd is ${o.etcdService ?? 'not reported'}; it has not asked to join yet (normal while it starts)`,
    };
  if (member.isLearner)
    return {
      joined: false,
      phase:
        member.hostname === ''
          ? `${node} was added as a learner and its etcd is starting (normal: the name appears once it runs)`
          : `${node} is a learner catching up with the leader (normal for a while: Talos promotes it once it has caught up)`,
    };
  return { joined: true, phase: `${node} was promoted to a voting member (${member.id})` };
}

/** The control-plane nodes the final check waits for: every node given, less those kept off. */
export function checkedNodes(context: RecoveryContext): string[] {
  const keptOff = replaceOf(context).keptOff ?? [];
  const workers = new Set(context.observations.filter((o) => o.machineType === 'worker').map((o) => o.node));
  return context.nodes.filter((n) => !keptOff.includes(n) && !workers.has(n));
}

const KIND_WORDS: Record<BrokenMember['kind'], string> = {
  unreachable: 'not answering',
  'etcd-failing': 'etcd failing',
  blank: 'blank machine',
  learner: 'learner not promoted',
};

/** "cp-3 (etcd failing), 10.5.0.9 (not answering)": the members to replace in a few words. */
export const brokenWords = (broken: readonly BrokenMember[]): string =>
  broken.map((b) => `${b.name ?? b.node ?? b.memberId ?? 'a member'} (${KIND_WORDS[b.kind]})`).join(', ');

// ---- the planned swap of a healthy member ------------------------------------------------------------------------

/** The fewest voting members a planned swap starts from: with two, one leaving leaves a cluster with no spare vote. */
export const SWAP_MIN_VOTERS = 3;

/** The healthy control-plane nodes a user may swap on purpose, when enough members vote for a swap to be allowed. */
export function swapCandidates(observations: readonly NodeObservation[]): NodeObservation[] {
  const healthy = observations.filter((o) => o.machineType !== 'worker' && isHealthy(o) && o.status);
  const voters = healthy[0]?.members?.filter((m) => !m.isLearner).length ?? 0;
  return voters >= SWAP_MIN_VOTERS ? healthy : [];
}

export function initialSwap(node: NodeObservation): ReplaceMemberState {
  return {
    ...initialReplace([]),
    swap: {
      node: node.node,
      name: node.hostname,
      memberId: node.status?.memberId ?? null,
      via: null,
      decided: false,
      forfeited: false,
      left: false,
    },
  };
}

export const swapOf = (context: RecoveryContext): PlannedSwap | null => replaceOf(context).swap ?? null;

/** A healthy control-plane node other than the one leaving, whose member list confirms the leave. */
export function swapWitness(context: RecoveryContext, node: string): string | null {
  const witness = context.observations.find(
    (o) => o.node !== node && o.machineType !== 'worker' && isHealthy(o) && o.members !== null,
  );
  return witness?.node ?? null;
}

/** What the leave of the swapped member would leave, for the rules. */
export interface LeaveView {
  swap: PlannedSwap | null;
  /** the leaving node's own latest read */
  own: NodeObservation | null;
  via: NodeObservation | null;
  members: readonly EtcdMember[];
  voters: readonly EtcdMember[];
  healthyIds: ReadonlySet<string>;
}

export function leaveView(context: RecoveryContext): LeaveView {
  const swap = swapOf(context);
  const via = observationOf(context, swap?.via ?? null);
  const members = via?.members ?? [];
  return {
    swap,
    own: observationOf(context, swap?.node ?? null),
    via,
    members,
    voters: members.filter((m) => !m.isLearner),
    healthyIds: new Set(
      context.observations.filter((o) => isHealthy(o) && o.status).map((o) => o.status?.memberId ?? ''),
    ),
  };
}

/** The swapped node's member leads: the leadership is moved away through that node before it leaves. */
export function swapLeads(context: RecoveryContext): boolean {
  const own = observationOf(context, swapOf(context)?.node ?? null);
  return Boolean(own?.status && own.status.memberId === own.status.leader);
}
