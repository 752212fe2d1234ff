/** The member-replacement procedure's part of the machine's context (JSON-serialisable, shaped for the screens). */
import type { BrokenMember } from '../decisions.js';

export interface ReplaceMemberState {
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
}
