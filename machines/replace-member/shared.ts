/**
 * What every step of the member replacement (machines/replace-member/steps/) writes the same way: the member in hand
 * and its replace state, the read of every node a step starts with, the polls of a wait, the journal lines, and the
 * ends of a step that find the member no longer listed or its machine kept off.
 */
import { assign } from 'xstate';
import type { NodeView, RecoveryContext } from '../recovery-types.js';
import { retryPromptState } from '../recovery/prompts.js';
import { now, recoverySetup } from '../recovery/setup.js';
import { callStep } from '../recovery/states.js';
import { replaceOf, swapOf } from './plan.js';
import type { PlannedSwap } from './types.js';

export type Ctx = { context: RecoveryContext };

/** The member in hand, as the user knows it: its node, else its name, else its id. */
export const who = (context: RecoveryContext): string => {
  const c = replaceOf(context).current;
  return c?.node ?? c?.name ?? c?.memberId ?? 'the member';
};

/** The replace state with some fields changed. */
export const patch = (context: RecoveryContext, fields: Partial<ReturnType<typeof replaceOf>>) => ({
  ...replaceOf(context),
  ...fields,
});

/**
 * The swapped member has left: from here it is replaced as a removed member is (its machine wiped or kept off, then
 * its join followed), with the id and the confirming node the leave used.
 */
export const leftSwap = (context: RecoveryContext) => {
  const swap = swapOf(context) as PlannedSwap;
  return patch(context, {
    swap: { ...swap, left: true },
    current: {
      node: swap.node,
      memberId: swap.memberId,
      name: swap.name,
      kind: 'etcd-failing',
      why: `planned swap of a healthy member: ${swap.node} left etcd by itself`,
    },
    via: swap.via,
    memberId: swap.memberId,
    fate: null,
    phase: 'removed',
  });
};

/**
 * Read every node given, then `next`: the states decide from what the cluster shows now, never from what it showed
 * before. A failed read waits and tries again on its own, then asks (`failed`).
 */
export const readAll = (next: string) => ({
  ...callStep({
    call: 'reading',
    retry: 'retryRead',
    invoke: {
      src: 'observe',
      input: ({ context }) => ({ nodes: context.nodes }),
      onDone: {
        target: next,
        actions: { type: 'storeObservations', params: ({ event }) => ({ views: event.output }) },
      },
    },
    attempt: { action: 'read every node', node: null },
  }),
  failed: retryPromptState((c) => c.attempt?.action ?? 'read every node', 'reading'),
});

/**
 * A wait's poll: read `nodes`, fold their views in, let `update` rewrite the wait (and the replace state) from them,
 * then the wait's `check` decides; a read that fails is tried again after the poll interval (`pause`).
 */
export const pollNodes = (
  nodes: (context: RecoveryContext) => string[],
  update: (
    context: RecoveryContext,
    views: NodeView[],
    at: number,
  ) => Partial<Pick<RecoveryContext, 'wait' | 'replace'>>,
) =>
  recoverySetup.createStateConfig({
    invoke: {
      src: 'observe',
      input: ({ context }) => ({ nodes: nodes(context) }),
      onDone: {
        target: 'check',
        actions: [
          { type: 'storeObservations', params: ({ event }) => ({ views: event.output }) },
          assign(({ context, event, system }) => update(context, event.output, now(system))),
        ],
      },
      onError: { target: 'pause' },
    },
  });

export const journal = (
  what: (a: Ctx) => string,
  result: (a: Ctx) => string,
  kind: 'decision' | 'observation' = 'decision',
) =>
  recoverySetup.emit((a) => ({
    type: 'journal' as const,
    entry: { kind, node: replaceOf(a.context).current?.node ?? null, what: what(a), result: result(a) },
  }));

/** A wait of the procedure: from now until `ms` from now, with a message the polls rewrite. */
export const startWaiting = (ms: (c: RecoveryContext) => number, message: (c: RecoveryContext) => string) =>
  recoverySetup.assign({
    wait: ({ context, system }) => ({
      what: 'node back' as const,
      since: now(system),
      deadline: now(system) + ms(context),
      message: message(context),
      pending: [],
    }),
  });

/**
 * Step 5 ends without a call: the node that lists the members (`via`) no longer lists the member in hand, so there is
 * nothing to send (`why`: it left already, already removed).
 */
export const notListedAnyMore = (why: string) =>
  [
    {
      type: 'endStep',
      params: ({ context }: Ctx) => ({
        step: 'remove member' as const,
        status: 'done' as const,
        result: `${who(context)}: no longer listed by ${replaceOf(context).via} (${why})`,
      }),
    },
    journal(
      ({ context }) => `${who(context)}: member not listed`,
      ({ context }) => `${replaceOf(context).via} does not list it: ${why}, nothing to send`,
      'observation',
    ),
  ] as const;

/** Step 6 ends with the old machine kept off: noted among those that must be wiped before they ever boot again. */
export const keptOff = (result: (context: RecoveryContext) => string) =>
  [
    recoverySetup.assign({
      replace: ({ context }) =>
        patch(context, { fate: 'keep-off', keptOff: [...(replaceOf(context).keptOff ?? []), who(context)] }),
    }),
    {
      type: 'endStep',
      params: ({ context }: Ctx) => ({
        step: 'replace node' as const,
        status: 'done' as const,
        result: result(context),
      }),
    },
  ] as const;
