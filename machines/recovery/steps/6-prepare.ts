/**
 * Step 6, prepare control-plane nodes: each node's wipe or re-creation confirmed by typing its address, the snapshot
 * file checked again (still there, same sha256) right before the node's child is started, then run by its own child
 * actor (machines/prepare-node.ts, id `prep:<node>`), side by side, until every node is back. Esc at the first
 * confirmation goes back to the choice of snapshot; once a node's wipe has started there is no way back.
 */
import { and, assign, emit, enqueueActions } from 'xstate';
import type { RecoveryContext } from '../../recovery-types.js';
import { promptTarget, withPrep } from '../context.js';
import { promptState, retryAnswers } from '../prompts.js';
import { recoverySetup } from '../setup.js';
import { callStep } from '../states.js';

/** Confirmed nodes whose preparation has not finished: each needs its child (again, after a stop and resume). */
const unfinished = (context: RecoveryContext): string[] =>
  context.plan.map((p) => p.node).filter((n) => context.confirmed.includes(n) && !context.prepared.includes(n));

/** A node whose destructive call was answered: its child now waits for it to come back, or is done. */
const ANSWERED = ['rebooting', 'done'];

/** The snapshot source, when the file was taken from a node of this cluster (a file given names none). */
const sourceOf = (context: RecoveryContext): string | null => context.snapshot?.node ?? null;

/**
 * Whether `node`'s child may start now. The snapshot source's starts only once every other planned node's Reset (or
 * re-creation) has been answered, so the source keeps its data until the others are wiped (SAFETY rule 3; the plan puts
 * it last, planPreparation). Confirmation order alone did not order the sends: each child reads its node's boot id
 * before the Reset (src/wizard/destructive.ts, bounded at 2 s), and a read that hung on another node let the source's
 * Reset go out first (test/drill/source-last.test.ts). `statusOf` gives each node's preparation status.
 */
function mayStart(
  context: RecoveryContext,
  node: string,
  statusOf = (n: string): string | null | undefined => context.rows[n]?.prep.status,
): boolean {
  if (node !== sourceOf(context)) return true;
  return context.plan.every((p) => p.node === node || ANSWERED.includes(statusOf(p.node) ?? ''));
}

/** What the source's row says while it waits for the others (PrepStatus 'confirmed': confirmed, not started). */
const SOURCE_WAITS = "waits until the other nodes' resets are answered: the snapshot source is wiped last";

/** A prep.update that lets the waiting snapshot source start: its child is then started (after the file's re-check). */
const sourceNowMayStart = ({
  context,
  event,
}: {
  context: RecoveryContext;
  event: { node: string; status: string };
}) => {
  const source = sourceOf(context);
  if (!source || context.rows[source]?.prep.status !== 'confirmed') return false;
  return mayStart(context, source, (n) => (n === event.node ? event.status : context.rows[n]?.prep.status));
};

/** The file's re-check, then `target`: an unchanged file goes on, a changed or unreadable one stops the wipes. */
function checkSnapshotThen(target: string, actions?: 'retryFailedPreps') {
  return recoverySetup.createStateConfig({
    invoke: {
      src: 'verifySnapshotFile',
      input: ({ context }) => ({ file: context.snapshot?.file ?? '' }),
      // a changed or unreadable file: the sentence under the prompt, a guard stop, journalled (SAFETY rule 1)
      onDone: [
        { guard: 'fileUnchanged', target, ...(actions ? { actions } : {}) },
        { target: 'snapshotChanged', actions: { type: 'refuse', params: { rules: ['snapshotUnchanged'] } } },
      ],
      onError: { target: 'snapshotChanged', actions: { type: 'refuse', params: { rules: ['snapshotUnchanged'] } } },
    },
  });
}

