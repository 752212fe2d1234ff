/**
 * Step 8, bootstrap from the snapshot: the bootstrap node confirmed by typing its address, the file checked to be
 * the one verified, uploaded (restarting from zero after a cut stream), then Bootstrap sent once (SAFETY rule 6).
 */
import { and, assign } from 'xstate';
import { backoffDelay } from '../../errors.js';
import type { Attempt, RecoveryContext } from '../../recovery-types.js';
import { bootstrapCandidate, errorOf, targetNodes } from '../context.js';
import { promptState, retryPromptState } from '../prompts.js';
import { now, recoverySetup } from '../setup.js';
import { callStep, failedAt, pauseThen } from '../states.js';

/** The upload's attempt after a cut stream: shown on screen, and named by the retry prompt. */
function uploadAttempt(context: RecoveryContext, error: string, count: number, nextAt: number | null): Attempt {
  const { node } = context.bootstrap;
  return { action: 'upload', node, count, max: context.timing.maxAttempts, lastError: error, nextAt };
}

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
        detail: `${context.snapshot?.file ?? ''}: ${context.dataLossWindow ?? ''}. Bootstrap is sent once; the restore then runs inside etcd and is watched until healthy.`,
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
    uploading: {
      entry: assign({
        bootstrap: ({ context }) => ({ ...context.bootstrap, uploadSent: true }),
        transfer: ({ context }) => ({
          node: context.bootstrap.node as string,
          file: context.snapshot?.file ?? '',
          bytes: 0,
          total: context.snapshot?.bytes ?? 0,
          restarts: context.transfer?.restarts ?? 0,
        }),
      }),
      invoke: {
        src: 'uploadSnapshot',
        input: ({ context }) => ({
          node: context.bootstrap.node as string,
          file: context.snapshot?.file ?? '',
          bytes: context.snapshot?.bytes ?? 0,
          opId: `upload:${context.bootstrap.node}:${context.transfer?.restarts ?? 0}`,
        }),
      },
      on: {
        'upload.progress': {
          actions: assign({
            transfer: ({ context, event }) =>
              context.transfer && { ...context.transfer, bytes: event.bytes, total: event.total },
          }),
        },
        'upload.done': {
          target: 'bootstrapping',
          actions: assign({
            bootstrap: ({ context }) => ({ ...context.bootstrap, uploaded: true }),
            attempt: null,
          }),
        },
        'upload.failed': [
          {
            guard: 'uploadCanRetry',
            target: 'uploadRetry',
            actions: assign({
              attempt: ({ context, event, system }) => {
                const count = (context.attempt?.action === 'upload' ? context.attempt.count : 0) + 1;
                return uploadAttempt(context, event.error, count, now(system) + backoffDelay(context.timing, count));
              },
              transfer: ({ context }) =>
                context.transfer && { ...context.transfer, bytes: 0, restarts: context.transfer.restarts + 1 },
            }),
          },
          {
            target: 'failed',
            actions: assign({
              attempt: ({ context, event }) =>
                uploadAttempt(context, event.error, (context.attempt?.count ?? 0) + 1, null),
            }),
          },
        ],
      },
    },
    uploadRetry: pauseThen('backoff', 'uploading'),
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
          opId: `bootstrap:${context.bootstrap.node}`,
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
    // the user's confirmation stands: a refusal before BootstrapEtcd ran is simply tried again
    bootstrapRetry: pauseThen('backoff', 'bootstrapping'),
    failed: retryPromptState(({ attempt }) => attempt?.action ?? 'bootstrap', 'reading'),
  },
});
