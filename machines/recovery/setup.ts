/**
 * What the recovery machine is made of: its named actors (supplied by the runtime in src/wizard: every Talos call and
 * every file write), its guards (every SAFETY.md rule is one, from machines/guards.ts), its delays and its actions. The
 * steps in steps/ use them by name. Time comes only from the clock the actor was created with: `now` reads it, and
 * every pause (poll interval, backoff) is a `sleep` on it.
 */
import { assign, emit, enqueueActions, fromCallback, fromPromise, setup, stopChild } from 'xstate';
import { allPreparing, hashCheckDecision, recoveryComplete } from '../decisions.js';
import { firstRefusal, RULES, type RuleName } from '../guards.js';
import { backoffDelay } from '../errors.js';
import { prepareNodeMachine } from '../prepare-node.js';
import type {
  AssessOutput,
  Attempt,
  AwaitedNode,
  BackupOutput,
  ConnectOutput,
  JournalEmit,
  NodeView,
  Prompt,
  RecoveryContext,
  RecoveryEvent,
  RecoveryInput,
  SnapshotInfo,
  SnapshotOption,
} from '../recovery-types.js';
import { DEFAULT_TIMING } from '../recovery-types.js';
import {
  acknowledgedReason,
  activePrompt,
  bootstrapCandidate,
  errorOf,
  promptTarget,
  PROCEDURE_WHY,
  rowsFrom,
  stepsForProcedure,
  targetNodes,
  withPrep,
  withStepRow,
} from './context.js';
import { now, sleep } from './clock.js';
import { stepByName, type Procedure, type StepName } from './steps.js';
import { REPLACE_MEMBER_ACTORS } from '../replace-member/actors.js';
import { NOSPACE_ACTORS } from '../nospace/actors.js';
import { AFTER_RESTORE_ACTORS } from '../after-restore/actors.js';

export { now };

/** How long a call waits for a silent node (a context saved before the timing existed gets today's default). */
export const nodeAnswerTimeout = (context: RecoveryContext): number =>
  context.timing.nodeAnswerTimeoutMs ?? DEFAULT_TIMING.nodeAnswerTimeoutMs;

/** The node a failed call waits for, from the first time it was found silent until nodeAnswerTimeoutMs later. */
export function awaitedNode(
  context: RecoveryContext,
  previous: Attempt | null,
  node: string | null,
  at: number,
): AwaitedNode {
  const since = previous?.awaiting?.since ?? at;
  const who = node ?? 'the nodes';
  return {
    node: who,
    what: `waiting for ${who} to answer again`,
    since,
    deadline: since + nodeAnswerTimeout(context),
    checkedAt: at,
  };
}

/**
 * Whether a silent node is still waited for: not yet silent, or last found silent before the deadline. The guard
 * sees no clock, so this reads the time noted at the previous failure: the last try starts at most one backoff (30 s
 * at most) after the deadline.
 */
function stillAwaiting(context: RecoveryContext): boolean {
  const awaiting = context.attempt?.awaiting;
  return !awaiting || (awaiting.checkedAt ?? awaiting.since) <= awaiting.deadline;
}

/** A call's failed tries where its node answered (refusing for now); tries that met a silent node are waited out. */
export function answeredFailures(attempt: Attempt | null): number {
  return (attempt?.count ?? 0) - (attempt?.unanswered ?? 0);
}

