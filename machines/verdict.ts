/**
 * The assessment's verdict, which decides the path (issue 15): healthy, degraded (quorum holds; the broken members
 * are named and classified), nospace (an etcd NOSPACE alarm: the cluster is read-only), lost, or unknown. Pure: no
 * I/O, no clock. machines/decisions.ts re-exports everything here, so callers keep importing from there.
 *
 * Two rules carry the safety of what follows (SAFETY.md rule 4, facts §8):
 * - the verdict stands on every control-plane node's own EtcdStatus, never on one node's view;
 * - a broken member's id is read from the member list of a *different*, healthy node, never from the broken node
 *   itself (a node whose etcd is failing may report anything; upstream's TestRemoveMember does the same:
 *   siderolabs/talos internal/integration/api/etcd.go@v1.11.6, TestRemoveMember).
 */
import type { EtcdAlarmType, EtcdMember, EtcdMemberAlarm } from '../src/talos/types.js';
import type { AlarmSeen, BrokenKind, BrokenMember, MemberHealth, NodeObservation, VerdictResult } from './decisions.js';

const NO_LEADER = '0000000000000000';

/** Quorum of n voting members: floor(n/2)+1. */
export function quorumSize(votingMembers: number): number {
  return Math.floor(votingMembers / 2) + 1;
}

export const isControlPlane = (o: NodeObservation): boolean =>
  o.machineType === 'controlplane' || o.machineType === 'init' || o.machineType === 'unknown';

/**
 * etcd appends every active alarm to EtcdStatus's errors as the AlarmMember's compact text, e.g.
 * `memberID:10276657743932975437 alarm:NOSPACE` (etcd-io/etcd: server/etcdserver/api/v3rpc/maintenance.go@v3.6.4:279-281;
 * api/etcdserverpb/rpc.pb.go@v3.6.4:3977), and Talos passes the errors on unchanged (siderolabs/talos:
 * internal/app/machined/internal/server/v1alpha1/v1alpha1_server.go@v1.14.0-rc.1:2183-2226). Such an entry says the
 * cluster has an alarm, not that this member is unhealthy.
 */
const ALARM_TEXT = /^\s*memberID:\s*(\d+)\s+alarm:\s*([A-Z_]+)/;

/** The alarm an EtcdStatus error entry names, or null when the entry is a real error. */
export function alarmInStatusError(text: string): EtcdMemberAlarm | null {
  const match = ALARM_TEXT.exec(text);
  if (!match) return null;
  const [, decimal = '0', name = ''] = match;
  const alarm: EtcdAlarmType = name === 'NOSPACE' || name === 'NONE' ? name : 'CORRUPT';
  return { memberId: BigInt(decimal).toString(16).padStart(16, '0'), alarm };
}

/** The EtcdStatus errors that are real errors (an alarm entry is not one). */
const statusFaults = (errors: readonly string[]): string[] => errors.filter((e) => alarmInStatusError(e) === null);

/** etcd raised a CORRUPT alarm for this node's own member (as its status errors or its alarm list say). */
function corruptItself(o: NodeObservation): boolean {
  const own = o.status?.memberId;
  if (!own) return false;
  const fromStatus = (o.status?.errors ?? []).map(alarmInStatusError);
  return [...fromStatus, ...(o.alarms ?? [])].some((a) => a?.alarm === 'CORRUPT' && a.memberId === own);
}

/**
 * A node is a working member only when its own etcd is Running, healthy, and its EtcdStatus sees a leader without
 * errors (an alarm listed among the errors does not count: it is the cluster's, see ALARM_TEXT; a CORRUPT alarm for
 * its own member does: its data no longer matches the others'). It is certainly
 * broken when it answered and any of that is missing, or when it is a blank machine. An unreachable node is unknown:
 * its etcd may well be fine behind a network problem; so is one whose EtcdStatus answer could not be decoded (a
 * protocol mismatch says nothing about its etcd). The member list is not evidence: real Talos answers it only with a
 * leader, even with query_local (siderolabs/talos:
 * internal/app/machined/internal/server/v1alpha1/v1alpha1_server.go@v1.11.6:1784, WithRequireLeader), while
 * EtcdStatus answers from the local member without one (leader 0, "etcdserver: no leader" in errors).
 */
