/**
 * Step 1, connect: ask every control-plane node for its version, then have the user confirm the node set
 * (nothing is changed before a verified snapshot is on local disk).
 */
import { assign } from 'xstate';
import { emptyRow } from '../context.js';
import { EXTERNAL_CONTROLLERS, promptState, retryPromptState } from '../prompts.js';
import { recoverySetup } from '../setup.js';
import { callStep } from '../states.js';

export const connect = recoverySetup.createStateConfig({
  entry: { type: 'startStep', params: { step: 'connect' } },
  initial: 'calling',
  states: {
    ...callStep({
      call: 'calling',
      retry: 'retrying',
      invoke: {
        src: 'connect',
        input: ({ context }) => ({ nodes: context.nodes }),
        onDone: [
          {
            guard: 'anyNodeAnswered',
            target: '#recovery.procedure.confirmNodes',
            actions: [
              assign({
                rows: ({ context, event }) => {
                  const rows = { ...context.rows };
                  for (const n of event.output.nodes) {
                    const row = rows[n.node] ?? emptyRow(n.node);
                    rows[n.node] = { ...row, reachable: n.ok, error: n.error };
                  }
                  return rows;
                },
              }),
              {
                type: 'endStep',
                params: ({ event }) => ({
                  step: 'connect',
                  status: 'done',
                  result: `${event.output.nodes.filter((n) => n.ok).length} of ${event.output.nodes.length} nodes answered${
                    event.output.nodes.some((n) => !n.ok)
                      ? ` (${event.output.nodes
                          .filter((n) => !n.ok)
                          .map((n) => n.node)
                          .join(', ')} did not)`
                      : ''
                  }`,
                }),
              },
            ],
          },
          {
            // Blank machines answer only the maintenance API: assess tells them apart from dead ones.
            target: '#recovery.procedure.confirmNodes',
            actions: {
              type: 'endStep',
              params: { step: 'connect', status: 'done', result: 'no node answered the authenticated API' },
            },
          },
        ],
      },
      attempt: { action: 'connect', node: null },
    }),
    failed: retryPromptState('connect', 'calling'),
  },
});

export const confirmNodes = promptState(
  ({ context }) => ({
    id: 'confirm-nodes',
    kind: 'yes-no',
    question: `Recover etcd on these control-plane nodes: ${context.nodes.join(', ')}?`,
    detail: `${EXTERNAL_CONTROLLERS} Nothing is changed before a verified snapshot is on local disk and you type each node's address.`,
    recommended: { type: 'answer.yes' },
  }),
  {
    on: {
      'answer.yes': { target: 'assess', actions: 'journalConfirmation' },
      'answer.no': { target: '#recovery.stoppedByUser', actions: 'journalConfirmation' },
    },
  },
);
