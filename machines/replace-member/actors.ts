/**
 * The member replacement's named actors as the machine declares them: each throws until the runtime provides it
 * (src/wizard/replace-member.ts, given to the machine with the recovery's own in src/wizard/actors.ts). Spread into setup.ts.
 */
import { fromPromise } from 'xstate';

export interface RemoveMemberInput {
  /** the healthy node the call goes through (never the member's own) */
  via: string;
  /** the member id as `via` listed it (16 hex digits) */
  memberId: string;
  /** the member's node, for the journal; null for a member no given node matches */
  node: string | null;
  opId: string;
}

export interface LeaveClusterInput {
  /** the node that leaves: the call goes to it and to nothing else */
  node: string;
  /** a different healthy node whose member list confirms the leave */
  via: string;
  /** the leaving member's id as `via` lists it */
  memberId: string;
  opId: string;
}

export const REPLACE_MEMBER_ACTORS = {
  /** EtcdForfeitLeadership on the node itself (it moves the leadership only if it leads); answers the new leader */
  forfeitLeadership: fromPromise<{ leader: string }, { node: string; opId: string }>(async () => {
    throw new Error('forfeitLeadership was not provided');
  }),
  /** EtcdLeaveCluster on `node` only, then `via`'s list polled until the id is gone (a resume never sends it twice) */
  leaveCluster: fromPromise<{ alreadyGone: boolean }, LeaveClusterInput>(async () => {
    throw new Error('leaveCluster was not provided');
  }),
  /** EtcdRemoveMemberByID through `via`, then polls `via`'s list until the id is gone (NotFound counts as done) */
  removeMember: fromPromise<{ alreadyGone: boolean }, RemoveMemberInput>(async () => {
    throw new Error('removeMember was not provided');
  }),
  /** Reset of the old machine with the volume-aware labels, waited for until it is seen to go down or restart */
  replaceResetNode: fromPromise<void, { node: string; labels: string[]; opId: string }>(async () => {
    throw new Error('replaceResetNode was not provided');
  }),
  /** the backed-up configuration applied to the blank replacement over the maintenance API */
  replaceApplyConfig: fromPromise<void, { node: string; file: string; opId: string }>(async () => {
    throw new Error('replaceApplyConfig was not provided');
  }),
};