export function memberHealth(o: NodeObservation): MemberHealth {
  if (o.maintenance) return 'broken';
  if (!o.reachable) return 'unknown';
  if (o.etcdService !== null && o.etcdService !== 'Running') return 'broken';
  if (o.etcdHealthy === false) return 'broken';
  if (o.status === null && o.statusUnreadable === true) return 'unknown';
  // EtcdStatus past its deadline from a node whose etcd runs and passes Talos's health check (a quorum read,
  // ValidateQuorum, every 20 s under a 15 s limit: siderolabs/talos internal/app/machined/pkg/system/services/etcd.go
  // HealthFunc/HealthSettings, @v1.11.0:245,253-254, @v1.13.0:251,259-260, @v1.14.0-rc.1:258,266-267) says the
  // machine was slow to answer, not that its etcd fails: asked again, it decides
  if (o.status === null && o.statusTimedOut === true && o.etcdService === 'Running' && o.etcdHealthy === true)
    return 'unknown';
  if (o.status === null || o.status.leader === NO_LEADER || statusFaults(o.status.errors).length > 0) return 'broken';
  if (corruptItself(o)) return 'broken';
  if (o.etcdService === null) return 'unknown';
  return 'healthy';
}

/** The member list failed because etcd has no leader (what it always does then), not because the node is faulty. */
export const memberListNeedsLeader = (o: Pick<NodeObservation, 'membersError'>): boolean =>
  /no leader/i.test(o.membersError ?? '');

/** The voting members known from every node's local list (by id), or null when no node could list them. */
function votingMembersSeen(observations: readonly NodeObservation[]): Set<string> | null {
  let seen: Set<string> | null = null;
  for (const o of observations) {
    if (!o.members) continue;
    seen ??= new Set<string>();
    for (const m of o.members) if (!m.isLearner) seen.add(m.id);
  }
  return seen;
}

/** The node whose etcd has applied the most raft entries: the best snapshot source. Ties go to the first given. */
export function freshestMember(observations: readonly NodeObservation[]): string | null {
  let best: { node: string; index: bigint } | null = null;
  for (const o of observations) {
    if (!o.reachable || o.maintenance || !o.status) continue;
    const index = BigInt(o.status.raftAppliedIndex);
    if (best === null || index > best.index) best = { node: o.node, index };
  }
  return best?.node ?? null;
}

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

// ---- alarms ------------------------------------------------------------------------------------------------------

/**
 * Every active alarm any control-plane node reported: from EtcdAlarmList (the whole cluster's alarms, read through
 * raft, so only while quorum holds: etcd-io/etcd server/etcdserver/v3_server.go@v3.6.4:482-488; Talos answers it from
 * the local member, v1alpha1_server.go@v1.14.0-rc.1:2092-2118) and from EtcdStatus's errors (local, without quorum).
 * NONE is not an alarm. Each appears once.
 */
function alarmsReported(observations: readonly NodeObservation[]): EtcdMemberAlarm[] {
  const seen = new Map<string, EtcdMemberAlarm>();
  for (const o of observations) {
    const fromStatus = (o.status?.errors ?? []).map(alarmInStatusError).filter((a) => a !== null);
    for (const a of [...(o.alarms ?? []), ...fromStatus])
      if (a.alarm !== 'NONE') seen.set(`${a.memberId}/${a.alarm}`, a);
  }
  return [...seen.values()];
}

// ---- which member is which node ----------------------------------------------------------------------------------

