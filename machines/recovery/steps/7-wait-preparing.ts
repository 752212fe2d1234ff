/**
 * Step 7, wait for Preparing: every target node's etcd service watched until all are Preparing; a node held in
 * Waiting names its cause, and at the limit the user keeps waiting, stops, or continues without it by an override.
 */
import { assign } from 'xstate';
import { pendingPreparing, targetNodes } from '../context.js';
import { promptState } from '../prompts.js';
import { now, recoverySetup } from '../setup.js';
import { allPreparingThen, pollStates, startWait } from '../states.js';

export const waitPreparing = recoverySetup.createStateConfig({
  entry: startWait(
    'wait for Preparing',
    'Preparing',
    'preparingTimeoutMs',
    'waiting for every node to show etcd Preparing',
  ),
  initial: 'polling',
  states: {
    ...pollStates(
      (context, views) =>
        context.wait && {
          ...context.wait,
          pending: pendingPreparing(context, views),
          message: pendingPreparing(context, views)
            .map((p) => `${p.node} ${p.state ?? 'not answering'}: ${p.cause ?? ''}`)
            .join('; '),
        },
    ),
    check: {
      always: [
        allPreparingThen((context) => `${targetNodes(context).length} nodes Preparing`),
        { guard: 'waitExpired', target: 'timedOut' },
        { target: 'pause' },
      ],
    },
    timedOut: promptState(
      ({ context }) => ({
        id: 'preparing-timeout',
        kind: 'choose',
        question: `Still waiting: ${context.wait?.message ?? ''}. Keep waiting?`,
        detail:
          'A node sits in Waiting until its dependency is met (time sync, CRI, network): fix the cause, or continue without it by an explicit override.',
        options: [
          { id: 'wait', label: 'keep waiting (recommended)' },
          { id: 'override', label: 'continue without the waiting nodes (needs a reason)', needsReason: true },
          { id: 'stop', label: 'stop here (resumable)' },
        ],
        recommended: { type: 'choose', option: 'wait' },
      }),
      {
        on: {
          choose: [
            {
              guard: ({ event }) => event.option === 'wait',
              target: 'polling',
              actions: assign({
                wait: ({ context, system }) =>
                  context.wait && { ...context.wait, deadline: now(system) + context.timing.preparingTimeoutMs },
              }),
            },
            {
              guard: ({ event }) => event.option === 'stop',
              target: '#recovery.stoppedByUser',
              actions: 'journalConfirmation',
            },
          ],
          override: [
            {
              guard: 'reasonGiven',
              target: 'overridden',
              actions: [
                {
                  type: 'recordOverride',
                  params: ({ context }) => ({
                    what: `continue without ${context.wait?.pending.map((p) => p.node).join(', ')}`,
                  }),
                },
                assign({
                  excluded: ({ context }) => [...context.excluded, ...(context.wait?.pending.map((p) => p.node) ?? [])],
                }),
              ],
            },
            { actions: { type: 'refuse', params: { rules: ['reasonGiven'] } } },
          ],
        },
      },
    ),
    overridden: {
      always: [
        allPreparingThen((context) => `continuing without ${context.excluded.join(', ')} (override)`),
        { target: 'polling' },
      ],
    },
  },
});