export const recoverySetup = setup({
  types: {} as {
    context: RecoveryContext;
    events: RecoveryEvent;
    input: RecoveryInput;
    emitted: JournalEmit;
  },
  actors: {
    connect: fromPromise<ConnectOutput, { nodes: string[] }>(async () => {
      throw new Error('connect was not provided');
    }),
    assess: fromPromise<AssessOutput, { nodes: string[]; backups?: string[] }>(async () => {
      throw new Error('assess was not provided');
    }),
    observe: fromPromise<NodeView[], { nodes: string[] }>(async () => {
      throw new Error('observe was not provided');
    }),
    acquireSnapshot: fromPromise<SnapshotInfo, { option: SnapshotOption; opId: string }>(async () => {
      throw new Error('acquireSnapshot was not provided');
    }),
    backupConfigs: fromPromise<BackupOutput, { nodes: string[]; blank: string[] }>(async () => {
      throw new Error('backupConfigs was not provided');
    }),
    convertInitNode: fromPromise<void, { node: string; opId: string }>(async () => {
      throw new Error('convertInitNode was not provided');
    }),
    verifySnapshotFile: fromPromise<{ sha256: string }, { file: string }>(async () => {
      throw new Error('verifySnapshotFile was not provided');
    }),
    uploadSnapshot: fromCallback<RecoveryEvent, { node: string; file: string; bytes: number; opId: string }>(() => {
      throw new Error('uploadSnapshot was not provided');
    }),
    bootstrapNode: fromPromise<
      { alreadyDone: boolean },
      { node: string; skipHashCheck: boolean; opId: string; wiped: boolean; uploadSent: boolean }
    >(async () => {
      throw new Error('bootstrapNode was not provided');
    }),
    // step 8's new wipe after a failed restore (the same effect as prepare-node's, under the round's operation id)
    resetNode: fromPromise<void, { node: string; labels: string[]; opId: string }>(async () => {
      throw new Error('resetNode was not provided');
    }),
    prepareNode: prepareNodeMachine,
    sleep,
    ...REPLACE_MEMBER_ACTORS,
    ...NOSPACE_ACTORS,
    ...AFTER_RESTORE_ACTORS,
  },
  guards: {
    addressMatches: ({ context, event }) => RULES.addressMatches(context, event, promptTarget(context)) === null,
    snapshotVerified: ({ context, event }) => RULES.snapshotVerified(context, event, promptTarget(context)) === null,
    sourceKeptUntilVerified: ({ context, event }) =>
      RULES.sourceKeptUntilVerified(context, event, promptTarget(context)) === null,
    quorumLostOrOverridden: ({ context, event }) => RULES.quorumLostOrOverridden(context, event, null) === null,
    bootstrapNotSent: ({ context, event }) => RULES.bootstrapNotSent(context, event, null) === null,
    skipHashCheckAcknowledged: ({ context, event }) => RULES.skipHashCheckAcknowledged(context, event, null) === null,
    snapshotUsable: ({ context, event }) => RULES.snapshotUsable(context, event, null) === null,
    reasonGiven: ({ context, event }) => RULES.reasonGiven(context, event, null) === null,
    // a node that answered but refused for now gets maxAttempts tries; one that did not answer at all (rebooting) is
    // tried again until it has been silent for nodeAnswerTimeoutMs
    canRetry: ({ context, event }) => {
      const error = errorOf(event);
      if (!error.retryable) return false;
      return error.unanswered ? stillAwaiting(context) : answeredFailures(context.attempt) < context.timing.maxAttempts;
    },
    mayHaveLanded: ({ event }) => errorOf(event).mayHaveLanded,
    // Bootstrap's restore did not finish and left the data directory non-empty: offer a new wipe and upload
    bootstrapRestoreFailed: ({ event }) => errorOf(event).restoreFailed === true,
    // tries where the node answered but refused for now; a node that did not answer at all is waited for instead
    uploadCanRetry: ({ context, event }) =>
      event.type === 'upload.failed' &&
      event.retryable &&
      answeredFailures(context.attempt) < context.timing.maxAttempts,
    /** the upload failed because its node did not answer at all (rebooting): wait for it to answer again */
    uploadNodeSilent: ({ event }) => event.type === 'upload.failed' && event.retryable && event.unanswered === true,
    /** the node awaited was last asked after the wait's deadline: the failure goes to the user */
    nodeAnswerExpired: ({ context }) => {
      const awaiting = context.attempt?.awaiting;
      return Boolean(awaiting) && (awaiting?.checkedAt ?? 0) > (awaiting?.deadline ?? 0);
    },
    anyNodeAnswered: ({ event }) => (event as { output?: ConnectOutput }).output?.nodes.some((n) => n.ok) ?? false,
    verdictHealthy: ({ context }) => context.verdict?.verdict === 'healthy',
    verdictDegraded: ({ context }) => context.verdict?.verdict === 'degraded',
    verdictUnknown: ({ context }) => context.verdict?.verdict === 'unknown',
    optionOffered: ({ context, event }) =>
      event.type === 'choose' &&
      (context.snapshotOptions.some((o) => o.id === event.option && o.failed === null) ||
        (event.option === 'file' && Boolean(event.path))),
    snapshotUnusable: ({ context }) => !context.snapshot || !hashCheckDecision(context.snapshot).usable,
    needsSkipAck: ({ context }) => Boolean(context.snapshot?.needsSkipHashCheck) && !context.skipHashCheckAcknowledged,
    blankWithoutConfig: ({ context }) =>
      context.plan.some((p) => p.preparation === 'recreate' && !context.configs[p.node]),
    noInitNodes: ({ context }) => context.initQueue.length === 0,
    allConfirmed: ({ context }) => context.plan.every((p) => context.confirmed.includes(p.node)),
    allPrepared: ({ context }) => context.plan.every((p) => context.prepared.includes(p.node)),
    // every child has ended ('confirmed': the snapshot source, not started while another node's wipe is unanswered)
    somePrepFailed: ({ context }) =>
      context.plan.some((p) => context.rows[p.node]?.prep.status === 'failed') &&
      context.plan.every((p) => ['done', 'failed', 'confirmed'].includes(context.rows[p.node]?.prep.status ?? '')),
    allTargetsPreparing: ({ context }) =>
      allPreparing(context.observations.filter((o) => targetNodes(context).includes(o.node))),
    // the wait's last read came after its deadline (the clock is read where the nodes are read: guards see no clock)
    waitExpired: ({ context }) => context.wait !== null && (context.wait.checkedAt ?? 0) > context.wait.deadline,
    hasBootstrapCandidate: ({ context }) => bootstrapCandidate(context) !== null,
    fileUnchanged: ({ context, event }) =>
      (event as { output?: { sha256: string } }).output?.sha256 === context.snapshot?.sha256,
    recovered: ({ context }) =>
      recoveryComplete(context.observations.filter((o) => targetNodes(context).includes(o.node))).done,
    restoreFailed: ({ context }) =>
      context.observations.some((o) => o.node === context.bootstrap.node && o.etcdService === 'Failed'),
    bootstrapWasSent: ({ context }) => context.bootstrap.bootstrapSent,
    quorumOverridden: ({ context }) => context.overrides.some((o) => o.what === 'full recovery'),
    chose: ({ event }, params: { option: string }) => event.type === 'choose' && event.option === params.option,
    verdictNospace: ({ context }) => context.verdict?.verdict === 'nospace',
    /** the procedure the assessment chose (an incident folder from before procedures existed is a recovery) */
    procedureIs: ({ context }, params: { procedure: Procedure }) =>
      (context.procedure ?? 'recovery') === params.procedure,
  },
  actions: {
    startStep: enqueueActions(({ context, enqueue, system }, params: { step: StepName }) => {
      const n = stepByName(params.step).n;
      enqueue.assign({
        steps: withStepRow(context.steps, params.step, context.nodes).map((s) =>
          s.name === params.step
            ? { ...s, status: 'active' as const, startedAt: s.startedAt ?? now(system), endedAt: null }
            : s,
        ),
        attempt: null,
        notice: null,
      });
      enqueue.emit({ type: 'journal', entry: { kind: 'step', step: params.step, what: `step ${n} started` } });
    }),
    endStep: enqueueActions(
      (
        { context, enqueue, system },
        params: { step: StepName; status: 'done' | 'skipped' | 'failed'; result: string },
      ) => {
        const n = stepByName(params.step).n;
        // a step ends once: a late give-up never rewrites a finished step
        if (context.steps.find((s) => s.name === params.step)?.status !== 'active') return;
        enqueue.assign({
          steps: context.steps.map((s) =>
            s.name === params.step ? { ...s, status: params.status, result: params.result, endedAt: now(system) } : s,
          ),
        });
        enqueue.emit({
          type: 'journal',
          entry: { kind: 'step', step: params.step, what: `step ${n} ${params.status}`, result: params.result },
        });
      },
    ),
    ask: assign({
      prompt: (_, params: Prompt) => params,
      promptSeq: ({ context }) => context.promptSeq + 1,
      lastPrompt: null,
    }),
    clearPrompt: assign({ prompt: null, lastPrompt: ({ context }) => context.prompt ?? context.lastPrompt }),
    noteAttempt: assign({
      attempt: ({ context, event, system }, params: { action: string; node: string | null }) => {
        const at = now(system);
        const previous = context.attempt?.action === params.action ? context.attempt : null;
        const count = (previous?.count ?? 0) + 1;
        const error = errorOf(event);
        return {
          action: params.action,
          node: params.node,
          count,
          max: context.timing.maxAttempts,
          lastError: error.message,
          nextAt: at + backoffDelay(context.timing, count),
          unanswered: (previous?.unanswered ?? 0) + (error.unanswered ? 1 : 0),
          awaiting: error.unanswered ? awaitedNode(context, previous, params.node, at) : null,
        };
      },
    }),
    /** A guard said no: show the sentence, journal it and count it (a drill's "mistakes the guards stopped"). */
    refuse: enqueueActions(({ context, event, enqueue, system }, params: { rules: RuleName[] }) => {
      const refusal = firstRefusal(params.rules, context, event, promptTarget(context));
      if (!refusal) return;
      enqueue.assign({
        notice: refusal.message,
        guardStops: [...context.guardStops, { rule: refusal.rule, message: refusal.message, at: now(system) }],
      });
      enqueue.emit({
        type: 'journal',
        entry: { kind: 'refusal', what: refusal.rule, result: refusal.message, by: context.operator },
      });
    }),
    journalConfirmation: emit(({ context, event }) => {
      const reason = acknowledgedReason(event);
      return {
        type: 'journal' as const,
        entry: {
          kind: 'confirmation' as const,
          node: promptTarget(context),
          what: activePrompt(context)?.question ?? event.type,
          by: context.operator,
          result:
            event.type === 'confirm'
              ? `typed ${event.address}`
              : event.type === 'acknowledge'
                ? `acknowledge, ${reason === null ? 'no reason given' : `reason: "${reason}"`}`
                : event.type === 'choose'
                  ? `chose ${event.option}${event.path ? ` (${event.path})` : ''}`
                  : event.type,
          // an accepted risk is recorded with the reason given for it, whoever answered (a person, autopilot, a test)
          ...(event.type === 'acknowledge' ? { data: { reason } } : {}),
        },
      };
    }),
    recordOverride: enqueueActions(({ context, event, enqueue, system }, params: { what: string }) => {
      const reason = event.type === 'override' ? event.reason.trim() : '';
      enqueue.assign({
        overrides: [...context.overrides, { what: params.what, reason, by: context.operator, at: now(system) }],
      });
      enqueue.emit({
        type: 'journal',
        entry: { kind: 'override', what: params.what, result: reason, by: context.operator },
      });
    }),
    storeObservations: assign(({ context }, params: { views: NodeView[] }) => {
      const byNode = new Map(context.observations.map((o) => [o.node, o]));
      for (const v of params.views) byNode.set(v.node, v);
      return { observations: [...byNode.values()], rows: rowsFrom(context.rows, params.views) };
    }),
    setOutcome: enqueueActions(({ context, enqueue }, params: { outcome: RecoveryContext['outcome'] }) => {
      enqueue.assign({ outcome: params.outcome, prompt: null, wait: null, transfer: null });
      enqueue.emit({
        type: 'journal',
        entry: { kind: 'outcome', what: 'outcome', result: params.outcome ?? '', by: context.operator },
      });
    }),
    warn: enqueueActions(({ context, enqueue }, params: { message: string }) => {
      if (context.warnings.includes(params.message)) return;
      enqueue.assign({ warnings: [...context.warnings, params.message] });
      enqueue.emit({ type: 'journal', entry: { kind: 'warning', what: params.message } });
    }),
    clearAttempt: assign({ attempt: null }),
    /**
     * Esc at a typed-address prompt while nothing has been sent: back to the choice of snapshot; the steps after it
     * run again (nothing planned, nothing queued), and the journal says the person went back and from what.
     */
    backToSnapshotChoice: enqueueActions(({ context, enqueue }) => {
      const at = context.steps.findIndex((s) => s.name === 'snapshot');
      enqueue.assign({
        steps: context.steps.map((s, i) =>
          i > at ? { ...s, status: 'pending' as const, result: null, startedAt: null, endedAt: null } : s,
        ),
        plan: [],
        initQueue: [],
      });
      enqueue.emit({
        type: 'journal',
        entry: {
          kind: 'decision',
          node: promptTarget(context),
          what: `went back to the choice of snapshot from: ${activePrompt(context)?.question ?? 'a confirmation'}`,
          by: context.operator,
        },
      });
    }),
    /** The assessment chose a procedure: its steps replace the full recovery's after the ones already run. */
    switchProcedure: enqueueActions(({ context, enqueue }, params: { procedure: Procedure }) => {
      enqueue.assign({
        procedure: params.procedure,
        steps: stepsForProcedure(context.steps, params.procedure, context.nodes),
      });
      enqueue.emit({
        type: 'journal',
        entry: { kind: 'decision', what: `procedure: ${params.procedure}`, result: PROCEDURE_WHY[params.procedure] },
      });
    }),
    notePrepUpdate: assign({
      rows: ({ context, event }) => {
        const e = event as Extract<RecoveryEvent, { type: 'prep.update' }>;
        return withPrep(context.rows, e.node, { status: e.status, detail: e.detail, attempts: e.attempts });
      },
    }),
    retryFailedPreps: enqueueActions(({ context, enqueue }) => {
      const rows = { ...context.rows };
      for (const p of context.plan) {
        const row = rows[p.node];
        if (row?.prep.status !== 'failed') continue;
        rows[p.node] = { ...row, prep: { ...row.prep, status: 'retrying', detail: 'trying again' } };
        enqueue.sendTo(`prep:${p.node}`, { type: 'retry' });
      }
      enqueue.assign({ rows });
    }),
    stopPrepChildren: enqueueActions(({ context, enqueue }) => {
      for (const p of context.plan) enqueue(stopChild(`prep:${p.node}`));
    }),
  },
});