/** The host part of a peer URL (brackets of an IPv6 literal dropped), lower case; null when it is not a URL. */
function urlHost(url: string): string | null {
  try {
    return new URL(url).hostname.replace(/^\[|\]$/g, '').toLowerCase();
  } catch {
    return null;
  }
}

const nodeHost = (node: string): string => node.replace(/^\[|\]$/g, '').toLowerCase();

/** The members some nodes list, each once (the first listing wins), indexed by name and by peer-URL host. */
interface Listed {
  member: EtcdMember;
  listedBy: string;
}

interface MemberIndex {
  all: Listed[];
  byName: Map<string, Listed[]>;
  byHost: Map<string, Listed[]>;
}

function push(map: Map<string, Listed[]>, key: string, l: Listed): void {
  const list = map.get(key);
  if (!list) map.set(key, [l]);
  else if (!list.includes(l)) list.push(l);
}

/** One pass over the lists (a 200-node cluster lists 40 000 entries), so matching a node is a lookup. */
function indexMembers(listers: readonly NodeObservation[]): MemberIndex {
  const index: MemberIndex = { all: [], byName: new Map(), byHost: new Map() };
  const seen = new Set<string>();
  for (const o of listers)
    for (const m of o.members ?? []) {
      if (seen.has(m.id)) continue;
      seen.add(m.id);
      const l = { member: m, listedBy: o.node };
      index.all.push(l);
      if (m.hostname) push(index.byName, m.hostname, l);
      for (const url of m.peerUrls) {
        const host = urlHost(url);
        if (host) push(index.byHost, host, l);
      }
    }
  return index;
}

/**
 * The listed members that are this node's: named as its hostname (Talos names members so) or with a peer URL at its
 * address (a learner that has not started is listed without a name).
 */
function membersAt(index: MemberIndex, o: NodeObservation): Listed[] {
  const byName = o.hostname ? (index.byName.get(o.hostname) ?? []) : [];
  const byHost = index.byHost.get(nodeHost(o.node)) ?? [];
  return [...new Set([...byName, ...byHost])];
}

type Match =
  | { found: Listed }
  | { found: null; why: 'unlisted' | 'no-witness' }
  | { found: null; why: 'ambiguous'; candidates: Listed[] };

/**
 * The member of a non-healthy node, read only from the lists of healthy nodes other than itself (`index`). A member
 * that is a healthy node's own (`taken`) is never a candidate, so a healthy member cannot be marked for removal
 * through a hostname or an address that happens to match; two candidates are ambiguous and neither is chosen.
 */
function memberOf(o: NodeObservation, index: MemberIndex | null, taken: ReadonlySet<string>): Match {
  if (index === null) return { found: null, why: 'no-witness' };
  const candidates = membersAt(index, o).filter((l) => !taken.has(l.member.id));
  if (candidates.length === 1) return { found: candidates[0] as Listed };
  return candidates.length === 0 ? { found: null, why: 'unlisted' } : { found: null, why: 'ambiguous', candidates };
}

/** The ids that are this answering node's own member: its EtcdStatus memberId and the listed members at it. */
const ownIds = (o: NodeObservation, index: MemberIndex): string[] => [
  ...(o.status ? [o.status.memberId] : []),
  ...membersAt(index, o).map((l) => l.member.id),
];

// ---- the broken members ------------------------------------------------------------------------------------------

const label = (o: NodeObservation): string => (o.hostname ? `${o.hostname} (${o.node})` : o.node);

