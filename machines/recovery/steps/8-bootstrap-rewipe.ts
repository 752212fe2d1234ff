/**
 * Step 8 after a restore that failed: the node wiped again, awaited until it is back waiting for bootstrap, then the
 * upload and Bootstrap again, each round under operation ids of its own (the ledger sends each id at most once).
 */
import { and, assign } from 'xstate';
import { errorOf } from '../context.js';
import { promptState } from '../prompts.js';
import { now, recoverySetup } from '../setup.js';
import { nodeIsBack } from '../../prepare-node.js';
import type { RecoveryContext } from '../../recovery-types.js';

/** The wipe-upload-Bootstrap round: 0 the first, one more for each failed restore the user chose to redo. */
export const roundOf = (context: RecoveryContext): number => context.bootstrap.round ?? 0;

/** The part of a later round's operation ids that makes them new: the ledger sends each id at most once. */
export const roundTag = (context: RecoveryContext): string => (roundOf(context) ? `:r${roundOf(context)}` : '');

/** The labels step 6 wiped on the node (EPHEMERAL, plus ETCD on a dedicated etcd volume): wiped again the same way. */
const wipeLabels = (context: RecoveryContext, node: string): string[] => {
  const labels = context.plan.find((p) => p.node === node)?.labels ?? [];
  return labels.length ? labels : ['EPHEMERAL'];
};

/** A new round asked for after a failed restore, the wipe of which has not yet been seen through. */
export const rewipePending = (context: RecoveryContext): boolean =>
  roundOf(context) > 0 && !context.bootstrap.uploadSent && !context.bootstrap.rewipeDone;

/** The node did not come back Preparing in time after its new wipe: the question is put again. */
const rewipeTimedOut = (context: RecoveryContext): boolean =>
  context.bootstrap.rewipeSince != null &&
  (context.bootstrap.rewipeCheckedAt ?? 0) - context.bootstrap.rewipeSince > context.timing.nodeBackTimeoutMs;

/** "45 s", "10 min": how long a wait lasted, as the sentence says it. */
export const duration = (ms: number): string =>
  ms < 120_000 ? `${Math.round(ms / 1000)} s` : `${Math.round(ms / 60_000)} min`;

export const rewipeStates = {
  /**
   * A restore that failed (etcdutl wrote member/snap/db before the hash check; Talos keeps the directory, so the next
   * Bootstrap is refused as already done: facts §4, siderolabs/talos
   * internal/app/machined/pkg/system/services/etcd.go@v1.11.6:656-690): the node is wiped again, the snapshot uploaded
   * again and Bootstrap sent again, each under this new round's operation ids. Yes needs the node's address typed,
   * like every wipe (SAFETY rule 3); No stops here, resumable.
   */
  restoreFailed: promptState(
    ({ context }) => {
      const node = context.bootstrap.node as string;
      return {
        id: `rewipe:${node}:${roundOf(context) + 1}`,
        kind: 'typed-address',
        question: `Wipe ${node} again and upload the snapshot again?`,
        detail:
          `${context.bootstrap.restoreFailure ?? ''} Yes resets ${node} (${wipeLabels(context, node).join(' + ')}), waits for it to come back, uploads ${context.snapshot?.file ?? 'the snapshot'} and sends Bootstrap once more.` +
          ' No stops here (resumable).',
        target: node,
        recommended: { type: 'confirm', address: node },
      };
    },
    {
      on: {
        'answer.no': { target: '#recovery.stoppedByUser', actions: 'journalConfirmation' },
        confirm: [
          {
            guard: and(['addressMatches', 'snapshotVerified', 'snapshotUsable', 'skipHashCheckAcknowledged']),
            target: 'rewiping',
            actions: [
              'journalConfirmation',
              assign({
                bootstrap: ({ context }) => ({
                  ...context.bootstrap,
                  round: roundOf(context) + 1,
                  restoreFailure: null,
                  uploadSent: false,
                  uploaded: false,
                  bootstrapSent: false,
                  bootstrapAnswered: false,
                  uploadRestarts: 0,
                  rewipeDone: false,
                  rewipeSince: null,
                  rewipeCheckedAt: null,
                }),
                transfer: null,
                attempt: null,
              }),
            ],
          },
          {
            actions: {
              type: 'refuse',
              params: {
                rules: ['addressMatches', 'snapshotVerified', 'snapshotUsable', 'skipHashCheckAcknowledged'],
              },
            },
          },
        ],
      },
    },
  ),
  // the round's Reset, through the ledger under its own operation id (resolves once the node was seen to go down)
  rewiping: recoverySetup.createStateConfig({
    invoke: {
      src: 'resetNode',
      input: ({ context }) => ({
        node: context.bootstrap.node as string,
        labels: wipeLabels(context, context.bootstrap.node as string),
        opId: `reset:${context.bootstrap.node}:restore-${roundOf(context)}`,
      }),
      onDone: {
        target: 'rewipeBack',
        actions: assign({
          bootstrap: ({ context, system }) => ({ ...context.bootstrap, rewipeSince: now(system) }),
        }),
      },
      onError: {
        target: 'restoreFailed',
        actions: assign({
          bootstrap: ({ context, event }) => ({
            ...context.bootstrap,
            restoreFailure: `The new wipe of ${context.bootstrap.node ?? 'the node'} failed: ${errorOf(event).message}`,
          }),
        }),
      },
    },
  }),
  // until the wiped node answers again with etcd Preparing (or Waiting), as after step 6
  rewipeBack: recoverySetup.createStateConfig({
    initial: 'observing',
    states: {
      observing: {
        invoke: {
          src: 'observe',
          input: ({ context }) => ({ nodes: [context.bootstrap.node as string] }),
          onDone: [
            {
              guard: ({ event }) => event.output[0] !== undefined && nodeIsBack(event.output[0]),
              target: '#recovery.procedure.bootstrap.checkingFile',
              actions: assign({ bootstrap: ({ context }) => ({ ...context.bootstrap, rewipeDone: true }) }),
            },
            {
              target: 'pause',
              actions: assign({
                bootstrap: ({ context, system }) => ({ ...context.bootstrap, rewipeCheckedAt: now(system) }),
              }),
            },
          ],
          onError: {
            target: 'pause',
            actions: assign({
              bootstrap: ({ context, system }) => ({ ...context.bootstrap, rewipeCheckedAt: now(system) }),
            }),
          },
        },
      },
      pause: {
        always: {
          guard: ({ context }) => rewipeTimedOut(context),
          target: '#recovery.procedure.bootstrap.restoreFailed',
          actions: assign({
            bootstrap: ({ context }) => ({
              ...context.bootstrap,
              restoreFailure: `${context.bootstrap.node ?? 'The node'} did not come back with etcd waiting for bootstrap within ${duration(context.timing.nodeBackTimeoutMs)} of its new wipe; check its console.`,
            }),
          }),
        },
        invoke: { src: 'sleep', input: ({ context }) => ({ ms: context.timing.pollMs }) },
        on: { wake: 'observing' },
      },
    },
  }),
};