export const prepare = recoverySetup.createStateConfig({
  entry: { type: 'startStep', params: { step: 'prepare nodes' } },
  exit: 'stopPrepChildren',
  on: {
    'prep.update': { actions: 'notePrepUpdate' },
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
        onDone: [
          {
            guard: ({ context }) => unfinished(context).length > 0,
            target: 'checkingFile',
            actions: { type: 'storeObservations', params: ({ event }) => ({ views: event.output }) },
          },
          {
            target: 'respawn',
            actions: { type: 'storeObservations', params: ({ event }) => ({ views: event.output }) },
          },
        ],
      },
      attempt: { action: 'observe', node: null },
      onFailure: [
        { guard: ({ context }) => unfinished(context).length > 0, target: 'checkingFile' },
        { target: 'respawn' },
      ],
    }),
    // Right before a node's wipe starts, the snapshot is checked again: still there, the same sha256 (SAFETY rule 1).
    checkingFile: checkSnapshotThen('respawn'),
    respawn: {
      // Every confirmed node that is not finished and has no child gets one: the node just confirmed, and after a
      // stop and resume the ones that were under way (a child still running is never started twice).
      entry: enqueueActions(({ context, enqueue, self }) => {
        const running = self.getSnapshot().children as Record<string, unknown>;
        for (const p of context.plan) {
          if (!unfinished(context).includes(p.node) || running[`prep:${p.node}`]) continue;
          if (!mayStart(context, p.node)) {
            enqueue.assign({ rows: withPrep(context.rows, p.node, { status: 'confirmed', detail: SOURCE_WAITS }) });
            continue;
          }
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
        }
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
              : `This erases etcd data on ${node} (now: etcd ${row?.etcdService ?? 'unknown'}). The verified snapshot ${context.snapshot?.file ?? ''} will restore it.` +
                (context.confirmed.length
                  ? ` There is no way back from here: ${context.confirmed.join(', ')} ${context.confirmed.length === 1 ? 'is' : 'are'} already being prepared.`
                  : ''),
          target: node,
          recommended: { type: 'confirm', address: node },
        };
      },
      {
        always: [{ guard: 'allConfirmed', target: 'running' }],
        on: {
          // Esc: back to the choice of snapshot while no node was touched (nothing confirmed here, and no init node
          // converted at step 5: a conversion already sent cannot be taken back); after that, no way back
          'answer.no': {
            guard: ({ context }) =>
              context.confirmed.length === 0 &&
              (context.convertsSent ?? []).length === 0 &&
              context.converted.length === 0,
            target: '#recovery.procedure.snapshot',
            actions: 'backToSnapshotChoice',
          },
          confirm: [
            {
              guard: and(['addressMatches', 'snapshotVerified', 'sourceKeptUntilVerified']),
              target: 'checkingFile',
              actions: [
                'journalConfirmation',
                assign({
                  confirmed: ({ context }) => [...new Set([...context.confirmed, promptTarget(context) as string])],
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
      on: {
        // the last of the others' Resets answered: the waiting source's child starts, after the file's re-check
        'prep.update': [
          { guard: sourceNowMayStart, target: 'checkingFile', actions: 'notePrepUpdate' },
          { actions: 'notePrepUpdate' },
        ],
      },
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
        // a yes/no question like every other failure's (retryPrompt): y (or Enter) tries again, n stops, resumable
        return {
          id: 'prepare-failed',
          kind: 'yes-no',
          question: `Preparing ${failed.map((p) => p.node).join(', ')} failed. Try again?`,
          detail: failed.map((p) => `${p.node}: ${context.rows[p.node]?.prep.detail ?? ''}`).join(' '),
          recommended: { type: 'retry' },
        };
      },
      {
        // a failed node is sent its Reset again only after the file is checked again
        on: retryAnswers('checkingRetry'),
      },
    ),
    checkingRetry: checkSnapshotThen('running', 'retryFailedPreps'),
    // The verified file is gone or changed: nothing more is wiped. A person puts it back (or stops); autopilot gives up.
    snapshotChanged: promptState(
      ({ context }) => ({
        id: 'snapshot-changed',
        kind: 'choose',
        question: 'The verified snapshot file is missing or changed. Nothing more is wiped: check it again?',
        detail: `${context.notice ?? ''} Put the verified file back at ${context.snapshot?.file ?? '?'} (sha256 ${(context.snapshot?.sha256 ?? '').slice(0, 12)}…) and check again, or stop here (resumable); nodes already being prepared go on.`,
        options: [
          { id: 'again', label: 'check the file again' },
          { id: 'stop', label: 'stop here (resumable)' },
        ],
        recommended: null,
      }),
      {
        on: {
          choose: [
            { guard: { type: 'chose', params: { option: 'again' } }, target: 'checkingFile' },
            {
              guard: { type: 'chose', params: { option: 'stop' } },
              target: '#recovery.stoppedByUser',
              actions: 'journalConfirmation',
            },
          ],
        },
      },
    ),
  },
});
