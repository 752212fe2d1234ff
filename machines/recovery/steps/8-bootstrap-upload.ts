/**
 * Step 8's upload: the snapshot streamed to the bootstrap node under an operation id of its own (restarting from zero
 * after a cut stream: Talos streams cannot resume), a node that stopped answering awaited until it answers again, and
 * only then the failure put to the user.
 */
import { assign } from 'xstate';
import { backoffDelay } from '../../errors.js';
import type { Attempt, RecoveryContext } from '../../recovery-types.js';
import { errorOf } from '../context.js';
import { answeredFailures, awaitedNode, nodeAnswerTimeout, now, recoverySetup } from '../setup.js';
import { duration, roundTag } from './8-bootstrap-rewipe.js';

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

export const uploadStates = {
  uploading: recoverySetup.createStateConfig({
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
          actions: assign(({ context, event, system }) => noteUploadFailure(context, event, now(system), 'await node')),
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
  }),
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
  awaitingNode: recoverySetup.createStateConfig({
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
  }),
};
