/**
 * The Talos etcd disaster-recovery procedure (PRODUCT.md §1, steps 1–9) as one xstate v5 machine: this file is its
 * table of contents. The assessment (step 2) chooses the procedure: the full recovery, the replacement of broken
 * members while quorum holds (machines/replace-member), or the NOSPACE playbook (machines/nospace); each is a state
 * under `procedure`, so abort, give-up and resume work the same for all. Each step is one state config in steps/ (the table of steps, with their talosctl equivalents
 * and texts, is steps.ts); the actors, guards, delays and actions they use by name are in setup.ts.
 *
 * Pure: every Talos call and every file write is a named actor supplied by the runtime (src/wizard), the journal is
 * fed through emitted `journal` events, and every SAFETY.md rule is a named guard (machines/guards.ts). Each step
 * re-reads live state on entry, so a restored machine continues safely. The context is JSON-serialisable and shaped
 * for the screens. State ids, child ids and event names are persisted in state.json: test/machines/golden holds
 * incident folders saved by earlier builds, which must still resume.
 */
import { assign, enqueueActions } from 'xstate';
import type { ActorRefFrom, SnapshotFrom } from 'xstate';
import type { RecoveryContext } from '../recovery-types.js';
import { FOLLOW_UP, giveUpReason, initialContext } from './context.js';
import { now, recoverySetup } from './setup.js';
import { confirmNodes, connect } from './steps/1-connect.js';
import { assess } from './steps/2-assess.js';
import { snapshot } from './steps/3-snapshot.js';
import { backup } from './steps/4-backup.js';
import { initNodes } from './steps/5-init-nodes.js';
import { prepare } from './steps/6-prepare.js';
import { waitPreparing } from './steps/7-wait-preparing.js';
import { bootstrap } from './steps/8-bootstrap.js';
import { verify } from './steps/9-verify.js';
import { replaceMember } from '../replace-member/states.js';
import { nospace } from '../nospace/states.js';
import { afterRestore } from '../after-restore/states.js';

/** A final state that records its outcome (journalled by setOutcome). */
const endsAs = (outcome: RecoveryContext['outcome']) =>
  recoverySetup.createStateConfig({ type: 'final', entry: { type: 'setOutcome', params: { outcome } } });

export const recoveryMachine = recoverySetup.createMachine({
  id: 'recovery',
  context: ({ input, self }) => initialContext(input, now(self.system)),
  initial: 'procedure',
  states: {
    procedure: {
      initial: 'connect',
      on: {
        abort: { target: 'stoppedByUser', actions: ['stopPrepChildren', 'journalConfirmation'] },
        'effect.notice': { actions: assign({ notice: ({ event }) => event.text }) },
        // autopilot's time limit (or a prompt only a person can answer): end in a clear state, naming what held it up
        'give-up': {
          target: '#recovery.failed',
          actions: [
            'stopPrepChildren',
            {
              type: 'endStep',
              params: ({ context, event }) => ({
                step: context.steps.find((s) => s.status === 'active')?.name ?? 'connect',
                status: 'failed',
                result: event.reason ?? giveUpReason(context),
              }),
            },
            // the sender's reason first: the waiting state's exit clears the wait before these params are read
            {
              type: 'setOutcome',
              params: ({ context, event }) => ({ outcome: `failed: ${event.reason ?? giveUpReason(context)}` }),
            },
          ],
        },
      },
      states: {
        // shallow: a resumed step starts again at its first sub-state, which re-reads live state
        hist: { type: 'history', history: 'shallow' },
        connect, // 1
        confirmNodes,
        assess, // 2
        snapshot, // 3
        backup, // 4
        initNodes, // 5
        prepare, // 6
        waitPreparing, // 7
        bootstrap, // 8
        verify, // 9
        afterRestore, // after any restore: kubelets and a health check (machines/after-restore)
        replaceMember, // quorum holds: the members to replace, one at a time (machines/replace-member)
        nospace, // a full database: defragment and disarm (machines/nospace)
      },
    },

    stoppedByUser: {
      entry: { type: 'setOutcome', params: { outcome: 'stopped-by-user' } },
      on: {
        resume: { target: 'procedure.hist', actions: assign({ outcome: null }) },
      },
    },
    nothingToDo: endsAs('nothing-to-do'),
    stoppedQuorumIntact: endsAs('stopped-quorum-intact'),
    recovered: {
      type: 'final',
      // step 10's own follow-ups (what is still wrong, a declined restart's command) come first and stay
      entry: [
        assign({
          followUp: ({ context }) => [...context.followUp, ...FOLLOW_UP.filter((f) => !context.followUp.includes(f))],
        }),
        { type: 'setOutcome', params: { outcome: 'recovered' } },
      ],
    },
    memberReplaced: endsAs('member-replaced'),
    nospaceCleared: endsAs('nospace-cleared'),
    failed: {
      type: 'final',
      entry: enqueueActions(({ context, enqueue }) => {
        if (!context.outcome)
          enqueue({ type: 'setOutcome', params: { outcome: 'failed: the recovery could not continue' } });
      }),
    },
  },
});

export type RecoveryMachine = typeof recoveryMachine;
export type RecoveryActor = ActorRefFrom<RecoveryMachine>;
export type RecoverySnapshot = SnapshotFrom<RecoveryMachine>;
