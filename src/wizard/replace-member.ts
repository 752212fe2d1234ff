/**
 * The member replacement's effects (issue 15): the named actors machines/replace-member/actors.ts declares, over the
 * Talos client. The removal goes through the journal ledger like every destructive call (journalled before it is
 * sent, never sent twice); the wipe and the re-creation reuse the recovery's own Reset and maintenance-API apply
 * (destructive.ts), with operation ids of their own.
 */
import { fromPromise } from 'xstate';
import { Code } from '../talos/errors.js';
import type { RpcFailure } from '../talos/types.js';
import type { LeaveClusterInput, RemoveMemberInput } from '../../machines/replace-member/actors.js';
import { statusTimeout, type EffectDeps, type EffectTiming } from './deps.js';
import { applyConfig, resetNode } from './destructive.js';
import { ActionError, destructiveFailure, ledgered, unwrap } from './ledger.js';

/**
 * etcd answers a removal of an id it does not know with ErrMemberNotFound, which its gRPC layer sends as NotFound
 * "etcdserver: member not found" (etcd-io/etcd: api/v3rpc/rpctypes/error.go@v3.6.4:37 ErrGRPCMemberNotFound =
 * status.Error(codes.NotFound, …)); Talos answers it as NotFound with etcd's text (siderolabs/talos:
 * internal/app/machined/internal/server/v1alpha1/v1alpha1_server.go@v1.13.9:1880-1883, EtcdRemoveMemberByID; v1.11.6
 * returned the etcd client's error as it is). Either way the member is gone: the removal is already done.
 */
export const memberAlreadyGone = (failure: RpcFailure): boolean =>
  failure.code === Code.notFound || /member not found/i.test(failure.message);

/** Whether `via` lists the member now: true/false, or null when its list could not be read. */
async function listedBy(deps: EffectDeps, via: string, memberId: string): Promise<boolean | null> {
  const [result] = await deps.client.etcdMemberList([via], true, { timeoutMs: statusTimeout(deps) });
  if (!result?.ok) return null;
  return result.value.some((m) => m.id === memberId);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The check of a removal or leave sent before an interruption (its answer lost, or the process died): the member gone
 * from `via`'s list means it happened; still listed, it is sent again (a removal still under way when it lands a
 * second time is answered "member not found", read as done: memberAlreadyGone). A list that cannot be read is no
 * evidence either way: nothing is sent on a guess.
 */
async function interruptedRemovalLanded(deps: EffectDeps, via: string, memberId: string, what: string) {
  const listed = await listedBy(deps, via, memberId).catch(() => null);
  if (listed === null)
    throw new ActionError(
      `Cannot tell whether ${what} of member ${memberId} sent before the interruption happened (${via} did not list the members), so it is not sent again on a guess; try again once ${via} answers.`,
      true,
      true,
    );
  return listed ? null : { alreadyGone: true };
}

/**
 * EtcdRemoveMemberByID through a healthy node other than the member's own (talos#3340: never through the member being
 * removed), then the healthy node's list polled until the id is gone. A member the healthy node no longer lists was
 * removed already (before a crash, or by hand): nothing is sent.
 */
export async function removeMember(
  deps: EffectDeps,
  timing: EffectTiming,
  input: RemoveMemberInput,
): Promise<{ alreadyGone: boolean }> {
  const { via, memberId } = input;
  if (!via || !memberId) throw new ActionError('No healthy node and member id were chosen for the removal.');
  const who = input.node ? ` (${input.node})` : '';
  const outcome = await ledgered(deps, {
    opId: input.opId,
    action: `remove etcd member ${memberId}${who} through ${via} (EtcdRemoveMemberByID)`,
    node: via,
    destructive: true,
    answered: () => ({ alreadyGone: true }),
    send: async () => {
      if ((await listedBy(deps, via, memberId)) === false) return { alreadyGone: true };
      const result = await deps.client.etcdRemoveMemberById(via, memberId, { timeoutMs: 15_000 });
      if (result.ok) return { alreadyGone: false };
      if (memberAlreadyGone(result.error)) return { alreadyGone: true };
      // a deadline, a cancellation or a cut connection: the removal may have reached etcd; the next try reads the
      // list first (answer lost), and sends again only to a node that lists the member still: etcd answers a second
      // removal of a removed id with "member not found", which is taken as done (memberAlreadyGone). Any other
      // failure is a plain one, and says whether the node answered at all (a node that was down never got it).
      throw destructiveFailure(via, result.error, 'remove the member');
    },
    reconcile: () => interruptedRemovalLanded(deps, via, memberId, 'the removal'),
    describe: (r) => (r.alreadyGone ? 'already removed' : 'removed'),
  });
  await untilUnlisted(deps, timing, via, memberId, 'the removal');
  return outcome;
}

