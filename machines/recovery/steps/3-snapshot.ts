/**
 * Step 3, snapshot: choose where it comes from (an API snapshot from a live member; a raw database copy, of every
 * member when none can say which is freshest; a given file or talos-backup backup, local or in S3), take it and verify
 * it offline; a raw copy needs skip-hash-check, acknowledged with a reason, and a file older than a member's data is
 * an explicit decision. The choices and what is said about the chosen snapshot: ../snapshot-options.ts.
 */
import { assign, emit, enqueueActions } from 'xstate';
import { hashCheckDecision, newerLiveMembers } from '../../decisions.js';
import type { RecoveryContext, SnapshotInfo, SnapshotOption } from '../../recovery-types.js';
import { dataLossWindow, errorOf } from '../context.js';
import { promptState } from '../prompts.js';
import { now, recoverySetup } from '../setup.js';
import { callStep } from '../states.js';
import { olderThanLiveData, snapshotStepResult, snapshotWarnings } from '../snapshot-options.js';

/** The step's end, the same whichever procedure comes next. */
const endSnapshotStep = {
  type: 'endStep',
  params: ({ context }: { context: RecoveryContext }) => ({
    step: 'snapshot' as const,
    status: 'done' as const,
    result: snapshotStepResult(context.snapshot),
  }),
} as const;

/** Taking the chosen snapshot, tried again after a pause when the failure is worth it. */
/** The snapshot sources, the one just tried (the attempt's action names it) marked failed, saying why. */
const triedOptionFailed = (context: RecoveryContext, why: string): SnapshotOption[] =>
  context.snapshotOptions.map((o) => (o.id === context.attempt?.action ? { ...o, failed: why } : o));

const acquire = callStep({
  call: 'acquiring',
  retry: 'retrying',
  invoke: {
    src: 'acquireSnapshot',
    input: ({ context }) => {
      const id = context.attempt?.action ?? '';
      const option = context.snapshotOptions.find((o) => o.id === id) as SnapshotOption;
      return { option, opId: `snapshot:${id}:${context.snapshotOptions.filter((o) => o.failed).length}` };
    },
    onDone: {
      target: 'checking',
      actions: [
        assign({ snapshot: ({ event }) => event.output, skipHashCheckAcknowledged: false }),
        emit(({ event }) => ({
          type: 'journal' as const,
          entry: {
            kind: 'observation' as const,
            step: 'snapshot' as const,
            node: event.output.node,
            what: `snapshot ${event.output.method} ${event.output.file}`,
            result: `${event.output.usable ? 'usable' : 'unusable'}, integrity ${event.output.integrity}`,
            data: {
              file: event.output.file,
              sha256: event.output.sha256,
              revision: event.output.revision,
              totalKeys: event.output.totalKeys,
              totalSize: event.output.totalSize,
              hash: event.output.hash,
              takenAt: new Date(event.output.takenAt).toISOString(),
            },
          },
        })),
      ],
    },
  },
  attempt: ({ attempt }) => ({ action: attempt?.action ?? 'snapshot', node: null }),
  // a way of getting a snapshot that failed is marked so, and another one is chosen
  onFailure: {
    target: 'choosing',
    actions: assign({
      snapshotOptions: ({ context, event }) => triedOptionFailed(context, errorOf(event).message),
      notice: ({ event }) => errorOf(event).message,
    }),
  },
});

