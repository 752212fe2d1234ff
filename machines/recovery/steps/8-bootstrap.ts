/**
 * Step 8, bootstrap from the snapshot: the bootstrap node confirmed by typing its address, the file checked to be
 * the one verified, uploaded (restarting from zero after a cut stream: 8-bootstrap-upload.ts), then Bootstrap sent
 * once (SAFETY rule 6); a restore that failed is offered a new wipe and upload (8-bootstrap-rewipe.ts).
 */
import { and, assign } from 'xstate';
import { bootstrapCandidate, errorOf, targetNodes } from '../context.js';
import { promptState, retryPromptState } from '../prompts.js';
import { now, recoverySetup } from '../setup.js';
import { callStep, failedAt, pauseThen } from '../states.js';
import { rewipePending, rewipeStates, roundTag } from './8-bootstrap-rewipe.js';
import { uploadStates } from './8-bootstrap-upload.js';

export const bootstrap = recoverySetup.createStateConfig({
  entry: { type: 'startStep', params: { step: 'bootstrap' } },
  initial: 'reading',
  states: {
    ...callStep({
      call: 'reading',
      retry: 'retryRead',
      invoke: {
        src: 'observe',
        input: ({ context }) => ({ nodes: targetNodes(context) }),
        onDone: {
          target: 'routing',
          actions: { type: 'storeObservations', params: ({ event }) => ({ views: event.output }) },
        },
      },
      attempt: { action: 'observe', node: null },
    }),
    routing: {
      // Re-entered after a restore: once Bootstrap was sent it is never sent again (SAFETY rule 6).
      always: [
        // a failed restore's question not yet answered (the user stopped there): asked again
        { guard: ({ context }) => Boolean(context.bootstrap.restoreFailure), target: 'restoreFailed' },
        // a new round's wipe confirmed but not seen through: the same Reset (same operation id: the ledger does not
        // send it twice), then the wait for the node to come back
        { guard: ({ context }) => rewipePending(context), target: 'rewiping' },
        {
          guard: 'bootstrapWasSent',
          target: '#recovery.procedure.verify',
          actions: {
            type: 'endStep',
            params: ({ context }) => ({
              step: 'bootstrap',
              status: 'done',
              result: `Bootstrap sent to ${context.bootstrap.node ?? '?'}`,
            }),
          },
        },
        {
          guard: 'hasBootstrapCandidate',
          target: 'confirm',
          actions: assign({
            bootstrap: ({ context }) => ({
              ...context.bootstrap,
              node: context.bootstrap.node ?? bootstrapCandidate(context),
              skipHashCheck: Boolean(context.snapshot?.needsSkipHashCheck),
            }),
          }),
        },
        { target: '#recovery.procedure.waitPreparing' },
      ],
    },
    confirm: promptState(
      ({ context }) => ({
        id: `bootstrap:${context.bootstrap.node}`,
        kind: 'typed-address',
        question: `Upload the snapshot to ${context.bootstrap.node} and bootstrap etcd from it${context.bootstrap.skipHashCheck ? ' with skip-hash-check' : ''}?`,
        // no Esc here: the nodes were wiped at step 6, so going back to another choice would undo nothing (the screen
        // offers Esc only where the machine takes it)
        detail:
          `${context.snapshot?.file ?? ''}: ${context.dataLossWindow ?? ''}. Bootstrap is sent once; the restore then runs inside etcd and is watched until healthy.` +
          (context.wiped.length
            ? ` There is no way back from here: ${context.wiped.join(', ')} ${context.wiped.length === 1 ? 'is' : 'are'} already wiped.`
            : ''),
        target: context.bootstrap.node as string,
        recommended: { type: 'confirm', address: context.bootstrap.node as string },
      }),
      {
        on: {
          confirm: [
            {
              guard: and([
                'addressMatches',
                'snapshotVerified',
                'snapshotUsable',
                'skipHashCheckAcknowledged',
                'bootstrapNotSent',
              ]),
              target: 'checkingFile',
              actions: 'journalConfirmation',
            },
            {
              actions: {
                type: 'refuse',
                params: {
                  rules: [
                    'addressMatches',
                    'snapshotVerified',
                    'snapshotUsable',
                    'skipHashCheckAcknowledged',
                    'bootstrapNotSent',
                  ],
                },
              },
            },
          ],
        },
      },
    ),
    // The file must be exactly what was verified (SAFETY rule 1): its sha256 is computed again.
    ...callStep({
      call: 'checkingFile',
      invoke: {
        src: 'verifySnapshotFile',
        input: ({ context }) => ({ file: context.snapshot?.file ?? '' }),
        onDone: [
          { guard: 'fileUnchanged', target: 'uploading' },
          {
            target: '#recovery.failed',
            actions: [
              assign({
                guardStops: ({ context, system }) => [
                  ...context.guardStops,
                  {
                    rule: 'snapshotUnchanged',
                    message: `${context.snapshot?.file ?? ''} changed since it was verified; it is not uploaded.`,
                    at: now(system),
                  },
                ],
              }),
              ...failedAt(
                'bootstrap',
                'the snapshot file changed since it was verified',
                ({ context }) =>
                  `${context.snapshot?.file ?? 'the snapshot'} changed since it was verified (sha256 differs); nothing was uploaded`,
              ),
            ],
          },
        ],
      },
      attempt: { action: 'verify snapshot file', node: null },
    }),
    ...uploadStates,
    bootstrapping: {
      entry: assign({
        bootstrap: ({ context }) => ({ ...context.bootstrap, bootstrapSent: true }),
        transfer: null,
      }),
      invoke: {
        src: 'bootstrapNode',
        input: ({ context }) => ({
          node: context.bootstrap.node as string,
          skipHashCheck: context.bootstrap.skipHashCheck && context.skipHashCheckAcknowledged,
          opId: `bootstrap:${context.bootstrap.node}${roundTag(context)}`,
          wiped: context.wiped.includes(context.bootstrap.node as string),
          uploadSent: context.bootstrap.uploadSent,
        }),
        onDone: {
          target: '#recovery.procedure.verify',
          actions: [
            assign({ bootstrap: ({ context }) => ({ ...context.bootstrap, bootstrapAnswered: true }) }),
            {
              type: 'endStep',
              params: ({ context, event }) => ({
                step: 'bootstrap',
                status: 'done',
                result: `${context.bootstrap.node}: snapshot uploaded, Bootstrap ${event.output.alreadyDone ? 'had already happened (etcd starting)' : 'accepted'}${context.bootstrap.skipHashCheck ? ' with skip-hash-check' : ''}`,
              }),
            },
          ],
        },
        onError: [
          // The restore ran and failed, leaving etcd's data directory non-empty (facts §4): only a new wipe and a new
          // upload let Bootstrap restore again, and that is what the user is offered
          {
            guard: 'bootstrapRestoreFailed',
            target: 'restoreFailed',
            actions: assign({
              bootstrap: ({ context, event }) => ({ ...context.bootstrap, restoreFailure: errorOf(event).message }),
            }),
          },
          // The call may have reached the node: never re-send; watch what etcd does instead.
          {
            guard: 'mayHaveLanded',
            target: '#recovery.procedure.verify',
            actions: {
              type: 'endStep',
              params: ({ event }) => ({
                step: 'bootstrap',
                status: 'done',
                result: `Bootstrap sent, answer lost (${errorOf(event).message}); watching etcd`,
              }),
            },
          },
          {
            guard: 'canRetry',
            target: 'bootstrapRetry',
            actions: [
              {
                type: 'noteAttempt',
                params: ({ context }) => ({ action: 'bootstrap', node: context.bootstrap.node }),
              },
              // a refusal before BootstrapEtcd ran ("not available yet", "time is not in sync yet") did nothing
              assign({ bootstrap: ({ context }) => ({ ...context.bootstrap, bootstrapSent: false }) }),
            ],
          },
          {
            target: '#recovery.failed',
            actions: failedAt(
              'bootstrap',
              ({ event }) => errorOf(event).message,
              ({ event }) => errorOf(event).message,
            ),
          },
        ],
      },
    },
    ...rewipeStates,
    // the user's confirmation stands: a refusal before BootstrapEtcd ran is simply tried again
    bootstrapRetry: pauseThen('backoff', 'bootstrapping'),
    failed: retryPromptState(({ attempt }) => attempt?.action ?? 'bootstrap', 'reading'),
  },
});
