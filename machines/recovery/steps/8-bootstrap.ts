/**
 * Step 8, bootstrap from the snapshot: the bootstrap node confirmed by typing its address, the file checked to be
 * the one verified, uploaded (restarting from zero after a cut stream), then Bootstrap sent once (SAFETY rule 6).
 */
import { and, assign } from 'xstate';
import { backoffDelay } from '../../errors.js';
import type { Attempt, RecoveryContext } from '../../recovery-types.js';
import { bootstrapCandidate, errorOf, targetNodes } from '../context.js';
import { promptState, retryPromptState } from '../prompts.js';
import { answeredFailures, awaitedNode, nodeAnswerTimeout, now, recoverySetup } from '../setup.js';
import { nodeIsBack } from '../../prepare-node.js';
import { callStep, failedAt, pauseThen } from '../states.js';

/** The upload's attempt after a cut stream: shown on screen, and named by the retry prompt. */
function uploadAttempt(context: RecoveryContext, error: string, count: number, nextAt: number | null): Attempt {
  const { node } = context.bootstrap;
  return { action: 'upload', node, count, max: context.timing.maxAttempts, lastError: error, nextAt };
}

/**
 * A failed upload, noted: the attempt (the tries so far, and whether the node answered at all), and the transfer
 * ended (the next one starts from zero under a new operation id: Talos streams cannot resume). A node that did not
 * answer is awaited from the first time it was found silent, until `nodeAnswerTimeoutMs` later.
 */
function noteUploadFailure(
  context: RecoveryContext,
  event: { error: string; unanswered?: boolean },
  at: number,
  next: 'await node' | 'backoff' | 'ask',
): Partial<RecoveryContext> {
  const previous = context.attempt?.action === 'upload' ? context.attempt : null;
  const count = (previous?.count ?? 0) + 1;
  const silent = next === 'await node';
  const node = context.bootstrap.node as string;
  const attempt: Attempt = {
    ...uploadAttempt(
      context,
      event.error,
      count,
      next === 'backoff' ? at + backoffDelay(context.timing, count - (previous?.unanswered ?? 0)) : null,
    ),
    unanswered: (previous?.unanswered ?? 0) + (silent ? 1 : 0),
    awaiting: silent ? awaitedNode(context, previous, node, at) : null,
  };
  return {
    attempt,
    transfer: null,
    bootstrap: {
      ...context.bootstrap,
      uploadRestarts: (context.transfer?.restarts ?? context.bootstrap.uploadRestarts ?? 0) + 1,
    },
  };
}

/** The wipe-upload-Bootstrap round: 0 the first, one more for each failed restore the user chose to redo. */
const roundOf = (context: RecoveryContext): number => context.bootstrap.round ?? 0;

/** The part of a later round's operation ids that makes them new: the ledger sends each id at most once. */
const roundTag = (context: RecoveryContext): string => (roundOf(context) ? `:r${roundOf(context)}` : '');

/** The labels step 6 wiped on the node (EPHEMERAL, plus ETCD on a dedicated etcd volume): wiped again the same way. */
const wipeLabels = (context: RecoveryContext, node: string): string[] => {
  const labels = context.plan.find((p) => p.node === node)?.labels ?? [];
  return labels.length ? labels : ['EPHEMERAL'];
};

/** A new round asked for after a failed restore, the wipe of which has not yet been seen through. */
const rewipePending = (context: RecoveryContext): boolean =>
  roundOf(context) > 0 && !context.bootstrap.uploadSent && !context.bootstrap.rewipeDone;

/** The node did not come back Preparing in time after its new wipe: the question is put again. */
const rewipeTimedOut = (context: RecoveryContext): boolean =>
  context.bootstrap.rewipeSince != null &&
  (context.bootstrap.rewipeCheckedAt ?? 0) - context.bootstrap.rewipeSince > context.timing.nodeBackTimeoutMs;

/** "45 s", "10 min": how long a wait lasted, as the sentence says it. */
const duration = (ms: number): string =>
  ms < 120_000 ? `${Math.round(ms / 1000)} s` : `${Math.round(ms / 60_000)} min`;

