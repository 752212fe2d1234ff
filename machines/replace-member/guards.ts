/**
 * The member replacement's guards (pure functions of context and event). They are used inline by states.ts rather than
 * by name through setup.ts: a guard function typed outside setup's object literal, spread into it, makes TypeScript
 * infer the guards' parameter types of setup.ts's own parameterised guards (chose, procedureIs) as unknown.
 */
import type { GuardArgs } from '../recovery-types.js';
import { checkedNodes, currentHealthyNow, joinPhase, listOf, replaceOf, swapLeads, swapOf, viaNode } from './plan.js';
import { LEAVE_RULES, PLANNED_SWAP_RULES, REMOVAL_RULES, REPLACE_MEMBER_RULES } from './rules.js';
import { recoveryComplete } from '../decisions.js';

const current = ({ context }: GuardArgs) => replaceOf(context).current;
const observed = ({ context }: GuardArgs) =>
  context.observations.find((o) => o.node === replaceOf(context).current?.node) ?? null;

export const G = {
  /** a member is being replaced (a resume after a stop finds it here) */
  memberInHand: ({ context }: GuardArgs) => replaceOf(context).current !== null,
  /** the member in hand was removed; its machine not yet handled */
  memberRemoved: ({ context }: GuardArgs) =>
    replaceOf(context).current !== null && replaceOf(context).phase === 'removed',
  /** the member in hand was removed and its machine wiped or re-created: its join is next */
  machineHandled: ({ context }: GuardArgs) =>
    replaceOf(context).current !== null && ['wipe', 'recreate'].includes(replaceOf(context).fate ?? ''),
  /** no member left to replace */
  replaceQueueEmpty: ({ context }: GuardArgs) => replaceOf(context).queue.length === 0,
  /** every member the assessment named came back by itself: nothing was removed (waiting was right) */
  nothingWasReplaced: ({ context }: GuardArgs) =>
    replaceOf(context).done.length === 0 && (replaceOf(context).cameBack ?? []).length > 0,
  /** the current member answers again as a healthy voter */
  currentHealthyNow: ({ context }: GuardArgs) => currentHealthyNow(context),
  /** no healthy node other than the member's own could list the members */
  noWitness: ({ context }: GuardArgs) => replaceOf(context).via === null,
  /** a healthy node other than the member's own lists the members now */
  witnessFound: ({ context }: GuardArgs) => {
    const current = replaceOf(context).current;
    return current !== null && viaNode(context, current) !== null;
  },
  /** the member is no longer listed by the healthy node: removed already (before a crash, or by hand) */
  currentNotListed: ({ context }: GuardArgs) => replaceOf(context).memberId === null,
  /**
   * a member that was unreachable at the assessment, not yet decided on: waited for first, even once it answers again
   * with its etcd still starting (split-brain risk if it is removed and comes back with its old data)
   */
  mustWaitFirst: (args: GuardArgs) =>
    current(args)?.kind === 'unreachable' && current(args)?.node !== null && !replaceOf(args.context).removeDecided,
  /** every removal rule allows the removal of the current member */
  removalAllowed: ({ context, event }: GuardArgs) =>
    REMOVAL_RULES.every((name) => REPLACE_MEMBER_RULES[name](context, event, null) === null),
  /** the member has no machine of its own given to the tool */
  currentHasNoNode: (args: GuardArgs) => (current(args)?.node ?? null) === null,
  currentIsBlank: (args: GuardArgs) => observed(args)?.maintenance === true,
  currentBlankWithoutConfig: (args: GuardArgs) =>
    observed(args)?.maintenance === true && !args.context.configs[current(args)?.node ?? ''],
  currentReachable: (args: GuardArgs) => observed(args)?.reachable === true && !observed(args)?.maintenance,
  /** the new member is listed by the healthy node and promoted to a voter */
  joined: ({ context }: GuardArgs) => joinPhase(context).joined,
  /** every checked node Running, healthy, and agreeing on the members */
  membersAgree: ({ context }: GuardArgs) =>
    recoveryComplete(context.observations.filter((o) => checkedNodes(context).includes(o.node))).done,
  /** a planned swap whose member has not left yet (a resume comes back to it) */
  swapPending: ({ context }: GuardArgs) => {
    const swap = swapOf(context);
    return swap !== null && !swap.left;
  },
  /** the leave was confirmed by typing before the process stopped: go on without asking again */
  swapDecided: ({ context }: GuardArgs) => swapOf(context)?.decided === true,
  /** no healthy node other than the leaving one lists the members right now */
  swapNoWitness: ({ context }: GuardArgs) => swapOf(context)?.via === null,
  /** the different healthy node no longer lists the member: it has left (before a crash, or by hand) */
  swapNotListed: ({ context }: GuardArgs) => {
    const swap = swapOf(context);
    const list = listOf(context, swap?.via ?? null);
    return swap !== null && list !== null && !list.some((m) => m.id === swap.memberId);
  },
  /** the leaving node's member leads: the leadership is moved away first */
  swapLeadsNow: ({ context }: GuardArgs) => swapLeads(context) && swapOf(context)?.forfeited !== true,
  /** every leave rule allows it */
  leaveAllowed: ({ context, event }: GuardArgs) =>
    LEAVE_RULES.every((name) => PLANNED_SWAP_RULES[name](context, event, null) === null),
  /** the swapped member left and its machine still answers with its config: wiped only when its address is typed */
  swapMachineUndecided: (args: GuardArgs) =>
    swapOf(args.context) !== null && observed(args)?.reachable === true && !observed(args)?.maintenance,
  /** nothing was decided yet for the current member's machine */
  machineUndecided: ({ context }: GuardArgs) => (replaceOf(context).fate ?? null) === null,
  /** the member list the healthy node gave was read (a read that failed leaves the previous one) */
  viaListed: ({ context }: GuardArgs) => listOf(context, replaceOf(context).via) !== null,
} satisfies Record<string, (args: GuardArgs) => boolean>;