/** Why a node that answers counts as etcd-failing, in the words of its service state. */
function failingWhy(o: NodeObservation): string {
  // a crash loop: Waiting "Error running Containerd(etcd), going to restart forever: …" every 5 s (siderolabs/talos:
  // internal/app/machined/pkg/system/runner/restart/restart.go@v1.11.6:79,144)
  if (/going to restart/i.test(o.etcdLastEvent ?? '') && o.etcdService !== 'Running')
    return `${label(o)} answers, but its etcd keeps crashing and restarting`;
  if (o.etcdService === 'Failed') return `${label(o)} answers, but its etcd service has Failed`;
  if (o.etcdService !== null && o.etcdService !== 'Running')
    return `${label(o)} answers, but its etcd is ${o.etcdService}, not running`;
  if (o.status && o.status.leader === NO_LEADER) return `${label(o)} answers, but its etcd sees no leader`;
  return `${label(o)} answers and its etcd runs, but it is not healthy`;
}

/** What the member id note adds to a sentence: where the id came from, or why there is none. */
function idNote(match: Match): string {
  if (match.found) return `its member ${match.found.member.id} is read from ${match.found.listedBy}'s member list`;
  if (match.why === 'ambiguous')
    return 'more than one member listed by the healthy nodes matches it, so none is chosen';
  if (match.why === 'no-witness') return 'no healthy member could list the members, so its member id is not known yet';
  return 'no healthy member lists a member for it (already removed, or never joined)';
}

function brokenNode(o: NodeObservation, kind: BrokenKind, match: Match, corrupt: boolean): BrokenMember {
  const found = match.found?.member ?? null;
  const ids = idNote(match);
  const why: Record<BrokenKind, string> = {
    unreachable: `${label(o)} does not answer (powered off, or cut off by the network) and may come back, so it is waited for before anything is removed; ${ids}.`,
    'etcd-failing': corrupt
      ? `etcd raised a CORRUPT alarm for ${label(o)}: its data no longer matches the other members', so it is replaced; ${ids}.`
      : `${failingWhy(o)}; ${ids}.`,
    blank: `${o.node} answers as a blank machine in maintenance mode, so the old member's data is gone; ${ids}.`,
    learner: `${label(o)} is a learner that has not been promoted (its join did not finish); ${ids}.`,
  };
  return {
    node: o.node,
    memberId: found?.id ?? null,
    name: found?.hostname || o.hostname || null,
    kind,
    why: why[kind],
  };
}

/** A listed member no given node matches: a leftover of a machine already gone, or a node not given to the tool. */
function leftover(l: Listed): BrokenMember {
  const name = l.member.hostname || null;
  const who = `${name ?? 'an unnamed member'} (${l.member.id})`;
  return {
    node: null,
    memberId: l.member.id,
    name,
    kind: l.member.isLearner ? 'learner' : 'unreachable',
    why: l.member.isLearner
      ? `${l.listedBy} lists a learner ${who} that was not promoted and matches no node given: a join that did not finish.`
      : `${l.listedBy} lists member ${who}, which matches no node given: a machine already gone, or a node left out of the node list.`,
  };
}

interface Classified {
  /** the working voters: answered well, not a learner, no CORRUPT alarm */
  healthy: NodeObservation[];
  broken: BrokenMember[];
  /** nodes whose own member turned out broken although their etcd answered well (a learner, a CORRUPT alarm) */
  demoted: Set<string>;
  /** member id → node, for naming alarms */
  nodeOfMember: Map<string, string>;
}

/**
 * Every broken member while quorum holds: each control-plane node that is not a healthy voting member, classified,
 * and each member the healthy nodes list that matches no node given.
 */
