/**
 * The member replacement's SAFETY.md rules, each a function of context, event and target that returns null when allowed
 * or the sentence the user sees when refused. Merged into machines/guards.ts's RULES, so `refuse` can name them.
 *
 * Every one is about `EtcdRemoveMemberByID`: etcd removes whatever id it is given, healthy or not, and a member list
 * read from the broken member itself may say anything (upstream's own TestRemoveMember reads the id from a different
 * node's list and removes it through that node: siderolabs/talos internal/integration/api/etcd.go@v1.11.6:140-200).
 */
import type { Rule } from '../guards.js';
import { quorumSize } from '../decisions.js';
import { isHealthy, leaveView, removalView, SWAP_MIN_VOTERS } from './plan.js';

/** The removal goes through a healthy node other than the member's own, and the id comes from that node's list. */
export const removalThroughOtherHealthyNode: Rule = (context) => {
  const v = removalView(context);
  if (!v.via) return 'No healthy node other than this member can list the members: nothing is removed without one.';
  if (v.current?.node && v.via.node === v.current.node)
    return `The removal is never sent through ${v.via.node}, the member being removed: it goes through a different, healthy node.`;
  if (!isHealthy(v.via))
    return `${v.via.node} is not a healthy member: the removal goes only through a node whose own etcd works.`;
  if (!v.target || !v.members.some((m) => m.id === v.target))
    return `${v.via.node}'s member list does not list this member: its id is read again before anything is removed.`;
  return null;
};

/** Never the last member (etcd itself would have nothing left). */
export const notLastMember: Rule = (context) => {
  const v = removalView(context);
  return v.members.length <= 1 ? 'This is the last etcd member: it is never removed.' : null;
};

/** Never a voter of a two-member cluster: the one left would need both to agree, and one is gone. */
export const notTwoMemberCluster: Rule = (context) => {
  const v = removalView(context);
  const targetVotes = v.voters.some((m) => m.id === v.target);
  return targetVotes && v.voters.length === 2
    ? 'The cluster has only two voting members: removing one is never done here (a two-member etcd has no fault tolerance; restore quorum with a full recovery instead).'
    : null;
};

/** The members that still work after the removal must be a quorum of the members left. */
export const removalKeepsQuorum: Rule = (context) => {
  const v = removalView(context);
  const left = v.voters.filter((m) => m.id !== v.target);
  const working = left.filter((m) => v.healthyIds.has(m.id)).length;
  const needed = quorumSize(left.length);
  return working < needed
    ? `After this removal only ${working} of ${left.length} voting members would work, and quorum needs ${needed}: nothing is removed.`
    : null;
};

/** On the broken-member path, never a member whose own node answers as a working member. */
export const brokenMemberOnly: Rule = (context) => {
  const v = removalView(context);
  const own = v.current?.node ? context.observations.find((o) => o.node === v.current?.node) : undefined;
  if ((v.target && v.healthyIds.has(v.target)) || (own && isHealthy(own)))
    return `${v.current?.node ?? v.target ?? 'This member'} is a healthy member: it is not removed as a broken one (a planned swap is a different procedure).`;
  return null;
};

/** One member at a time: never a removal while another member is still a learner (a join that has not finished). */
export const noLearnerPending: Rule = (context) => {
  const v = removalView(context);
  const learner = v.members.find((m) => m.isLearner && m.id !== v.target);
  return learner
    ? `${learner.hostname || learner.id} is still a learner (a join that has not finished): wait until it is promoted before removing another member.`
    : null;
};

export const REPLACE_MEMBER_RULES = {
  removalThroughOtherHealthyNode,
  notLastMember,
  notTwoMemberCluster,
  removalKeepsQuorum,
  brokenMemberOnly,
  noLearnerPending,
} satisfies Record<string, Rule>;

/** The rules every removal of a broken member is checked against, in the order their sentences are shown. */
export const REMOVAL_RULES = [
  'removalThroughOtherHealthyNode',
  'notLastMember',
  'notTwoMemberCluster',
  'brokenMemberOnly',
  'removalKeepsQuorum',
  'noLearnerPending',
] as const satisfies readonly (keyof typeof REPLACE_MEMBER_RULES)[];

