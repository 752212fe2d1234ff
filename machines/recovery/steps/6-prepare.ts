/**
 * Step 6, prepare control-plane nodes: each node's wipe or re-creation confirmed by typing its address, then run by
 * its own child actor (machines/prepare-node.ts, id `prep:<node>`), side by side, until every node is back.
 */
import { and, assign, emit, enqueueActions } from 'xstate';
import { promptTarget, withPrep } from '../context.js';
import { promptState, retryAnswers } from '../prompts.js';
import { recoverySetup } from '../setup.js';
import { callStep } from '../states.js';

export const prepare = recoverySetup.createStateConfig({
  entry: { type: 'startStep', params: { step: 'prepare nodes' } },
  exit: 'stopPrepChildren',
  on: {
    'prep.update': {
      actions: assign({
        rows: ({ context, event }) =>
          withPrep(context.rows, event.node, {
            status: event.status,
            detail: event.detail,
            attempts: event.attempts,
          }),
      }),
    },
    'prep.done': {
      actions: [
        assign({
          prepared: ({ context, event }) => [...new Set([...context.prepared, event.node])],
          wiped: ({ context, event }) => (event.wiped ? [...new Set([...context.wiped, event.node])] : context.wiped),
          rows: ({ context, event }) =>
            withPrep(context.rows, event.node, { status: 'done', detail: 'back, etcd waiting for bootstrap' }),
        }),
        emit(({ event }) => ({
          type: 'journal' as const,
          entry: {
            kind: 'observation' as const,
            step: 'prepare nodes' as const,
            node: event.node,
            what: 'node prepared',
            result: 'back, etcd waiting for bootstrap',
          },
        })),
      ],
    },
    'prep.failed': {
      actions: assign({
        rows: ({ context, event }) => withPrep(context.rows, event.node, { status: 'failed', detail: event.error }),
      }),
    },
  },
  initial: 'reading',
  states: {
    // Re-read live state: a node prepared before a crash shows Preparing and is not touched again.
    ...callStep({
      call: 'reading',
      retry: 'retryRead',
      invoke: {
        src: 'observe',
        input: ({ context }) => ({ nodes: context.plan.map((p) => p.node) }),
        onDone: {
          target: 'respawn',
          actions: { type: 'storeObservations', params: ({ event }) => ({ views: event.output }) },
        },
      },
      attempt: { action: 'observe', node: null },
      onFailure: { target: 'respawn' },
    }),
    respawn: {
      // After an abort and resume, confirmed nodes that were not finished get their child back.
      entry: enqueueActions(({ context, enqueue }) => {
        for (const p of context.plan)
          if (context.confirmed.includes(p.node) && !context.prepared.includes(p.node))
            enqueue.spawnChild('prepareNode', {
              id: `prep:${p.node}`,
              input: {
                node: p.node,
                preparation: p.preparation,
                labels: p.labels,
                configFile: context.configs[p.node]?.file ?? null,
                timing: context.timing,
              },
            });
      }),
      always: 'confirming',
    },
    confirming: promptState(
      ({ context }) => {
        const p = context.plan.find((x) => !context.confirmed.includes(x.node));
        const node = p?.node ?? '';
        const row = context.rows[node];
        const what =
          p?.preparation === 'recreate'
            ? `Re-create ${node} from its configuration backup (${context.configs[node]?.file ?? '?'}) over the maintenance API`
            : `Wipe ${node} (${p?.labels.join(' + ') ?? 'EPHEMERAL'}) and reboot it`;
        return {
          id: `prepare:${node}`,
          kind: 'typed-address',
          question: `${what}?`,
          detail:
            p?.preparation === 'recreate'
              ? `${node} is a blank machine in maintenance mode: its server is not verified by the cluster CA (maintenance mode is server-only TLS).`
              : `This erases etcd data on ${node} (now: etcd ${row?.etcdService ?? 'unknown'}). The verified snapshot ${context.snapshot?.file ?? ''} will restore it.`,
          target: node,
          recommended: { type: 'confirm', address: node },
        };
      },
      {
        always: [{ guard: 'allConfirmed', target: 'running' }],
        on: {
          confirm: [
            {
              guard: and(['addressMatches', 'snapshotVerified', 'sourceKeptUntilVerified']),
              target: 'confirming',
              reenter: true,
              actions: [
                'journalConfirmation',
                enqueueActions(({ context, enqueue }) => {
                  const node = promptTarget(context) as string;
                  const p = context.plan.find((x) => x.node === node);
                  if (!p) return;
                  enqueue.assign({ confirmed: [...context.confirmed, node] });
                  enqueue.spawnChild('prepareNode', {
                    id: `prep:${node}`,
                    input: {
                      node,
                      preparation: p.preparation,
                      labels: p.labels,
                      configFile: context.configs[node]?.file ?? null,
                      timing: context.timing,
                    },
                  });
                }),
              ],
            },
            {
              actions: {
                type: 'refuse',
                params: { rules: ['addressMatches', 'snapshotVerified', 'sourceKeptUntilVerified'] },
              },
            },
          ],
        },
      },
    ),
    running: {
      always: [
        {
          guard: 'allPrepared',
          target: '#recovery.procedure.waitPreparing',
          actions: {
            type: 'endStep',
            params: ({ context }) => ({
              step: 'prepare nodes',
              status: 'done',
              result: context.plan
                .map((p) => `${p.node} ${p.preparation === 'wipe' ? 'wiped' : 're-created'}`)
                .join(', '),
            }),
          },
        },
        { guard: 'somePrepFailed', target: 'failed' },
      ],
    },
    failed: promptState(
      ({ context }) => {
        const failed = context.plan.filter((p) => context.rows[p.node]?.prep.status === 'failed');
        // a yes/no question like every other failure's: y tries again, n (or Enter) stops, resumable
        return {
          id: 'prepare-failed',
          kind: 'yes-no',
          question: `Preparing ${failed.map((p) => p.node).join(', ')} failed. Try again?`,
          detail: failed.map((p) => `${p.node}: ${context.rows[p.node]?.prep.detail ?? ''}`).join(' '),
          recommended: null,
        };
      },
      {
        on: retryAnswers('running', 'retryFailedPreps'),
      },
    ),
  },
});