function classify(controlPlane: readonly NodeObservation[], alarms: readonly EtcdMemberAlarm[]): Classified {
  const corruptIds = new Set(alarms.filter((a) => a.alarm === 'CORRUPT').map((a) => a.memberId));
  const answered = controlPlane.filter((o) => memberHealth(o) === 'healthy');
  const answeredIndex = indexMembers(answered);
  const learnerIds = new Set(answeredIndex.all.filter((l) => l.member.isLearner).map((l) => l.member.id));
  // an answer from a learner, or from a member with a CORRUPT alarm, is not a working voter's
  const demoted = new Set(
    answered
      .filter((o) => ownIds(o, answeredIndex).some((id) => corruptIds.has(id) || learnerIds.has(id)))
      .map((o) => o.node),
  );
  const healthy = answered.filter((o) => !demoted.has(o.node));
  const healthyNodes = new Set(healthy.map((o) => o.node));
  const listers = healthy.filter((o) => o.members !== null);
  const index = demoted.size === 0 ? answeredIndex : indexMembers(listers);
  const taken = new Set(healthy.flatMap((o) => ownIds(o, index)));
  // which node an alarm's member is: the healthy nodes' own ids first, then ids matched from their lists; a broken
  // node's own word only for an id nothing else places
  const nodeOfMember = new Map<string, string>();
  for (const o of healthy) for (const id of ownIds(o, index)) nodeOfMember.set(id, o.node);
  const matched = new Set(taken);
  const broken: BrokenMember[] = [];
  for (const o of controlPlane) {
    if (healthyNodes.has(o.node)) continue;
    const match = memberOf(o, listers.length > 0 ? index : null, taken);
    if (match.found) {
      matched.add(match.found.member.id);
      nodeOfMember.set(match.found.member.id, o.node);
    }
    // members that might be this node's are not listed again as leftovers of a machine already gone
    if (!match.found && match.why === 'ambiguous') for (const c of match.candidates) matched.add(c.member.id);
    const corrupt = corruptIds.has(match.found?.member.id ?? o.status?.memberId ?? '');
    const kind = brokenKind(o, match, corrupt);
    if (kind) broken.push(brokenNode(o, kind, match, corrupt));
  }
  for (const l of index.all) if (!matched.has(l.member.id)) broken.push(leftover(l));
  for (const o of controlPlane)
    if (o.reachable && o.status && !nodeOfMember.has(o.status.memberId)) nodeOfMember.set(o.status.memberId, o.node);
  return { healthy, broken, demoted, nodeOfMember };
}

/** How a node that is not a healthy voter is broken, or null when nothing is known (an unreadable answer). */
function brokenKind(o: NodeObservation, match: Match, corrupt: boolean): BrokenKind | null {
  if (o.maintenance) return 'blank';
  if (!o.reachable) return 'unreachable';
  if (corrupt) return 'etcd-failing';
  if (match.found?.member.isLearner) return 'learner';
  return memberHealth(o) === 'broken' ? 'etcd-failing' : null;
}

const KIND_WORDS: Record<BrokenKind, string> = {
  unreachable: 'not answering',
  'etcd-failing': 'etcd failing',
  blank: 'blank machine',
  learner: 'learner not promoted',
};

/** "cp-3: etcd failing, 10.5.0.9: not answering": the broken members in a few words, for the reason. */
export function brokenSummary(broken: readonly BrokenMember[]): string {
  return broken.map((b) => `${b.name ?? b.node ?? b.memberId ?? 'a member'}: ${KIND_WORDS[b.kind]}`).join(', ');
}

// ---- the verdict -------------------------------------------------------------------------------------------------

/**
 * The quorum verdict from every control-plane node's local view (SAFETY.md rule 4: never from one node's view).
 * The voting-member count is the larger of the members any node listed and the control-plane nodes asked; members
 * nobody could ask count as unknown. Quorum is lost only when even counting every unknown member as healthy would
 * not reach a majority. While quorum holds, a NOSPACE alarm on any member makes it `nospace` (the cluster is
 * read-only); otherwise any broken member makes it `degraded`, with each one classified. A lost quorum stays `lost`
 * whatever the alarms: the full recovery comes first.
 */