/*
 * The planned swap's rules (SAFETY rule 12 for a leave, rule 3 for its node). EtcdLeaveCluster runs on the leaving
 * node itself: Talos checks it is a control plane running etcd, builds an etcd client with WithRequireLeader, reads
 * that node's own member id and removes it, retrying etcd's "unhealthy cluster" answer for up to 5 minutes, then stops
 * etcd and deletes /var/lib/etcd (siderolabs/talos internal/app/machined/internal/server/v1alpha1/v1alpha1_server.go
 * EtcdLeaveCluster, and internal/pkg/etcd/etcd.go@v1.14.0-rc.1:157-190 LeaveCluster). etcd's own check refuses only
 * what would break the quorum of the members up *now* (server.go mayRemoveMember), not a 2-member cluster, nor a
 * leave while a learner catches up: those are ours. Upstream's own test removes a member only in a cluster of three
 * or more (internal/integration/api/etcd.go@v1.11.6:140-200 TestRemoveMember).
 */

/** The members that still work after the leave must be a quorum of the members left. */
export const leaveKeepsQuorum: Rule = (context) => {
  const v = leaveView(context);
  const leaving = v.swap?.memberId ?? null;
  const left = v.voters.filter((m) => m.id !== leaving);
  const working = left.filter((m) => v.healthyIds.has(m.id)).length;
  const needed = quorumSize(left.length);
  return working < needed
    ? `After ${v.swap?.node ?? 'this member'} leaves only ${working} of ${left.length} voting members would work, and quorum needs ${needed}: it does not leave.`
    : null;
};

/** Never from a single node or a two-member cluster: the one left would hold the cluster alone. */
export const leaveNeedsThreeMembers: Rule = (context) => {
  const v = leaveView(context);
  if (v.voters.length >= SWAP_MIN_VOTERS) return null;
  return v.voters.length <= 1
    ? 'This is a single-member etcd: its only member never leaves (replace the machine with a full recovery from a snapshot instead).'
    : `The cluster has only ${v.voters.length} voting members: a planned swap needs at least ${SWAP_MIN_VOTERS} (add a member first; one leaving a two-member etcd leaves no fault tolerance).`;
};

/** One change at a time: never while another member is still a learner (a join that has not finished). */
export const leaveNoLearnerPending: Rule = (context) => {
  const v = leaveView(context);
  const learner = v.members.find((m) => m.isLearner);
  return learner
    ? `${learner.hostname || learner.id} is still a learner (a join that has not finished): wait until it is promoted before another member leaves.`
    : null;
};

/**
 * The leave goes to exactly the typed node, which is a healthy voting member answering for itself, and its leave is
 * confirmed by a different healthy node (never read back from the node that leaves).
 */
export const leaveOnTypedNode: Rule = (context, event) => {
  const v = leaveView(context);
  const node = v.swap?.node ?? null;
  if (!node) return 'No node was chosen for the planned swap.';
  const typedAddress = event.type === 'confirm' ? event.address.trim() : null;
  if (typedAddress !== null && typedAddress !== node)
    return `The leave goes only to ${node}, the node chosen: type ${node} exactly (EtcdLeaveCluster removes the member of the node it is sent to).`;
  if (!v.via || v.via.node === node)
    return `No healthy node other than ${node} lists the members: the leave is not sent without one to confirm it.`;
  if (!v.own || !isHealthy(v.own) || !v.own.status)
    return `${node}'s own etcd is not a healthy member right now: EtcdLeaveCluster needs it (it removes itself through its own etcd), so nothing is sent.`;
  if (
    !v.swap?.memberId ||
    v.own.status.memberId !== v.swap.memberId ||
    !v.voters.some((m) => m.id === v.swap?.memberId)
  )
    return `${v.via.node}'s member list does not show ${node}'s own member (${v.own.status.memberId}) as a voter: its id is read again before it leaves.`;
  return null;
};

export const PLANNED_SWAP_RULES = {
  leaveOnTypedNode,
  leaveNeedsThreeMembers,
  leaveKeepsQuorum,
  leaveNoLearnerPending,
} satisfies Record<string, Rule>;

/** The rules every leave of a planned swap is checked against, in the order their sentences are shown. */
export const LEAVE_RULES = [
  'leaveOnTypedNode',
  'leaveNeedsThreeMembers',
  'leaveKeepsQuorum',
  'leaveNoLearnerPending',
] as const satisfies readonly (keyof typeof PLANNED_SWAP_RULES)[];
