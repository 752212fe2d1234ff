/** The member-replacement procedure's part of the machine's context (JSON-serialisable, shaped for the screens). */
import type { BrokenMember } from '../decisions.js';

/** What is done with the old machine once its member is removed. */
export type MachineFate =
  /** it answers with its old data: wiped (Reset, volume-aware labels) so it rejoins as a new member */
  | 'wipe'
  /** a blank machine answers at its address: its backed-up configuration is applied over the maintenance API */
  | 'recreate'
  /** it does not answer: the user keeps it powered off; the cluster goes on with one member fewer */
  | 'keep-off'
  /** no node was given for the member (a leftover of a machine already gone): nothing to do on a machine */
  | 'none';

/**
 * A healthy member replaced on purpose (planned maintenance, issue 15): it forfeits the leadership if it leads, leaves
 * etcd itself (EtcdLeaveCluster on that node only), then is wiped or kept off and rejoins as the broken path's do.
 */
export interface PlannedSwap {
  /** the node chosen at the assessment; the leave is sent to it and to nothing else */
  node: string;
  /** its etcd name (the hostname), for the journal */
  name: string | null;
  /** its member id as a *different* healthy node lists it, read again before the leave; null when not listed */
  memberId: string | null;
  /** the healthy node whose member list confirms the leave (never the leaving node) */
  via: string | null;
  /** the leave was confirmed by typing the node's address (a resume goes on without asking again) */
  decided: boolean;
  /** the leadership was moved away (or it did not lead) */
  forfeited: boolean;
  /** the member is gone from a different healthy node's list */
  left: boolean;
}

export interface ReplaceMemberState {
  /** the planned swap of a healthy member, when the user chose one at the assessment (the queue is empty then) */
  swap?: PlannedSwap | null;
  /** the members still to replace, in order (one at a time: never a second while a learner is pending) */
  queue: BrokenMember[];
  /** the member being replaced now */
  current: BrokenMember | null;
  /** the healthy node the removal and the member-list reads go through (never the broken member itself) */
  via: string | null;
  /** what the current member's replacement is at, in the screen's words (e.g. "listed as a learner") */
  phase: string | null;
  /** the nodes whose member was replaced, in order */
  done: string[];
  /** the current member's id as `via` lists it now (matched by id, name or peer URL); null when it is not listed */
  memberId?: string | null;
  /** the user decided to remove an unreachable member after the wait (a typed decision; never on the spot) */
  removeDecided?: boolean;
  /** what happens to the current member's old machine, decided from its live state once the member is gone */
  fate?: MachineFate | null;
  /** nodes kept powered off: left out of the member checks that follow */
  keptOff?: string[];
  /** nodes that came back healthy by themselves while waited for: nothing was removed (waiting was right) */
  cameBack?: string[];
}