export function computeVerdict(observations: readonly NodeObservation[]): VerdictResult {
  const controlPlane = observations.filter(isControlPlane);
  const freshest = freshestMember(controlPlane);
  if (controlPlane.length === 0)
    return { verdict: 'unknown', reason: 'No control-plane node was given, so there is no etcd to judge.', freshest };
  const reported = alarmsReported(controlPlane);
  const { healthy, broken, demoted, nodeOfMember } = classify(controlPlane, reported);
  // while quorum holds the snapshot comes from a working voter: never a learner, a corrupt or a failing member
  const freshestVoter = freshestMember(healthy) ?? freshest;
  const alarms: AlarmSeen[] = reported
    .filter((a): a is EtcdMemberAlarm & { alarm: AlarmSeen['alarm'] } => a.alarm !== 'NONE')
    .map((a) => ({ memberId: a.memberId, node: nodeOfMember.get(a.memberId) ?? null, alarm: a.alarm }));
  const withAlarms = alarms.length > 0 ? { alarms } : {};
  const listed = votingMembersSeen(controlPlane);
  const voting = Math.max(listed?.size ?? 0, controlPlane.length);
  const quorum = quorumSize(voting);
  const counts = { healthy: 0, broken: 0, unknown: voting - controlPlane.length };
  for (const o of controlPlane) counts[demoted.has(o.node) ? 'broken' : memberHealth(o)]++;
  const summary = `${counts.healthy} of ${plural(voting, 'voting member')} healthy, quorum needs ${quorum}`;
  const nospace = alarms.filter((a) => a.alarm === 'NOSPACE');
  if (counts.healthy >= quorum && nospace.length > 0)
    return {
      verdict: 'nospace',
      reason: `etcd raised a NOSPACE alarm (${nospaceWho(nospace)}): the database reached its space quota and the cluster is read-only until it is defragmented and the alarm disarmed; quorum holds (${summary}).`,
      freshest: freshestVoter,
      broken,
      ...withAlarms,
    };
  if (counts.healthy === voting && broken.length === 0)
    return {
      verdict: 'healthy',
      reason: `etcd is healthy: ${summary}; there is nothing to recover.`,
      freshest: freshestVoter,
      ...withAlarms,
    };
  const unread = controlPlane.filter((o) => o.reachable && memberHealth(o) === 'unknown');
  if (counts.healthy >= quorum && broken.length === 0 && unread.length > 0)
    return {
      verdict: 'unknown',
      reason: `Quorum holds (${summary}), but the etcd state of ${unread.map(label).join(', ')} could not be read; assess again before deciding.`,
      freshest: freshestVoter,
      ...withAlarms,
    };
  if (counts.healthy >= quorum) {
    const what = broken.length > 0 ? ` (${brokenSummary(broken)})` : '';
    return {
      verdict: 'degraded',
      reason: `Quorum holds (${summary}): replace the broken member${broken.length > 1 ? 's' : ''}${what} instead of a full recovery.`,
      freshest: freshestVoter,
      broken,
      ...withAlarms,
    };
  }
  if (counts.healthy + counts.unknown >= quorum)
    return {
      verdict: 'unknown',
      reason: `Quorum cannot be decided: ${summary}, and ${plural(counts.unknown, 'member')} could not be asked; reach them before deciding.`,
      freshest,
      ...withAlarms,
    };
  const noLeader = controlPlane.some((o) => o.reachable && memberListNeedsLeader(o))
    ? " The member lists could not be read (etcd answers them only with a leader); each node's etcd status was."
    : '';
  const alarmNote = nospace.length > 0 ? ' A NOSPACE alarm is active too: the recovery comes first.' : '';
  return {
    verdict: 'lost',
    reason: `Quorum is lost: ${summary}, and ${plural(counts.broken, 'member')} answered that their etcd is not working.${noLeader}${alarmNote}`,
    freshest,
    ...withAlarms,
  };
}

/** "on every member" / "on cp-1" / "on 2 members": who raised NOSPACE, for the reason. */
function nospaceWho(nospace: readonly AlarmSeen[]): string {
  const nodes = nospace.map((a) => a.node ?? a.memberId);
  return nodes.length === 1 ? `member ${nodes[0]}` : `${nodes.length} members`;
}
