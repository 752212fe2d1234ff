/**
 * Step 5, init nodes: a node of type init is converted to controlplane (typed confirmation, staged change, reboot)
 * before anything else, one at a time.
 */
import { assign } from 'xstate';
import { initNodes as initNodesOf } from '../../decisions.js';
import { promptState, retryPromptState } from '../prompts.js';
import { recoverySetup } from '../setup.js';
import { callStep } from '../states.js';

export const initNodes = recoverySetup.createStateConfig({
  entry: [
    { type: 'startStep', params: { step: 'init nodes' } },
    assign({
      initQueue: ({ context }) => initNodesOf(context.observations).filter((n) => !context.converted.includes(n)),
    }),
  ],
  initial: 'next',
  states: {
    next: {
      always: [
        {
          guard: 'noInitNodes',
          target: '#recovery.procedure.prepare',
          actions: {
            type: 'endStep',
            params: ({ context }) =>
              context.converted.length
                ? {
                    step: 'init nodes',
                    status: 'done',
                    result: `converted ${context.converted.join(', ')} to controlplane`,
                  }
                : { step: 'init nodes', status: 'skipped', result: 'no init node' },
          },
        },
        { target: 'confirm' },
      ],
    },
    confirm: promptState(
      ({ context }) => ({
        id: `convert:${context.initQueue[0]}`,
        kind: 'typed-address',
        question: `Convert ${context.initQueue[0]} from init to controlplane and reboot it?`,
        detail:
          'An init node would bootstrap a new etcd on its own after a wipe; it is converted first (staged configuration change, then reboot).' +
          ((context.convertsSent ?? []).length
            ? ` There is no way back from here: the conversion of ${(context.convertsSent ?? []).join(', ')} was already sent.`
            : ''),
        target: context.initQueue[0] as string,
        recommended: { type: 'confirm', address: context.initQueue[0] as string },
      }),
      {
        on: {
          confirm: [
            {
              guard: 'addressMatches',
              target: 'converting',
              actions: [
                'journalConfirmation',
                assign({
                  convertsSent: ({ context }) => [
                    ...new Set([...(context.convertsSent ?? []), context.initQueue[0] as string]),
                  ],
                }),
              ],
            },
            { actions: { type: 'refuse', params: { rules: ['addressMatches'] } } },
          ],
          // Esc: back to the choice of snapshot while no node has been converted (nothing sent yet, as at the first
          // wipe); once one is converted there is no way back, and the screen offers none (it asks the machine)
          'answer.no': {
            guard: ({ context }) => context.converted.length === 0 && (context.convertsSent ?? []).length === 0,
            target: '#recovery.procedure.snapshot',
            actions: 'backToSnapshotChoice',
          },
        },
      },
    ),
    ...callStep({
      call: 'converting',
      retry: 'retrying',
      invoke: {
        src: 'convertInitNode',
        input: ({ context }) => ({
          node: context.initQueue[0] as string,
          opId: `convert:${context.initQueue[0]}`,
        }),
        onDone: {
          target: 'next',
          actions: assign({
            converted: ({ context }) => [...context.converted, context.initQueue[0] as string],
            initQueue: ({ context }) => context.initQueue.slice(1),
            attempt: null,
          }),
        },
      },
      attempt: ({ initQueue }) => ({ action: 'convert', node: initQueue[0] ?? null }),
    }),
    failed: retryPromptState(({ initQueue }) => `convert ${initQueue[0]}`, 'converting'),
  },
});
