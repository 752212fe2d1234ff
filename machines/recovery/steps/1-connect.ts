/**
 * Step 1, connect: ask every control-plane node for its version, wait for any node that does not answer (it may be
 * rebooting) with a visible count-down, let the user leave one out only by an explicit, typed and journalled
 * decision (SAFETY rules 13 and 14), then have the user confirm the node set (nothing is changed before a verified
 * snapshot is on local disk).
 */
import { assign, emit, enqueueActions } from 'xstate';
import type { ConnectOutput, RecoveryContext } from '../../recovery-types.js';
import { emptyRow, promptTarget } from '../context.js';
import { resetLine } from '../steps.js';
import { EXTERNAL_CONTROLLERS, promptState, retryPromptState } from '../prompts.js';
import { now, recoverySetup } from '../setup.js';
import { callStep, pauseThen, type StateConfig } from '../states.js';

/**
 * Nodes that answered neither the Talos API nor the maintenance API at the last read, and were not left out. A blank
 * machine in maintenance mode answers (step 2 re-creates it); a node that does not answer at all may be rebooting, and
 * leaving it out unseen is what made a later Bootstrap fail (issue 12 item 10).
 */
export function unansweredNodes(context: Pick<RecoveryContext, 'nodes' | 'rows' | 'excluded'>): string[] {
  return context.nodes.filter((n) => {
    const row = context.rows[n];
    return row !== undefined && !row.reachable && !row.maintenance && !context.excluded.includes(n);
  });
}