export const snapshot = recoverySetup.createStateConfig({
  entry: { type: 'startStep', params: { step: 'snapshot' } },
  initial: 'checkVerdict',
  states: {
    checkVerdict: {
      always: [
        // SAFETY rule 4 is about the full recovery; the other procedures keep every member and take a snapshot first
        { guard: { type: 'procedureIs', params: { procedure: 'replace-member' } }, target: 'choosing' },
        { guard: { type: 'procedureIs', params: { procedure: 'nospace' } }, target: 'choosing' },
        { guard: 'quorumLostOrOverridden', target: 'choosing' },
        {
          target: '#recovery.failed',
          actions: [
            { type: 'refuse', params: { rules: ['quorumLostOrOverridden'] } },
            {
              type: 'setOutcome',
              params: { outcome: 'failed: a full recovery was reached without a lost quorum or an override' },
            },
          ],
        },
      ],
    },
    choosing: promptState(
      ({ context }) => {
        const open = context.snapshotOptions.filter((o) => o.failed === null);
        const tried = context.snapshotOptions.filter((o) => o.failed !== null);
        return {
          id: 'snapshot-source',
          kind: 'choose',
          question: 'Where should the snapshot come from?',
          detail:
            (tried.length ? `Tried: ${tried.map((o) => `${o.id} (${o.failed ?? ''})`).join('; ')}. ` : '') +
            'Nothing is changed on the cluster before the snapshot is verified on local disk.',
          options: [
            ...open.map((o) => ({ id: o.id, label: o.label })),
            { id: 'file', label: 'use another snapshot file (give its path)' },
          ],
          recommended: open[0] ? { type: 'choose', option: open[0].id } : null,
        };
      },
      {
        on: {
          choose: [
            {
              guard: 'optionOffered',
              target: 'acquiring',
              actions: [
                'journalConfirmation',
                assign({
                  snapshotOptions: ({ context, event }) =>
                    event.option === 'file' && event.path
                      ? [
                          ...context.snapshotOptions.filter((o) => o.id !== `file:${event.path}`),
                          {
                            id: `file:${event.path}`,
                            method: 'file' as const,
                            node: null,
                            file: event.path,
                            label: `use the existing snapshot file ${event.path}`,
                            failed: null,
                          },
                        ]
                      : context.snapshotOptions,
                  attempt: ({ event }) => ({
                    action: event.option === 'file' ? `file:${event.path ?? ''}` : event.option,
                    node: null,
                    count: 0,
                    max: 0,
                    lastError: null,
                    nextAt: null,
                  }),
                }),
              ],
            },
            {
              actions: assign({ notice: 'That way of getting a snapshot is not offered (or already failed).' }),
            },
          ],
        },
      },
    ),
    ...acquire,
    // the download's bytes, rate and ETA on screen, as the actor reports them (snapshot.progress)
    acquiring: {
      ...acquire.acquiring,
      entry: assign({ transfer: null }),
      exit: assign({ transfer: null }),
      on: {
        'snapshot.progress': {
          actions: assign({
            transfer: ({ event }) => ({
              node: '',
              file: '',
              bytes: event.bytes,
              total: event.total,
              restarts: 0,
              label: event.label,
            }),
          }),
        },
      },
    },
    checking: {
      always: [
        {
          guard: 'snapshotUnusable',
          target: 'choosing',
          actions: [
            { type: 'refuse', params: { rules: ['snapshotUsable'] } },
            assign({
              snapshotOptions: ({ context }) =>
                triedOptionFailed(context, context.snapshot ? hashCheckDecision(context.snapshot).reason : 'unusable'),
              snapshot: null,
            }),
          ],
        },
        // restoring data older than a member holds loses writes: an explicit decision (issue 16); the procedures
        // that keep their members only keep this snapshot in reserve
        {
          guard: ({ context }) =>
            (context.procedure ?? 'recovery') === 'recovery' && olderThanLiveData(context.snapshot),
          target: 'acknowledgeOlder',
        },
        { guard: 'needsSkipAck', target: 'acknowledgeSkip' },
        { target: 'ready' },
      ],
    },
    acknowledgeOlder: promptState(
      ({ context }) => ({
        id: 'older-snapshot',
        kind: 'acknowledge',
        question: 'Restore from this snapshot although a member holds newer data?',
        detail: context.snapshot?.freshness?.sentence ?? '',
        risk: `The ${context.snapshot?.freshness?.behind ?? 0} revisions written after it are lost for good once the members are wiped; choose another source unless that data cannot be had.`,
        recommended: { type: 'answer.no' },
      }),
      {
        on: {
          acknowledge: [
            { guard: 'needsSkipAck', target: 'acknowledgeSkip', actions: 'journalConfirmation' },
            { target: 'ready', actions: 'journalConfirmation' },
          ],
          'answer.no': {
            target: 'choosing',
            actions: [
              'journalConfirmation',
              assign({
                snapshotOptions: ({ context }) =>
                  triedOptionFailed(
                    context,
                    `older than the data on ${context.snapshot?.freshness?.liveNode ?? 'a member'}: not chosen`,
                  ),
                snapshot: null,
              }),
            ],
          },
        },
      },
    ),
    acknowledgeSkip: promptState(
      ({ context }) => ({
        id: 'skip-hash-check',
        kind: 'acknowledge',
        question: 'Restore from this raw database copy with skip-hash-check?',
        detail: `${context.snapshot?.choice ? `Chosen: ${context.snapshot.choice}. ` : ''}${context.snapshot?.file ?? ''} has no sha256 trailer; its bbolt structure checked out.`,
        risk: 'Writes after the copy point may be missing, and etcd cannot verify the file itself.',
        recommended: {
          type: 'acknowledge',
          reason: 'recommended by talos-dr: the chosen raw copy passed the bbolt structure check',
        },
      }),
      {
        on: {
          acknowledge: {
            target: 'ready',
            actions: ['journalConfirmation', assign({ skipHashCheckAcknowledged: true })],
          },
          'answer.no': {
            target: 'choosing',
            actions: assign({
              snapshotOptions: ({ context }) => triedOptionFailed(context, 'skip-hash-check not acknowledged'),
              snapshot: null,
            }),
          },
        },
      },
    ),
    ready: {
      entry: enqueueActions(({ context, enqueue, system }) => {
        const s = context.snapshot as SnapshotInfo;
        enqueue.assign({ dataLossWindow: dataLossWindow(s, now(system)) });
        const newer = newerLiveMembers(context.observations, {
          node: s.node,
          raftAppliedIndex: s.raftAppliedIndex,
        });
        if (newer.length)
          enqueue({
            type: 'warn',
            params: {
              message: `${newer.join(', ')} ${newer.length === 1 ? 'holds' : 'hold'} newer data than this snapshot; a snapshot from ${newer[0]} loses less.`,
            },
          });
        // how fresh a file or backup is, and whether the target Talos's etcd can read it: on screen before the upload
        for (const message of snapshotWarnings(s, context.observations)) enqueue({ type: 'warn', params: { message } });
      }),
      // the NOSPACE playbook needs no configs; a recovery and a member replacement back them up next
      always: [
        {
          guard: { type: 'procedureIs', params: { procedure: 'nospace' } },
          target: '#recovery.procedure.nospace',
          actions: endSnapshotStep,
        },
        { target: '#recovery.procedure.backup', actions: endSnapshotStep },
      ],
    },
  },
});