/** Polls `via`'s member list until `memberId` is gone; says what to check when it stays. */
async function untilUnlisted(
  deps: EffectDeps,
  timing: EffectTiming,
  via: string,
  memberId: string,
  what: string,
): Promise<void> {
  const end = Date.now() + timing.nodeBackTimeoutMs;
  for (;;) {
    if ((await listedBy(deps, via, memberId).catch(() => null)) === false) return;
    if (Date.now() > end || deps.signal?.aborted) break;
    await sleep(timing.pollMs);
  }
  throw new ActionError(
    `${via} still lists member ${memberId} ${Math.round(timing.nodeBackTimeoutMs / 1000)} s after ${what}; check with talosctl -n ${via} etcd members before trying again.`,
    true,
  );
}

/**
 * How long a leave may take: Talos retries etcd's "unhealthy cluster" answer for up to 5 minutes inside the call
 * (siderolabs/talos internal/pkg/etcd/etcd.go@v1.14.0-rc.1:157-190 LeaveCluster); the rules allow a leave only while
 * the rest keep quorum, so a healthy leave answers in seconds. A deadline counts as "may have landed": the next try
 * reads the list first.
 */
const LEAVE_TIMEOUT_MS = 60_000;

/**
 * EtcdLeaveCluster sent to the leaving node only (it removes its own member through its own etcd, then stops etcd and
 * deletes /var/lib/etcd: siderolabs/talos internal/app/machined/internal/server/v1alpha1/v1alpha1_server.go
 * EtcdLeaveCluster), through the ledger; then a *different* healthy node's list polled until the id is gone. A member
 * that node no longer lists has left already (before a crash): nothing is sent.
 */
export async function leaveCluster(
  deps: EffectDeps,
  timing: EffectTiming,
  input: LeaveClusterInput,
): Promise<{ alreadyGone: boolean }> {
  const { node, via, memberId } = input;
  if (!node || !via || !memberId || via === node)
    throw new ActionError('The leaving node, its member id and a different healthy node were not all chosen.');
  const outcome = await ledgered(deps, {
    opId: input.opId,
    action: `leave etcd: member ${memberId} on ${node} (EtcdLeaveCluster on that node only)`,
    node,
    destructive: true,
    answered: () => ({ alreadyGone: true }),
    send: async () => {
      if ((await listedBy(deps, via, memberId)) === false) return { alreadyGone: true };
      const result = await deps.client.etcdLeaveCluster(node, { timeoutMs: LEAVE_TIMEOUT_MS });
      if (result.ok) return { alreadyGone: false };
      // a deadline, a cancellation or a cut connection: the leave may have happened; the next try reads the list first
      throw destructiveFailure(node, result.error, 'leave the etcd cluster');
    },
    reconcile: () => interruptedRemovalLanded(deps, via, memberId, 'the leave'),
    describe: (r) => (r.alreadyGone ? 'already left' : 'left'),
  });
  await untilUnlisted(deps, timing, via, memberId, 'the leave');
  return outcome;
}

/**
 * EtcdForfeitLeadership on the node itself: Talos moves the leadership to another member only if this one leads
 * (siderolabs/talos internal/pkg/etcd/etcd.go@v1.14.0-rc.1:240-308 ForfeitLeadership) and answers the new leader's
 * name, or nothing. Sent again after a crash it does no harm, so it is journalled but not a ledgered destructive call.
 */
export async function forfeitLeadership(deps: EffectDeps, input: { node: string; opId: string }) {
  return ledgered(deps, {
    opId: input.opId,
    action: `move the etcd leadership away from ${input.node} (EtcdForfeitLeadership)`,
    node: input.node,
    destructive: false,
    send: async () => {
      const result = await deps.client.etcdForfeitLeadership(input.node, { timeoutMs: 15_000 });
      return { leader: unwrap(result, 'move the leadership away').member };
    },
    describe: (r) => (r.leader ? `${r.leader} leads now` : 'it did not lead'),
  });
}

/** The member replacement's named actors, given to the machine with the recovery's own (src/wizard/actors.ts). */
export function replaceMemberActors(deps: EffectDeps, timing: EffectTiming) {
  return {
    removeMember: fromPromise<{ alreadyGone: boolean }, RemoveMemberInput>(({ input }) =>
      removeMember(deps, timing, input),
    ),
    replaceResetNode: fromPromise<void, { node: string; labels: string[]; opId: string }>(({ input }) =>
      resetNode(deps, timing, input),
    ),
    replaceApplyConfig: fromPromise<void, { node: string; file: string; opId: string }>(({ input }) =>
      applyConfig(deps, input),
    ),
    forfeitLeadership: fromPromise<{ leader: string }, { node: string; opId: string }>(({ input }) =>
      forfeitLeadership(deps, input),
    ),
    leaveCluster: fromPromise<{ alreadyGone: boolean }, LeaveClusterInput>(({ input }) =>
      leaveCluster(deps, timing, input),
    ),
  };
}