/** 9:05 — the time left before the user may leave a silent node out. */
function minutesSeconds(ms: number): string {
  const s = Math.max(0, Math.ceil(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

/**
 * What leaving a node out means, said at the typed confirmation, in the journal and as a warning that stays. A wiped
 * control-plane node joins the running cluster as a learner, after any member with its hostname is removed
 * (siderolabs/talos internal/app/machined/pkg/system/services/etcd.go@v1.11.6:295, MemberAddAsLearner); one that
 * still holds the old cluster's data would start etcd with it instead.
 */
export function leftOutMeaning(node: string): string {
  return `${node} is not backed up, wiped or waited for in this recovery, and its etcd still holds the old cluster's data: before it is powered on again, wipe it (${resetLine(node, ['EPHEMERAL'])}) so it joins the restored cluster as a new member, or keep it powered off.`;
}

/** The states that wait for silent nodes, for the start of the procedure or the gate before a full recovery. */
interface SilentFlow {
  /** state keys, persisted in state.json: never renamed */
  keys: { probing: string; deciding: string; waiting: string; unanswered: string; leaveOut: string };
  /** how long the count-down runs before the user is asked */
  waitMs: (context: RecoveryContext) => number;
  /** where the flow goes once no silent node is left (each answered, or was left out) */
  done: string;
  /** the start only: assessing without the silent node is offered (it is asked again before anything is wiped) */
  assessWithout: boolean;
}

/**
 * At the start, a short count-down: a rebooting node is back within it, and a node that is off for good must not
 * hold up the assessment (quorum may well hold without it: then nothing is wiped and the member is replaced).
 */
const startWaitMs = (context: RecoveryContext): number =>
  Math.min(context.timing.nodeBackTimeoutMs, 30 * context.timing.pollMs);

/** Before a full recovery wipes anything: as long as a wiped node gets to come back (the same reboot). */
const gateWaitMs = (context: RecoveryContext): number => context.timing.nodeBackTimeoutMs;

const START: SilentFlow = {
  keys: {
    probing: 'probing',
    deciding: 'deciding',
    waiting: 'waiting',
    unanswered: 'unanswered',
    leaveOut: 'leaveOut',
  },
  waitMs: startWaitMs,
  done: '#recovery.procedure.confirmNodes',
  assessWithout: true,
};

const GATE: SilentFlow = {
  keys: {
    probing: 'gateProbing',
    deciding: 'gateDeciding',
    waiting: 'gateWaiting',
    unanswered: 'gateUnanswered',
    leaveOut: 'gateLeaveOut',
  },
  waitMs: gateWaitMs,
  // the node's answer may change the verdict and the freshest member: the assessment is made again
  done: '#recovery.procedure.assess',
  assessWithout: false,
};

const stepResult = (context: RecoveryContext): string => {
  const left = context.excluded.filter((n) => context.nodes.includes(n));
  const silent = unansweredNodes(context);
  const answered = context.nodes.length - left.length - silent.length;
  return [
    `${answered} of ${context.nodes.length} nodes answered`,
    ...(left.length ? [`${left.join(', ')} left out by an explicit decision`] : []),
    ...(silent.length ? [`${silent.join(', ')} did not (asked again before anything is wiped)`] : []),
  ].join('; ');
};

/**
 * Waiting for nodes that answer neither API: read them again every poll with a count-down on screen (SAFETY rule 15:
 * never wait silently); at its end the user keeps waiting, leaves a node out by an override with a reason and its
 * typed address (SAFETY rules 3 and 14), or stops. Nothing here changes the cluster.
 */
function silentNodeStates(flow: SilentFlow): Record<string, StateConfig> {
  const k = flow.keys;
  return {
    [k.probing]: recoverySetup.createStateConfig({
      invoke: {
        src: 'observe',
        input: ({ context }) => ({ nodes: unansweredNodes(context) }),
        onDone: {
          target: k.deciding,
          actions: [
            { type: 'storeObservations', params: ({ event }) => ({ views: event.output }) },
            assign({
              wait: ({ context, system }) => {
                const at = now(system);
                const pending = unansweredNodes(context).map((node) => ({
                  node,
                  state: null,
                  cause: context.rows[node]?.error ?? 'does not answer',
                }));
                return {
                  what: 'node back' as const,
                  since: context.wait?.since ?? at,
                  deadline: context.wait?.deadline ?? at + flow.waitMs(context),
                  checkedAt: at,
                  message: `waiting for ${pending.map((p) => p.node).join(', ')} to answer (it may be rebooting)`,
                  pending,
                };
              },
            }),
          ],
        },
        onError: { target: k.waiting },
      },
    }),
    [k.deciding]: recoverySetup.createStateConfig({
      always: [
        {
          guard: ({ context }) => unansweredNodes(context).length === 0,
          target: flow.done,
          actions: [
            {
              type: 'endStep',
              params: ({ context }) => ({ step: 'connect', status: 'done', result: stepResult(context) }),
            },
            assign({ attempt: null }),
          ],
        },
        { guard: 'waitExpired', target: k.unanswered },
        { target: k.waiting },
      ],
    }),
    // what is awaited and the time left, on screen at every read
    [k.waiting]: recoverySetup.createStateConfig({
      entry: assign({
        attempt: ({ context, system }) => {
          const at = now(system);
          const w = context.wait;
          const nodes = unansweredNodes(context);
          const left = w ? w.deadline - at : flow.waitMs(context);
          const count = context.attempt?.action.startsWith('wait for ') ? context.attempt.count + 1 : 1;
          const reads = w ? Math.max(count, Math.ceil((w.deadline - w.since) / context.timing.pollMs)) : count;
          return {
            action: `wait for ${nodes.join(', ')} to answer (it may be rebooting; ${minutesSeconds(left)} left before you choose)`,
            node: null,
            count,
            max: reads,
            lastError: nodes.map((n) => context.rows[n]?.error ?? `${n} does not answer`).join(' '),
            nextAt: at + context.timing.pollMs,
          };
        },
      }),
      ...pauseThen('poll', k.probing),
    }),
    [k.unanswered]: promptState(
      ({ context }) => {
        const node = unansweredNodes(context)[0] ?? '';
        const waited = context.wait ? minutesSeconds((context.wait.checkedAt ?? 0) - context.wait.since) : '?';
        return {
          id: `${flow.assessWithout ? 'unanswered' : 'unanswered-before-recovery'}:${node}`,
          kind: 'choose',
          question: flow.assessWithout
            ? `${node} has not answered for ${waited}. Assess the cluster without it for now?`
            : `${node} still does not answer, and a full recovery is next. Keep waiting for it?`,
          detail: `It may be rebooting or cut off by the network (${context.rows[node]?.error ?? 'no answer'}). ${
            flow.assessWithout
              ? 'The assessment only reads; before anything is wiped it must answer or be left out by your decision. '
              : 'A full recovery never leaves a control-plane node out silently. '
          }Leaving it out is journalled with your reason, and ${node} must then be wiped or kept powered off before it comes back.`,
          options: [
            ...(flow.assessWithout ? [{ id: 'assess', label: 'assess without it for now (recommended)' }] : []),
            { id: 'wait', label: flow.assessWithout ? 'keep waiting' : 'keep waiting (recommended)' },
            { id: 'override', label: `leave ${node} out of this recovery (needs a reason)`, needsReason: true },
            { id: 'stop', label: 'stop here (resumable)' },
          ],
          recommended: { type: 'choose', option: flow.assessWithout ? 'assess' : 'wait' },
        };
      },
      {
        on: {
          choose: [
            {
              // offered at the start only
              guard: ({ event }) => flow.assessWithout && event.option === 'assess',
              target: flow.done,
              actions: [
                'journalConfirmation',
                {
                  type: 'endStep',
                  params: ({ context }) => ({ step: 'connect', status: 'done', result: stepResult(context) }),
                },
                assign({ attempt: null }),
              ],
            },
            {
              guard: { type: 'chose', params: { option: 'wait' } },
              target: k.probing,
              actions: [
                'journalConfirmation',
                assign({
                  wait: ({ context, system }) =>
                    context.wait && { ...context.wait, deadline: now(system) + flow.waitMs(context) },
                }),
              ],
            },
            {
              guard: { type: 'chose', params: { option: 'stop' } },
              target: '#recovery.stoppedByUser',
              actions: 'journalConfirmation',
            },
          ],
          override: [
            {
              guard: 'reasonGiven',
              target: k.leaveOut,
              actions: {
                type: 'recordOverride',
                params: ({ context }) => ({ what: `leave ${unansweredNodes(context)[0] ?? '?'} out of the recovery` }),
              },
            },
            { actions: { type: 'refuse', params: { rules: ['reasonGiven'] } } },
          ],
        },
      },
    ),
    // The node is left out only once its address is typed (SAFETY rule 3: one node, named and typed).
    [k.leaveOut]: promptState(
      ({ context }) => {
        const node = unansweredNodes(context)[0] ?? '';
        return {
          id: `leave-out:${node}`,
          kind: 'typed-address',
          question: `Leave ${node} out of this recovery?`,
          detail: leftOutMeaning(node),
          target: node,
          recommended: { type: 'confirm', address: node },
        };
      },
      {
        on: {
          confirm: [
            {
              guard: 'addressMatches',
              target: k.deciding,
              actions: [
                'journalConfirmation',
                enqueueActions(({ context, enqueue }) => {
                  const node = promptTarget(context) as string;
                  enqueue.assign({ excluded: [...new Set([...context.excluded, node])] });
                  enqueue.emit({
                    type: 'journal',
                    entry: {
                      kind: 'decision',
                      step: 'connect',
                      node,
                      what: `${node} left out of the recovery`,
                      by: context.operator,
                      result: leftOutMeaning(node),
                      data: { reason: context.overrides.at(-1)?.reason ?? null },
                    },
                  });
                  enqueue({ type: 'warn', params: { message: leftOutMeaning(node) } });
                }),
              ],
            },
            { actions: { type: 'refuse', params: { rules: ['addressMatches'] } } },
          ],
          // Esc: back to the choice; the override just given did not take effect, and the journal says so
          'answer.no': {
            target: k.unanswered,
            actions: [
              assign({ overrides: ({ context }) => context.overrides.slice(0, -1) }),
              emit(({ context }) => ({
                type: 'journal' as const,
                entry: {
                  kind: 'decision' as const,
                  step: 'connect' as const,
                  node: promptTarget(context),
                  what: `went back: ${promptTarget(context) ?? 'the node'} is not left out`,
                  by: context.operator,
                },
              })),
            ],
          },
        },
      },
    ),
  };
}

/** Whether a full recovery must first wait for (or leave out) a node that has not answered (SAFETY rule 14). */
export const silentBeforeRecovery = ({ context }: { context: RecoveryContext }): boolean =>
  unansweredNodes(context).length > 0;

/**
 * The gate before a full recovery, for the assessment's "lost" path: `#recovery.procedure.connect.gate`. Every silent
 * node is waited for or left out by the user's decision, then the cluster is assessed again.
 */
export const SILENT_GATE = '#recovery.procedure.connect.gate';

/** The rows with each node's answer to the version call (whether it is a blank machine is asked again after). */
function rowsWithAnswers(rows: RecoveryContext['rows'], output: ConnectOutput): RecoveryContext['rows'] {
  const next = { ...rows };
  for (const n of output.nodes) {
    const row = next[n.node] ?? emptyRow(n.node);
    next[n.node] = { ...row, reachable: n.ok, maintenance: false, error: n.error };
  }
  return next;
}

export const connect = recoverySetup.createStateConfig({
  entry: { type: 'startStep', params: { step: 'connect' } },
  // the wait belongs to this step: a later step's screen never shows it
  exit: assign({ wait: ({ context }) => (context.wait?.what === 'node back' ? null : context.wait) }),
  initial: 'calling',
  states: {
    ...callStep({
      call: 'calling',
      retry: 'retrying',
      invoke: {
        src: 'connect',
        input: ({ context }) => ({ nodes: context.nodes }),
        onDone: [
          // a new read starts a new wait (also after a resume)
          {
            guard: ({ event }) => event.output.nodes.every((n) => n.ok),
            target: 'deciding',
            actions: assign({ rows: ({ context, event }) => rowsWithAnswers(context.rows, event.output), wait: null }),
          },
          // A node that did not answer is asked again, and whether it is a blank machine in maintenance mode (those
          // answer only the maintenance API: step 2 re-creates them); the rest is waited for.
          {
            target: 'probing',
            actions: assign({ rows: ({ context, event }) => rowsWithAnswers(context.rows, event.output), wait: null }),
          },
        ],
      },
      attempt: { action: 'connect', node: null },
    }),
    failed: retryPromptState('connect', 'calling'),
    ...silentNodeStates(START),
    gate: { always: { target: 'gateProbing', actions: assign({ wait: null, attempt: null }) } },
    ...silentNodeStates(GATE),
  },
});

export const confirmNodes = promptState(
  ({ context }) => {
    const left = context.excluded.filter((n) => context.nodes.includes(n));
    const nodes = context.nodes.filter((n) => !left.includes(n));
    return {
      id: 'confirm-nodes',
      kind: 'yes-no',
      question: `Recover etcd on these control-plane nodes: ${nodes.join(', ')}?`,
      detail: `${left.length ? `Left out by your decision: ${left.join(', ')} (wipe or keep powered off before it returns). ` : ''}${EXTERNAL_CONTROLLERS} Nothing is changed before a verified snapshot is on local disk and you type each node's address.`,
      recommended: { type: 'answer.yes' },
    };
  },
  {
    on: {
      'answer.yes': { target: 'assess', actions: 'journalConfirmation' },
      'answer.no': { target: '#recovery.stoppedByUser', actions: 'journalConfirmation' },
    },
  },
);
