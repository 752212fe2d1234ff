/**
 * The NOSPACE playbook's guards (pure functions of context and event), each named here and used by states.ts as
 * `G.<name>`. They are not spread into setup.ts: a guard typed outside setup's own object literal makes TypeScript
 * infer setup's parameterised guards (chose, procedureIs) with unknown params (machines/replace-member/guards.ts
 * found the same).
 */
import type { GuardArgs } from '../recovery-types.js';
import { addressMatches, type Rule } from '../guards.js';
import { promptTarget } from '../recovery/context.js';
import { defragmentedBeforeDisarm, leaderDefragmentedLast, nospaceQuorumHolds, oneDefragAtATime } from './rules.js';
import { allDefragmented, alarmsBack } from './space.js';

const allow = ({ context, event }: GuardArgs, rules: readonly Rule[]): boolean =>
  rules.every((rule) => rule(context, event, promptTarget(context)) === null);

export const G = {
  /** a typed address may start a defragment: the right node, quorum holds, none running, the leader last */
  nospaceMayDefragment: (args: GuardArgs) =>
    allow(args, [addressMatches, nospaceQuorumHolds, oneDefragAtATime, leaderDefragmentedLast]),
  /** a typed address may disarm: the right node, quorum holds, every member defragmented (or left out by override) */
  nospaceMayDisarm: (args: GuardArgs) => allow(args, [addressMatches, nospaceQuorumHolds, defragmentedBeforeDisarm]),
  nospaceQuorumHolds: (args: GuardArgs) => allow(args, [nospaceQuorumHolds]),
  nospaceAllDefragmented: ({ context }: GuardArgs) => allDefragmented(context.nospace),
  nospaceDisarmed: ({ context }: GuardArgs) => Boolean(context.nospace?.disarmed),
  /** the members listed their alarms and none is active (a resume after a disarm that landed) */
  nospaceNoAlarm: ({ context }: GuardArgs) => context.nospace?.alarmsNow?.length === 0,
  /** the NOSPACE alarm is back after the disarm: the database is still over its quota */
  nospaceAlarmBack: ({ context }: GuardArgs) => alarmsBack(context.nospace).length > 0,
} satisfies Record<string, (args: GuardArgs) => boolean>;