/** One answer (or none) to the cheap call that asks whether the awaited node answers again. */
function noteProbe(context: RecoveryContext, at: number, error: string | null): Attempt | null {
  const attempt = context.attempt;
  if (!attempt?.awaiting) return attempt;
  return {
    ...attempt,
    lastError: error ?? attempt.lastError,
    nextAt: at + context.timing.pollMs,
    awaiting: { ...attempt.awaiting, checkedAt: at },
  };
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
    uploading: {
      entry: assign({
        bootstrap: ({ context }) => ({ ...context.bootstrap, uploadSent: true }),
        transfer: ({ context }) => ({
          node: context.bootstrap.node as string,
          file: context.snapshot?.file ?? '',
          bytes: 0,
          total: context.snapshot?.bytes ?? 0,
          restarts: context.transfer?.restarts ?? context.bootstrap.uploadRestarts ?? 0,
        }),
      }),
      invoke: {
        src: 'uploadSnapshot',
        input: ({ context }) => ({
          node: context.bootstrap.node as string,
          file: context.snapshot?.file ?? '',
          bytes: context.snapshot?.bytes ?? 0,
          opId: `upload:${context.bootstrap.node}${roundTag(context)}:${context.transfer?.restarts ?? 0}`,
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
          // the node did not answer at all (a reboot): wait until it answers again, then upload again
          {
            guard: 'uploadNodeSilent',
            target: 'awaitingNode',
            actions: assign(({ context, event, system }) =>
              noteUploadFailure(context, event, now(system), 'await node'),
            ),
          },
          {
            guard: 'uploadCanRetry',
            target: 'uploadRetry',
            actions: assign(({ context, event, system }) => noteUploadFailure(context, event, now(system), 'backoff')),
          },
          {
            target: 'failed',
            actions: assign(({ context, event, system }) => noteUploadFailure(context, event, now(system), 'ask')),
          },
        ],
      },
    },
    // the backoff after a try the node answered but refused for now (tries that met a silent node are not counted)
    uploadRetry: recoverySetup.createStateConfig({
      invoke: {
        src: 'sleep',
        input: ({ context }) => ({
          ms: backoffDelay(context.timing, Math.max(1, answeredFailures(context.attempt))),
        }),
      },
      on: { wake: 'uploading' },
    }),
    /**
     * The upload's node stopped answering (it reboots: nothing listens on its address; the client calls that
     * connection-refused / unreachable, src/talos/errors.ts). Asked a cheap Version every poll interval until it answers,
     * then the upload starts again from zero; only after `nodeAnswerTimeoutMs` of silence is the failure put to the
     * user. Real hardware takes minutes to reboot, so a handful of quick tries would give up mid-bootstrap.
     */
    awaitingNode: {
      initial: 'pause',
      states: {
        pause: {
          always: {
            guard: 'nodeAnswerExpired',
            target: '#recovery.procedure.bootstrap.failed',
            actions: assign({
              attempt: ({ context }) =>
                context.attempt && {
                  ...context.attempt,
                  nextAt: null,
                  awaiting: null,
                  lastError: `${context.bootstrap.node ?? 'the node'} did not answer again within ${duration(nodeAnswerTimeout(context))}, so the upload was not tried again (last: ${context.attempt.lastError ?? 'no answer'}); check that the node is powered on and reachable, then try again.`,
                },
            }),
          },
          invoke: { src: 'sleep', input: ({ context }) => ({ ms: context.timing.pollMs }) },
          on: { wake: 'probing' },
        },
        probing: {
          invoke: {
            src: 'connect',
            input: ({ context }) => ({ nodes: [context.bootstrap.node as string] }),
            onDone: [
              {
                guard: 'anyNodeAnswered',
                target: '#recovery.procedure.bootstrap.uploading',
                actions: assign({
                  attempt: ({ context }) => context.attempt && { ...context.attempt, awaiting: null },
                }),
              },
              {
                target: 'pause',
                actions: assign({
                  attempt: ({ context, event, system }) =>
                    noteProbe(context, now(system), event.output.nodes[0]?.error ?? null),
                }),
              },
            ],
            onError: {
              target: 'pause',
              actions: assign({
                attempt: ({ context, event, system }) => noteProbe(context, now(system), errorOf(event).message),
              }),
            },
          },
        },
      },
    },
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
    rewiping: {
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
    },
    // until the wiped node answers again with etcd Preparing (or Waiting), as after step 6
    rewipeBack: {
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
    },
    // the user's confirmation stands: a refusal before BootstrapEtcd ran is simply tried again
    bootstrapRetry: pauseThen('backoff', 'bootstrapping'),
    failed: retryPromptState(({ attempt }) => attempt?.action ?? 'bootstrap', 'reading'),
  },
});
