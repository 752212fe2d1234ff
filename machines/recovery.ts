/**
 * The Talos etcd disaster-recovery procedure (PRODUCT.md §1, steps 1–9) as one xstate v5 machine.
 *
 * Pure: every Talos call and every file write is a named actor supplied at the entry point (src/commands), the journal
 * is fed through emitted `journal` events, and every SAFETY.md rule is a named guard (machines/guards.ts). Each step
 * re-reads live state on entry, so a restored machine continues safely. The context is JSON-serialisable and shaped
 * for the screens: per-step rows, per-node rows, the current prompt, transfer progress, wait status.
 */
import { and, assign, emit, enqueueActions, fromCallback, fromPromise, setup, stopChild } from 'xstate';
import type { ActorRefFrom, SnapshotFrom } from 'xstate';
import {
  allPreparing,
  computeVerdict,
  hashCheckDecision,
  initNodes,
  newerLiveMembers,
  planPreparation,
  recoveryComplete,
  waitingCause,
} from './decisions.js';
import { firstRefusal, RULES, type RuleName } from './guards.js';
import { backoffDelay, errorInfo } from './errors.js';
import { prepareNodeMachine } from './prepare-node.js';
import {
  DEFAULT_TIMING,
  STEP_NAMES,
  type AssessOutput,
  type BackupOutput,
  type ConnectOutput,
  type JournalEmit,
  type NodeRow,
  type NodeView,
  type Prompt,
  type RecoveryContext,
  type RecoveryEvent,
  type RecoveryInput,
  type SnapshotInfo,
  type SnapshotOption,
  type StepName,
  type StepRow,
  type WaitStatus,
} from './recovery-types.js';

export * from './recovery-types.js';

// ---- helpers (pure) -----------------------------------------------------------------------------------------------

/** The equivalent talosctl commands of each step, so the engineer can learn the procedure and fall back to it. */
export function talosctlFor(step: StepName, nodes: string[]): string[] {
  const n = nodes.join(',') || '<nodes>';
  switch (step) {
    case 'connect':
      return [`talosctl -n ${n} version`];
    case 'assess':
      return [`talosctl -n ${n} etcd members`, `talosctl -n ${n} etcd status`, `talosctl -n ${n} service etcd`];
    case 'snapshot':
      return [
        'talosctl -n <source> etcd snapshot db.snapshot',
        'talosctl -n <source> cp /var/lib/etcd/member/snap/db .',
      ];
    case 'backup configs':
      return nodes.map((node) => `talosctl -n ${node} get mc v1alpha1 -o yaml > configs/${node}.yaml`);
    case 'init nodes':
      return [
        'talosctl -n <node> edit mc --mode=staged   (machine.type: init → controlplane)',
        'talosctl -n <node> reboot',
      ];
    case 'prepare nodes':
      return [
        'talosctl -n <node> reset --graceful=false --reboot --system-labels-to-wipe=EPHEMERAL',
        'talosctl apply-config --insecure -n <blank node> --file configs/<node>.yaml',
      ];
    case 'wait for Preparing':
      return [`talosctl -n ${n} service etcd`];
    case 'bootstrap':
      return ['talosctl -n <node> bootstrap --recover-from=<snapshot> [--recover-skip-hash-check]'];
    case 'verify':
      return [`talosctl -n ${n} etcd members`, `talosctl -n ${n} service etcd`, 'talosctl health'];
  }
}

const FOLLOW_UP = [
  'Restart the kubelets and the controllers (kube-apiserver clients) so their watch caches do not see revisions go backwards.',
  'Run `talosctl health` and check that every node and workload comes back.',
  'Unpause any external controller you paused (Omni, Cluster API) only after the cluster is healthy.',
  'Take a fresh snapshot now: the restored state is your new baseline.',
];

const EXTERNAL_CONTROLLERS =
  'If Omni or Cluster API manages this cluster, pause them first: they may reboot, replace or re-provision nodes during the recovery.';

function initialSteps(nodes: string[]): StepRow[] {
  return STEP_NAMES.map((name, i) => ({
    n: i + 1,
    name,
    status: 'pending',
    result: null,
    startedAt: null,
    endedAt: null,
    talosctl: talosctlFor(name, nodes),
  }));
}

function emptyRow(node: string): NodeRow {
  return {
    node,
    hostname: null,
    reachable: false,
    maintenance: false,
    machineType: 'unknown',
    etcdService: null,
    healthy: null,
    raftAppliedIndex: null,
    error: null,
    waitingFor: null,
    prep: { plan: null, labels: [], status: null, detail: null, attempts: 0 },
  };
}

/** Folds fresh observations into the per-node rows, keeping each row's preparation progress. */
function rowsFrom(rows: Record<string, NodeRow>, views: readonly NodeView[]): Record<string, NodeRow> {
  const next = { ...rows };
  for (const v of views) {
    const row = next[v.node] ?? emptyRow(v.node);
    next[v.node] = {
      ...row,
      hostname: v.hostname ?? row.hostname,
      reachable: v.reachable,
      maintenance: Boolean(v.maintenance),
      machineType: v.machineType,
      etcdService: v.etcdService,
      healthy: v.etcdHealthy,
      raftAppliedIndex: v.status ? String(v.status.raftAppliedIndex) : null,
      error: v.error ?? v.statusError ?? null,
      waitingFor: waitingCause(v),
    };
  }
  return next;
}

/** The rows with one node's preparation progress changed. */
function withPrep(
  rows: Record<string, NodeRow>,
  node: string,
  prep: Partial<NodeRow['prep']>,
): Record<string, NodeRow> {
  const row = rows[node] ?? emptyRow(node);
  return { ...rows, [node]: { ...row, prep: { ...row.prep, ...prep } } };
}

/** Ways to get a snapshot, best first: API snapshot from members whose etcd answers (freshest first), raw copies from
 * nodes that still hold data, then files the user was given. */
export function snapshotOptions(
  observations: readonly NodeView[],
  freshest: string | null,
  given: readonly string[],
): SnapshotOption[] {
  const live = observations
    .filter((o) => o.reachable && !o.maintenance && o.status)
    .sort((a, b) => (a.node === freshest ? -1 : b.node === freshest ? 1 : 0));
  const holders = observations.filter((o) => o.reachable && !o.maintenance && o.machineType !== 'worker');
  const rawOrder = [...holders].sort((a, b) => (a.node === freshest ? -1 : b.node === freshest ? 1 : 0));
  return [
    ...live.map<SnapshotOption>((o) => ({
      id: `api:${o.node}`,
      method: 'api',
      node: o.node,
      file: null,
      label: `take a consistent snapshot from ${o.node}${o.node === freshest ? ' (freshest member)' : ''}`,
      failed: null,
    })),
    ...rawOrder.map<SnapshotOption>((o) => ({
      id: `raw:${o.node}`,
      method: 'raw',
      node: o.node,
      file: null,
      label: `copy the raw database from ${o.node} (needs skip-hash-check)`,
      failed: null,
    })),
    ...given.map<SnapshotOption>((file) => ({
      id: `file:${file}`,
      method: 'file',
      node: null,
      file,
      label: `use the existing snapshot file ${file}`,
      failed: null,
    })),
  ];
}

/** Short human age: "3 min", "2 h 5 min", "4 d". */
export function formatAge(ms: number): string {
  const min = Math.max(0, Math.round(ms / 60_000));
  if (min < 60) return `${min} min`;
  const h = Math.floor(min / 60);
  if (h < 48) return `${h} h ${min % 60} min`;
  return `${Math.floor(h / 24)} d`;
}

function dataLossWindow(s: SnapshotInfo, now: number): string {
  return `snapshot revision ${s.revision ?? '?'}, taken ${formatAge(now - s.takenAt)} ago: writes after that point are lost`;
}

const errorOf = (event: unknown): ReturnType<typeof errorInfo> => errorInfo((event as { error?: unknown }).error);

/** The reason given with an acknowledgement, trimmed; null when none was given (an event of the older shape). */
const acknowledgedReason = (event: RecoveryEvent): string | null =>
  (event.type === 'acknowledge' && event.reason?.trim()) || null;

const activePrompt = (context: RecoveryContext): Prompt | null => context.prompt ?? context.lastPrompt;
const promptTarget = (context: RecoveryContext): string | null => activePrompt(context)?.target ?? null;

const bootstrapCandidate = (context: RecoveryContext): string | null => {
  const ready = context.observations.filter(
    (o) => context.prepared.includes(o.node) && !context.excluded.includes(o.node) && o.etcdService === 'Preparing',
  );
  const source = context.snapshot?.node;
  return ready.find((o) => o.node === source)?.node ?? ready[0]?.node ?? null;
};

/** Nodes the waits and the verification look at: prepared and not excluded by an override. */
const targetNodes = (context: RecoveryContext): string[] =>
  context.plan.map((p) => p.node).filter((n) => !context.excluded.includes(n));

function pendingPreparing(context: RecoveryContext, views: readonly NodeView[]) {
  return views
    .filter((v) => v.etcdService !== 'Preparing')
    .map((v) => ({
      node: v.node,
      state: v.etcdService,
      cause: waitingCause(v) ?? (v.reachable ? `etcd ${v.etcdService ?? 'not reported'}` : 'not answering'),
    }));
}

// ---- the machine ---------------------------------------------------------------------------------------------------

const STEP = Object.fromEntries(STEP_NAMES.map((name, i) => [name, i + 1])) as Record<StepName, number>;

const recoverySetup = setup({
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
    assess: fromPromise<AssessOutput, { nodes: string[] }>(async () => {
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
    prepareNode: prepareNodeMachine,
  },
  delays: {
    poll: ({ context }) => context.timing.pollMs,
    backoff: ({ context }) => backoffDelay(context.timing, context.attempt?.count ?? 1),
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
    canRetry: ({ context, event }) =>
      errorOf(event).retryable && (context.attempt?.count ?? 0) < context.timing.maxAttempts,
    mayHaveLanded: ({ event }) => errorOf(event).mayHaveLanded,
    uploadCanRetry: ({ context, event }) =>
      event.type === 'upload.failed' && event.retryable && (context.attempt?.count ?? 0) < context.timing.maxAttempts,
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
    somePrepFailed: ({ context }) =>
      context.plan.some((p) => context.rows[p.node]?.prep.status === 'failed') &&
      context.plan.every((p) => ['done', 'failed'].includes(context.rows[p.node]?.prep.status ?? '')),
    allTargetsPreparing: ({ context }) =>
      allPreparing(context.observations.filter((o) => targetNodes(context).includes(o.node))),
    waitExpired: ({ context }) => context.wait !== null && Date.now() > context.wait.deadline,
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
  },
  actions: {
    startStep: enqueueActions(({ context, enqueue }, params: { step: StepName }) => {
      const n = STEP[params.step];
      enqueue.assign({
        steps: context.steps.map((s) =>
          s.n === n ? { ...s, status: 'active' as const, startedAt: s.startedAt ?? Date.now(), endedAt: null } : s,
        ),
        attempt: null,
        notice: null,
      });
      enqueue.emit({ type: 'journal', entry: { kind: 'step', step: params.step, what: `step ${n} started` } });
    }),
    endStep: enqueueActions(
      ({ context, enqueue }, params: { step: StepName; status: 'done' | 'skipped' | 'failed'; result: string }) => {
        const n = STEP[params.step];
        // a step ends once: a late give-up never rewrites a finished step
        if (context.steps.find((s) => s.n === n)?.status !== 'active') return;
        enqueue.assign({
          steps: context.steps.map((s) =>
            s.n === n ? { ...s, status: params.status, result: params.result, endedAt: Date.now() } : s,
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
      attempt: ({ context, event }, params: { action: string; node: string | null }) => {
        const count = context.attempt && context.attempt.action === params.action ? context.attempt.count + 1 : 1;
        return {
          action: params.action,
          node: params.node,
          count,
          max: context.timing.maxAttempts,
          lastError: errorOf(event).message,
          nextAt: Date.now() + backoffDelay(context.timing, count),
        };
      },
    }),
    /** A guard said no: show the sentence, journal it and count it (a drill's "mistakes the guards stopped"). */
    refuse: enqueueActions(({ context, event, enqueue }, params: { rules: RuleName[] }) => {
      const refusal = firstRefusal(params.rules, context, event, promptTarget(context));
      if (!refusal) return;
      enqueue.assign({
        notice: refusal.message,
        guardStops: [...context.guardStops, { rule: refusal.rule, message: refusal.message, at: Date.now() }],
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
    recordOverride: enqueueActions(({ context, event, enqueue }, params: { what: string }) => {
      const reason = event.type === 'override' ? event.reason.trim() : '';
      enqueue.assign({
        overrides: [...context.overrides, { what: params.what, reason, by: context.operator, at: Date.now() }],
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

// ---- state configs the steps share: calls and their failures, waits, a failed end --------------------------------

type StateConfig = Parameters<typeof recoverySetup.createStateConfig>[0];
type InvokeConfig = Exclude<NonNullable<StateConfig['invoke']>, readonly unknown[]>;
/** An invoke of one named actor (its src, input and onDone, typed by the actor); callStep supplies its onError. */
type CallInvoke = InvokeConfig extends infer I ? (I extends unknown ? Omit<I, 'onError'> : never) : never;
/** Transitions taken on a failed call (the same for every actor). */
type OnError = NonNullable<Extract<InvokeConfig, { src: 'connect' }>['onError']>;

/** What a failed call is noted as: the attempt on screen, and the action its retry prompt names. */
interface AttemptParams {
  action: string;
  node: string | null;
}

interface CallStepOptions<TCall extends string, TRetry extends string> {
  /** the state that makes the call (a name persisted in state.json: never renamed) */
  call: TCall;
  /** the pause before a transient failure is tried again on its own; without it, every failure goes to `onFailure` */
  retry?: TRetry;
  invoke: CallInvoke;
  /** what a failure is noted as (context.attempt: shown on screen, named by the retry prompt) */
  attempt: AttemptParams | ((context: RecoveryContext) => AttemptParams);
  /** where a failure goes that is not tried again on its own; default: note the attempt, then the step's `failed` */
  onFailure?: OnError;
}

/**
 * One call to the cluster with its failure handling, the sub-states every step writes the same way: `call` invokes the
 * actor; a transient failure (retryable, attempts left) notes the attempt and waits in `retry` (backoff) to call
 * again; any other failure notes the attempt and goes to the step's `failed` state (a `retryPromptState`), unless
 * `onFailure` says otherwise. Each step says only what is its own: the actor, its input, what success does, and what
 * its failure is called.
 */
function callStep<const TCall extends string, const TRetry extends string = never>({
  call,
  retry,
  invoke,
  attempt,
  onFailure,
}: CallStepOptions<TCall, TRetry>): Record<TCall | TRetry, StateConfig> {
  const noteAttempt = {
    type: 'noteAttempt' as const,
    params: typeof attempt === 'function' ? ({ context }: { context: RecoveryContext }) => attempt(context) : attempt,
  };
  const failure: OnError = onFailure ?? { target: 'failed', actions: noteAttempt };
  const onError: OnError = retry
    ? [{ guard: 'canRetry', target: retry, actions: noteAttempt }, ...(Array.isArray(failure) ? failure : [failure])]
    : failure;
  const states: Record<string, StateConfig> = {
    [call]: recoverySetup.createStateConfig({ invoke: { ...invoke, onError } }),
  };
  if (retry) states[retry] = recoverySetup.createStateConfig({ after: { backoff: call } });
  return states as Record<TCall | TRetry, StateConfig>;
}

/** A state that asks one question: the prompt is set on entry and cleared on exit, whatever answer leaves it. */
function promptState(prompt: (args: { context: RecoveryContext }) => Prompt, config: StateConfig): StateConfig {
  return recoverySetup.createStateConfig({
    ...config,
    entry: { type: 'ask', params: prompt },
    exit: 'clearPrompt',
  });
}

/** A failed action's prompt, asked as yes/no: yes (or retry) goes back to `again` to call anew; no stops, resumable. */
function retryPromptState(action: string | ((context: RecoveryContext) => string), again: string): StateConfig {
  return promptState(
    ({ context }) =>
      retryPrompt(typeof action === 'function' ? action(context) : action, context.attempt?.lastError ?? null),
    { on: retryAnswers(again) },
  );
}

/** A waiting step's entry (steps 7 and 9): the step starts, and its wait runs from now until its timing's limit. */
function startWait(
  step: StepName,
  what: WaitStatus['what'],
  limit: 'preparingTimeoutMs' | 'verifyTimeoutMs',
  message: string,
) {
  return [
    { type: 'startStep' as const, params: { step } },
    recoverySetup.assign({
      wait: ({ context }) => ({
        what,
        since: Date.now(),
        deadline: Date.now() + context.timing[limit],
        message,
        pending: [],
      }),
    }),
  ];
}

/**
 * A wait's live re-read (steps 7 and 9): `polling` reads the target nodes, folds their views in and lets `wait`
 * update the wait's message from them, then the step's `check` decides; a read that fails is shown as a notice and
 * tried again after the poll interval (`pause`), like an answer that has not come yet.
 */
function pollStates(wait: (context: RecoveryContext, views: NodeView[]) => WaitStatus | null) {
  return {
    polling: recoverySetup.createStateConfig({
      invoke: {
        src: 'observe',
        input: ({ context }) => ({ nodes: targetNodes(context) }),
        onDone: {
          target: 'check',
          actions: [
            { type: 'storeObservations', params: ({ event }) => ({ views: event.output }) },
            assign({ wait: ({ context, event }) => wait(context, event.output) }),
          ],
        },
        onError: { target: 'pause', actions: assign({ notice: ({ event }) => errorOf(event).message }) },
      },
    }),
    pause: recoverySetup.createStateConfig({ after: { poll: 'polling' } }),
  };
}

/** Every target node shows etcd Preparing: step 7 ends (its row says `result`) and the bootstrap begins. */
function allPreparingThen(result: (context: RecoveryContext) => string) {
  return {
    guard: 'allTargetsPreparing' as const,
    target: '#recovery.procedure.bootstrap',
    actions: {
      type: 'endStep' as const,
      params: ({ context }: { context: RecoveryContext }) => ({
        step: 'wait for Preparing' as const,
        status: 'done' as const,
        result: result(context),
      }),
    },
  };
}

interface SaidArgs {
  context: RecoveryContext;
  event: unknown;
}
/** What a failure says: a fixed sentence, or one read from the context and the event that ended the step. */
type Said = string | ((args: SaidArgs) => string);
const say = (said: Said, args: SaidArgs): string => (typeof said === 'string' ? said : said(args));

/** The actions that end the procedure as failed at `step`: its row says `result`, the outcome `failed: <why>`. */
function failedAt(step: StepName, result: Said, why: Said) {
  return [
    {
      type: 'endStep' as const,
      params: (a: SaidArgs) => ({ step, status: 'failed' as const, result: say(result, a) }),
    },
    { type: 'setOutcome' as const, params: (a: SaidArgs) => ({ outcome: `failed: ${say(why, a)}` as const }) },
  ];
}

export const recoveryMachine = recoverySetup.createMachine({
  id: 'recovery',
  context: ({ input }) => ({
    nodes: [...input.nodes],
    operator: input.operator,
    mode: input.mode,
    timing: { ...DEFAULT_TIMING, ...input.timing },
    startedAt: Date.now(),
    steps: initialSteps(input.nodes),
    rows: Object.fromEntries(input.nodes.map((n) => [n, emptyRow(n)])),
    observations: [],
    verdict: null,
    extraMembers: [],
    volumes: {},
    givenSnapshots: input.givenSnapshots ?? [],
    snapshotOptions: [],
    snapshot: null,
    skipHashCheckAcknowledged: false,
    configs: {},
    plan: [],
    initQueue: [],
    converted: [],
    confirmed: [],
    wiped: [],
    prepared: [],
    excluded: [],
    bootstrap: {
      node: null,
      skipHashCheck: false,
      uploadSent: false,
      uploaded: false,
      bootstrapSent: false,
      bootstrapAnswered: false,
    },
    prompt: null,
    promptSeq: 0,
    lastPrompt: null,
    attempt: null,
    transfer: null,
    wait: null,
    overrides: [],
    guardStops: [],
    warnings: [],
    notice: null,
    dataLossWindow: null,
    followUp: [],
    outcome: null,
  }),
  initial: 'procedure',
  states: {
    procedure: {
      initial: 'connect',
      on: {
        abort: { target: 'stoppedByUser', actions: ['stopPrepChildren', 'journalConfirmation'] },
        // autopilot's time limit (or a prompt only a person can answer): end in a clear state, naming what held it up
        'give-up': {
          target: '#recovery.failed',
          actions: [
            'stopPrepChildren',
            {
              type: 'endStep',
              params: ({ context }) => ({
                step: context.steps.find((s) => s.status === 'active')?.name ?? 'connect',
                status: 'failed',
                result: giveUpReason(context),
              }),
            },
            { type: 'setOutcome', params: ({ context }) => ({ outcome: `failed: ${giveUpReason(context)}` }) },
          ],
        },
      },
      states: {
        // shallow: a resumed step starts again at its first sub-state, which re-reads live state
        hist: { type: 'history', history: 'shallow' },

        // ---- 1. connect ------------------------------------------------------------------------------------------
        connect: {
          entry: { type: 'startStep', params: { step: 'connect' } },
          initial: 'calling',
          states: {
            ...callStep({
              call: 'calling',
              retry: 'retrying',
              invoke: {
                src: 'connect',
                input: ({ context }) => ({ nodes: context.nodes }),
                onDone: [
                  {
                    guard: 'anyNodeAnswered',
                    target: '#recovery.procedure.confirmNodes',
                    actions: [
                      assign({
                        rows: ({ context, event }) => {
                          const rows = { ...context.rows };
                          for (const n of event.output.nodes) {
                            const row = rows[n.node] ?? emptyRow(n.node);
                            rows[n.node] = { ...row, reachable: n.ok, error: n.error };
                          }
                          return rows;
                        },
                      }),
                      {
                        type: 'endStep',
                        params: ({ event }) => ({
                          step: 'connect',
                          status: 'done',
                          result: `${event.output.nodes.filter((n) => n.ok).length} of ${event.output.nodes.length} nodes answered${
                            event.output.nodes.some((n) => !n.ok)
                              ? ` (${event.output.nodes
                                  .filter((n) => !n.ok)
                                  .map((n) => n.node)
                                  .join(', ')} did not)`
                              : ''
                          }`,
                        }),
                      },
                    ],
                  },
                  {
                    // Blank machines answer only the maintenance API: assess tells them apart from dead ones.
                    target: '#recovery.procedure.confirmNodes',
                    actions: {
                      type: 'endStep',
                      params: { step: 'connect', status: 'done', result: 'no node answered the authenticated API' },
                    },
                  },
                ],
              },
              attempt: { action: 'connect', node: null },
            }),
            failed: retryPromptState('connect', 'calling'),
          },
        },

        confirmNodes: promptState(
          ({ context }) => ({
            id: 'confirm-nodes',
            kind: 'yes-no',
            question: `Recover etcd on these control-plane nodes: ${context.nodes.join(', ')}?`,
            detail: `${EXTERNAL_CONTROLLERS} Nothing is changed before a verified snapshot is on local disk and you type each node's address.`,
            recommended: { type: 'answer.yes' },
          }),
          {
            on: {
              'answer.yes': { target: 'assess', actions: 'journalConfirmation' },
              'answer.no': { target: '#recovery.stoppedByUser', actions: 'journalConfirmation' },
            },
          },
        ),

        // ---- 2. assess -------------------------------------------------------------------------------------------
        assess: {
          entry: { type: 'startStep', params: { step: 'assess' } },
          initial: 'reading',
          states: {
            ...callStep({
              call: 'reading',
              retry: 'retrying',
              invoke: {
                src: 'assess',
                input: ({ context }) => ({ nodes: context.nodes }),
                onDone: {
                  target: 'deciding',
                  actions: [
                    { type: 'storeObservations', params: ({ event }) => ({ views: event.output.observations }) },
                    assign(({ context, event }) => {
                      const verdict = computeVerdict(event.output.observations);
                      const listed = new Set<string>();
                      for (const o of event.output.observations)
                        for (const m of o.members ?? [])
                          if (
                            !context.nodes.some(
                              (n) => m.peerUrls.some((u) => u.includes(`//${n}:`)) || m.hostname === n,
                            )
                          )
                            listed.add(`${m.hostname} (${m.id})`);
                      return {
                        verdict,
                        volumes: { ...context.volumes, ...event.output.volumes },
                        extraMembers: [...listed],
                      };
                    }),
                    emit(({ event }) => {
                      const verdict = computeVerdict(event.output.observations);
                      return {
                        type: 'journal' as const,
                        entry: {
                          kind: 'decision' as const,
                          step: 'assess' as const,
                          what: `quorum verdict: ${verdict.verdict}`,
                          result: verdict.reason,
                          data: {
                            freshest: verdict.freshest,
                            views: event.output.observations.map((o) => ({
                              node: o.node,
                              reachable: o.reachable,
                              maintenance: Boolean(o.maintenance),
                              machineType: o.machineType,
                              etcdService: o.etcdService,
                              healthy: o.etcdHealthy,
                              raftAppliedIndex: o.status ? String(o.status.raftAppliedIndex) : null,
                              error: o.error ?? o.statusError ?? o.membersError ?? null,
                            })),
                          },
                        },
                      };
                    }),
                  ],
                },
              },
              attempt: { action: 'assess', node: null },
            }),
            failed: retryPromptState('assess', 'reading'),
            deciding: {
              always: [
                {
                  guard: 'verdictHealthy',
                  target: '#recovery.nothingToDo',
                  actions: {
                    type: 'endStep',
                    params: ({ context }) => ({
                      step: 'assess',
                      status: 'done',
                      result: `healthy: ${context.verdict?.reason ?? ''}`,
                    }),
                  },
                },
                { guard: 'quorumOverridden', target: 'lost' },
                { guard: 'verdictDegraded', target: 'quorumHolds' },
                { guard: 'verdictUnknown', target: 'undecided' },
                { target: 'lost' },
              ],
            },
            quorumHolds: promptState(
              ({ context }) => ({
                id: 'quorum-holds',
                kind: 'choose',
                question: 'Quorum still holds. Stop here and replace the broken member instead?',
                detail: `${context.verdict?.reason ?? ''} A full recovery would throw away a working cluster's newest writes.`,
                options: [
                  {
                    id: 'stop',
                    label: 'stop here (recommended): replace the broken member with etcd remove-member and a reset',
                  },
                  { id: 'override', label: 'run a full recovery anyway (needs a reason)', needsReason: true },
                ],
                recommended: { type: 'choose', option: 'stop' },
              }),
              {
                on: {
                  choose: {
                    guard: ({ event }) => event.option === 'stop',
                    target: '#recovery.stoppedQuorumIntact',
                    actions: [
                      'journalConfirmation',
                      {
                        type: 'endStep',
                        params: ({ context }) => ({
                          step: 'assess',
                          status: 'done',
                          result: `quorum holds: ${context.verdict?.reason ?? ''}`,
                        }),
                      },
                    ],
                  },
                  override: [
                    {
                      guard: 'reasonGiven',
                      target: 'lost',
                      actions: { type: 'recordOverride', params: { what: 'full recovery' } },
                    },
                    { actions: { type: 'refuse', params: { rules: ['reasonGiven'] } } },
                  ],
                },
              },
            ),
            undecided: promptState(
              ({ context }) => ({
                id: 'quorum-unknown',
                kind: 'choose',
                question: 'Quorum cannot be decided from the nodes that answered. Assess again?',
                detail: context.verdict?.reason ?? '',
                options: [
                  { id: 'again', label: 'assess again (recommended)' },
                  { id: 'stop', label: 'stop here' },
                  { id: 'override', label: 'treat quorum as lost and recover (needs a reason)', needsReason: true },
                ],
                recommended: { type: 'choose', option: 'again' },
              }),
              {
                on: {
                  choose: [
                    { guard: ({ event }) => event.option === 'again', target: 'reading' },
                    {
                      guard: ({ event }) => event.option === 'stop',
                      target: '#recovery.stoppedByUser',
                      actions: 'journalConfirmation',
                    },
                  ],
                  override: [
                    {
                      guard: 'reasonGiven',
                      target: 'lost',
                      actions: { type: 'recordOverride', params: { what: 'full recovery' } },
                    },
                    { actions: { type: 'refuse', params: { rules: ['reasonGiven'] } } },
                  ],
                  'give-up': {
                    target: '#recovery.failed',
                    actions: {
                      type: 'setOutcome',
                      params: ({ context }) => ({
                        outcome: `failed: ${context.verdict?.reason ?? 'quorum could not be decided'}`,
                      }),
                    },
                  },
                },
              },
            ),
            lost: {
              always: {
                target: '#recovery.procedure.snapshot',
                actions: [
                  {
                    type: 'endStep',
                    params: ({ context }) => ({
                      step: 'assess',
                      status: 'done',
                      result: `${context.verdict?.verdict === 'lost' ? 'quorum lost' : `quorum ${context.verdict?.verdict ?? '?'} (overridden)`}; freshest member: ${context.verdict?.freshest ?? 'none answers'}`,
                    }),
                  },
                  assign({
                    snapshotOptions: ({ context }) =>
                      snapshotOptions(context.observations, context.verdict?.freshest ?? null, context.givenSnapshots),
                  }),
                ],
              },
            },
          },
        },

        // ---- 3. snapshot -----------------------------------------------------------------------------------------
        snapshot: {
          entry: { type: 'startStep', params: { step: 'snapshot' } },
          initial: 'checkVerdict',
          states: {
            checkVerdict: {
              always: [
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
            ...callStep({
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
                  snapshotOptions: ({ context, event }) =>
                    context.snapshotOptions.map((o) =>
                      o.id === context.attempt?.action ? { ...o, failed: errorOf(event).message } : o,
                    ),
                  notice: ({ event }) => errorOf(event).message,
                }),
              },
            }),
            checking: {
              always: [
                {
                  guard: 'snapshotUnusable',
                  target: 'choosing',
                  actions: [
                    { type: 'refuse', params: { rules: ['snapshotUsable'] } },
                    assign({
                      snapshotOptions: ({ context }) =>
                        context.snapshotOptions.map((o) =>
                          o.id === context.attempt?.action
                            ? {
                                ...o,
                                failed: context.snapshot ? hashCheckDecision(context.snapshot).reason : 'unusable',
                              }
                            : o,
                        ),
                      snapshot: null,
                    }),
                  ],
                },
                { guard: 'needsSkipAck', target: 'acknowledgeSkip' },
                { target: 'ready' },
              ],
            },
            acknowledgeSkip: promptState(
              ({ context }) => ({
                id: 'skip-hash-check',
                kind: 'acknowledge',
                question: 'Restore from this raw database copy with skip-hash-check?',
                detail: `${context.snapshot?.file ?? ''} has no sha256 trailer; its bbolt structure checked out.`,
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
                      snapshotOptions: ({ context }) =>
                        context.snapshotOptions.map((o) =>
                          o.id === context.attempt?.action ? { ...o, failed: 'skip-hash-check not acknowledged' } : o,
                        ),
                      snapshot: null,
                    }),
                  },
                },
              },
            ),
            ready: {
              entry: enqueueActions(({ context, enqueue }) => {
                const s = context.snapshot as SnapshotInfo;
                enqueue.assign({ dataLossWindow: dataLossWindow(s, Date.now()) });
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
              }),
              always: {
                target: '#recovery.procedure.backup',
                actions: {
                  type: 'endStep',
                  params: ({ context }) => ({
                    step: 'snapshot',
                    status: 'done',
                    result: `${context.snapshot?.method === 'file' ? 'file' : `${context.snapshot?.method} from ${context.snapshot?.node}`}: revision ${context.snapshot?.revision}, ${context.snapshot?.totalKeys} keys, integrity ${context.snapshot?.integrity}${context.snapshot?.needsSkipHashCheck ? ' (skip-hash-check acknowledged)' : ''}`,
                  }),
                },
              },
            },
          },
        },

        // ---- 4. back up machine configuration ---------------------------------------------------------------------
        backup: {
          entry: { type: 'startStep', params: { step: 'backup configs' } },
          initial: 'reading',
          states: {
            ...callStep({
              call: 'reading',
              retry: 'retryRead',
              invoke: {
                src: 'assess',
                input: ({ context }) => ({ nodes: context.nodes }),
                onDone: {
                  target: 'saving',
                  actions: { type: 'storeObservations', params: ({ event }) => ({ views: event.output.observations }) },
                },
              },
              attempt: { action: 'assess', node: null },
            }),
            ...callStep({
              call: 'saving',
              retry: 'retrySave',
              invoke: {
                src: 'backupConfigs',
                input: ({ context }) => ({
                  nodes: context.observations.filter((o) => o.reachable && !o.maintenance).map((o) => o.node),
                  blank: context.observations.filter((o) => o.maintenance).map((o) => o.node),
                }),
                onDone: {
                  target: 'checking',
                  actions: assign(({ context, event }) => {
                    const configs = { ...context.configs };
                    for (const c of event.output.configs)
                      if (c.file && c.source) configs[c.node] = { file: c.file, source: c.source };
                    const plan = planPreparation(context.observations, context.volumes, context.snapshot?.node ?? null);
                    const rows = { ...context.rows };
                    for (const p of plan) {
                      const row = rows[p.node] ?? emptyRow(p.node);
                      rows[p.node] = {
                        ...row,
                        prep: {
                          ...row.prep,
                          plan: p.preparation,
                          labels: p.labels,
                          status: row.prep.status ?? 'planned',
                        },
                      };
                    }
                    return { configs, plan, rows };
                  }),
                },
              },
              attempt: { action: 'backup', node: null },
            }),
            failed: retryPromptState('back up configurations', 'reading'),
            checking: {
              always: [
                {
                  guard: 'blankWithoutConfig',
                  target: '#recovery.failed',
                  actions: failedAt(
                    'backup configs',
                    'a blank node has no configuration backup',
                    ({ context }) =>
                      `no configuration backup for the blank node ${context.plan.find((p) => p.preparation === 'recreate' && !context.configs[p.node])?.node ?? ''}; put it in given/configs/<node>.yaml and resume`,
                  ),
                },
                {
                  target: '#recovery.procedure.initNodes',
                  actions: {
                    type: 'endStep',
                    params: ({ context }) => ({
                      step: 'backup configs',
                      status: 'done',
                      result:
                        Object.entries(context.configs)
                          .map(([node, c]) => `${node} (${c.source === 'live' ? 'saved' : 'from given/'})`)
                          .join(', ') || 'no configuration could be read',
                    }),
                  },
                },
              ],
            },
          },
        },

        // ---- 5. init nodes ---------------------------------------------------------------------------------------
        initNodes: {
          entry: [
            { type: 'startStep', params: { step: 'init nodes' } },
            assign({
              initQueue: ({ context }) => initNodes(context.observations).filter((n) => !context.converted.includes(n)),
            }),
          ],
          initial: 'next',
          states: {
            next: {
              always: [
                {
                  guard: 'noInitNodes',
                  target: '#recovery.procedure.prepare',
                  actions: {
                    type: 'endStep',
                    params: ({ context }) =>
                      context.converted.length
                        ? {
                            step: 'init nodes',
                            status: 'done',
                            result: `converted ${context.converted.join(', ')} to controlplane`,
                          }
                        : { step: 'init nodes', status: 'skipped', result: 'no init node' },
                  },
                },
                { target: 'confirm' },
              ],
            },
            confirm: promptState(
              ({ context }) => ({
                id: `convert:${context.initQueue[0]}`,
                kind: 'typed-address',
                question: `Convert ${context.initQueue[0]} from init to controlplane and reboot it?`,
                detail:
                  'An init node would bootstrap a new etcd on its own after a wipe; it is converted first (staged configuration change, then reboot).',
                target: context.initQueue[0] as string,
                recommended: { type: 'confirm', address: context.initQueue[0] as string },
              }),
              {
                on: {
                  confirm: [
                    { guard: 'addressMatches', target: 'converting', actions: 'journalConfirmation' },
                    { actions: { type: 'refuse', params: { rules: ['addressMatches'] } } },
                  ],
                },
              },
            ),
            ...callStep({
              call: 'converting',
              retry: 'retrying',
              invoke: {
                src: 'convertInitNode',
                input: ({ context }) => ({
                  node: context.initQueue[0] as string,
                  opId: `convert:${context.initQueue[0]}`,
                }),
                onDone: {
                  target: 'next',
                  actions: assign({
                    converted: ({ context }) => [...context.converted, context.initQueue[0] as string],
                    initQueue: ({ context }) => context.initQueue.slice(1),
                    attempt: null,
                  }),
                },
              },
              attempt: ({ initQueue }) => ({ action: 'convert', node: initQueue[0] ?? null }),
            }),
            failed: retryPromptState(({ initQueue }) => `convert ${initQueue[0]}`, 'converting'),
          },
        },

        // ---- 6. prepare control-plane nodes ----------------------------------------------------------------------
        prepare: {
          entry: { type: 'startStep', params: { step: 'prepare nodes' } },
          exit: 'stopPrepChildren',
          on: {
            'prep.update': {
              actions: assign({
                rows: ({ context, event }) =>
                  withPrep(context.rows, event.node, {
                    status: event.status,
                    detail: event.detail,
                    attempts: event.attempts,
                  }),
              }),
            },
            'prep.done': {
              actions: [
                assign({
                  prepared: ({ context, event }) => [...new Set([...context.prepared, event.node])],
                  wiped: ({ context, event }) =>
                    event.wiped ? [...new Set([...context.wiped, event.node])] : context.wiped,
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
                rows: ({ context, event }) =>
                  withPrep(context.rows, event.node, { status: 'failed', detail: event.error }),
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
                onDone: {
                  target: 'respawn',
                  actions: { type: 'storeObservations', params: ({ event }) => ({ views: event.output }) },
                },
              },
              attempt: { action: 'observe', node: null },
              onFailure: { target: 'respawn' },
            }),
            respawn: {
              // After an abort and resume, confirmed nodes that were not finished get their child back.
              entry: enqueueActions(({ context, enqueue }) => {
                for (const p of context.plan)
                  if (context.confirmed.includes(p.node) && !context.prepared.includes(p.node))
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
                      : `This erases etcd data on ${node} (now: etcd ${row?.etcdService ?? 'unknown'}). The verified snapshot ${context.snapshot?.file ?? ''} will restore it.`,
                  target: node,
                  recommended: { type: 'confirm', address: node },
                };
              },
              {
                always: [{ guard: 'allConfirmed', target: 'running' }],
                on: {
                  confirm: [
                    {
                      guard: and(['addressMatches', 'snapshotVerified', 'sourceKeptUntilVerified']),
                      target: 'confirming',
                      reenter: true,
                      actions: [
                        'journalConfirmation',
                        enqueueActions(({ context, enqueue }) => {
                          const node = promptTarget(context) as string;
                          const p = context.plan.find((x) => x.node === node);
                          if (!p) return;
                          enqueue.assign({ confirmed: [...context.confirmed, node] });
                          enqueue.spawnChild('prepareNode', {
                            id: `prep:${node}`,
                            input: {
                              node,
                              preparation: p.preparation,
                              labels: p.labels,
                              configFile: context.configs[node]?.file ?? null,
                              timing: context.timing,
                            },
                          });
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
                // a yes/no question like every other failure's: y tries again, n (or Enter) stops, resumable
                return {
                  id: 'prepare-failed',
                  kind: 'yes-no',
                  question: `Preparing ${failed.map((p) => p.node).join(', ')} failed. Try again?`,
                  detail: failed.map((p) => `${p.node}: ${context.rows[p.node]?.prep.detail ?? ''}`).join(' '),
                  recommended: null,
                };
              },
              {
                on: retryAnswers('running', 'retryFailedPreps'),
              },
            ),
          },
        },

        // ---- 7. wait for Preparing -------------------------------------------------------------------------------
        waitPreparing: {
          entry: startWait(
            'wait for Preparing',
            'Preparing',
            'preparingTimeoutMs',
            'waiting for every node to show etcd Preparing',
          ),
          initial: 'polling',
          states: {
            ...pollStates(
              (context, views) =>
                context.wait && {
                  ...context.wait,
                  pending: pendingPreparing(context, views),
                  message: pendingPreparing(context, views)
                    .map((p) => `${p.node} ${p.state ?? 'not answering'}: ${p.cause ?? ''}`)
                    .join('; '),
                },
            ),
            check: {
              always: [
                allPreparingThen((context) => `${targetNodes(context).length} nodes Preparing`),
                { guard: 'waitExpired', target: 'timedOut' },
                { target: 'pause' },
              ],
            },
            timedOut: promptState(
              ({ context }) => ({
                id: 'preparing-timeout',
                kind: 'choose',
                question: `Still waiting: ${context.wait?.message ?? ''}. Keep waiting?`,
                detail:
                  'A node sits in Waiting until its dependency is met (time sync, CRI, network): fix the cause, or continue without it by an explicit override.',
                options: [
                  { id: 'wait', label: 'keep waiting (recommended)' },
                  { id: 'override', label: 'continue without the waiting nodes (needs a reason)', needsReason: true },
                  { id: 'stop', label: 'stop here (resumable)' },
                ],
                recommended: { type: 'choose', option: 'wait' },
              }),
              {
                on: {
                  choose: [
                    {
                      guard: ({ event }) => event.option === 'wait',
                      target: 'polling',
                      actions: assign({
                        wait: ({ context }) =>
                          context.wait && { ...context.wait, deadline: Date.now() + context.timing.preparingTimeoutMs },
                      }),
                    },
                    {
                      guard: ({ event }) => event.option === 'stop',
                      target: '#recovery.stoppedByUser',
                      actions: 'journalConfirmation',
                    },
                  ],
                  override: [
                    {
                      guard: 'reasonGiven',
                      target: 'overridden',
                      actions: [
                        {
                          type: 'recordOverride',
                          params: ({ context }) => ({
                            what: `continue without ${context.wait?.pending.map((p) => p.node).join(', ')}`,
                          }),
                        },
                        assign({
                          excluded: ({ context }) => [
                            ...context.excluded,
                            ...(context.wait?.pending.map((p) => p.node) ?? []),
                          ],
                        }),
                      ],
                    },
                    { actions: { type: 'refuse', params: { rules: ['reasonGiven'] } } },
                  ],
                },
              },
            ),
            overridden: {
              always: [
                allPreparingThen((context) => `continuing without ${context.excluded.join(', ')} (override)`),
                { target: 'polling' },
              ],
            },
          },
        },

        // ---- 8. bootstrap from the snapshot ----------------------------------------------------------------------
        bootstrap: {
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
                        guardStops: ({ context }) => [
                          ...context.guardStops,
                          {
                            rule: 'snapshotUnchanged',
                            message: `${context.snapshot?.file ?? ''} changed since it was verified; it is not uploaded.`,
                            at: Date.now(),
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
                      attempt: ({ context, event }) => {
                        const count = (context.attempt?.action === 'upload' ? context.attempt.count : 0) + 1;
                        return {
                          action: 'upload',
                          node: context.bootstrap.node,
                          count,
                          max: context.timing.maxAttempts,
                          lastError: event.error,
                          nextAt: Date.now() + backoffDelay(context.timing, count),
                        };
                      },
                      transfer: ({ context }) =>
                        context.transfer && { ...context.transfer, bytes: 0, restarts: context.transfer.restarts + 1 },
                    }),
                  },
                  {
                    target: 'failed',
                    actions: assign({
                      attempt: ({ context, event }) => ({
                        action: 'upload',
                        node: context.bootstrap.node,
                        count: (context.attempt?.count ?? 0) + 1,
                        max: context.timing.maxAttempts,
                        lastError: event.error,
                        nextAt: null,
                      }),
                    }),
                  },
                ],
              },
            },
            uploadRetry: { after: { backoff: 'uploading' } },
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
            bootstrapRetry: { after: { backoff: 'bootstrapping' } },
            failed: retryPromptState(({ attempt }) => attempt?.action ?? 'bootstrap', 'reading'),
          },
        },

        // ---- 9. verify -------------------------------------------------------------------------------------------
        verify: {
          entry: startWait(
            'verify',
            'recovery',
            'verifyTimeoutMs',
            'waiting for etcd Running and healthy on every node, with agreeing member lists',
          ),
          on: {
            'give-up': {
              target: '#recovery.failed',
              actions: failedAt(
                'verify',
                ({ context }) => context.wait?.message ?? 'not healthy in time',
                ({ context }) => context.wait?.message ?? 'etcd did not become healthy in time',
              ),
            },
          },
          initial: 'polling',
          states: {
            ...pollStates((context, views) => {
              if (!context.wait) return null;
              return {
                ...context.wait,
                message: recoveryComplete(views).reason,
                pending: views
                  .filter((o) => o.etcdService !== 'Running' || o.etcdHealthy !== true)
                  .map((o) => ({ node: o.node, state: o.etcdService, cause: waitingCause(o) })),
              };
            }),
            check: {
              always: [
                {
                  guard: 'recovered',
                  target: '#recovery.recovered',
                  actions: {
                    type: 'endStep',
                    params: ({ context }) => ({
                      step: 'verify',
                      status: 'done',
                      result: `all ${targetNodes(context).length} nodes Running, healthy, members agree`,
                    }),
                  },
                },
                {
                  guard: 'restoreFailed',
                  target: '#recovery.failed',
                  actions: failedAt('verify', 'the restore failed inside etcd', ({ context }) => {
                    const o = context.observations.find((x) => x.node === context.bootstrap.node);
                    const last = o?.etcdEvents?.[o.etcdEvents.length - 1] ?? o?.etcdLastEvent ?? 'etcd Failed';
                    return `${context.bootstrap.node}: the restore failed: ${last}`;
                  }),
                },
                {
                  guard: 'waitExpired',
                  target: '#recovery.failed',
                  actions: failedAt(
                    'verify',
                    ({ context }) => context.wait?.message ?? '',
                    ({ context }) =>
                      `etcd not healthy within ${Math.round(context.timing.verifyTimeoutMs / 1000)} s: ${context.wait?.message ?? ''}`,
                  ),
                },
                { target: 'pause' },
              ],
            },
          },
        },
      },
    },

    stoppedByUser: {
      entry: { type: 'setOutcome', params: { outcome: 'stopped-by-user' } },
      on: {
        resume: { target: 'procedure.hist', actions: assign({ outcome: null }) },
      },
    },
    nothingToDo: {
      type: 'final',
      entry: { type: 'setOutcome', params: { outcome: 'nothing-to-do' } },
    },
    stoppedQuorumIntact: {
      type: 'final',
      entry: { type: 'setOutcome', params: { outcome: 'stopped-quorum-intact' } },
    },
    recovered: {
      type: 'final',
      entry: [assign({ followUp: FOLLOW_UP }), { type: 'setOutcome', params: { outcome: 'recovered' } }],
    },
    failed: {
      type: 'final',
      entry: enqueueActions(({ context, enqueue }) => {
        if (!context.outcome)
          enqueue({ type: 'setOutcome', params: { outcome: 'failed: the recovery could not continue' } });
      }),
    },
  },
});

/** What held the procedure up when it is given up: the node still waiting and why, or the last failure. */
export function giveUpReason(context: RecoveryContext): string {
  const waiting = context.wait?.pending[0];
  if (waiting)
    return `${waiting.node} still ${waiting.state ?? 'not answering'}: ${waiting.cause ?? 'no reason given'}`;
  const prep = context.plan.find((p) => {
    const st = context.rows[p.node]?.prep.status;
    return context.confirmed.includes(p.node) && st !== 'done';
  });
  if (prep) return `${prep.node}: ${context.rows[prep.node]?.prep.detail ?? 'not prepared'}`;
  if (context.attempt?.lastError) return context.attempt.lastError;
  if (context.prompt) return `no answer to "${context.prompt.question}"`;
  return 'the time limit was reached';
}

/**
 * What a failure's prompt takes, however the answer comes: yes, `retry` or the option "retry" goes back to `target`
 * and tries again; no or the option "stop" stops (resumable). (A prompt saved as a list of those two options before
 * failure prompts became yes/no questions is answered the same way after a resume.)
 */
function retryAnswers(target: string, again: 'clearAttempt' | 'retryFailedPreps' = 'clearAttempt') {
  return {
    retry: { target, actions: again },
    'answer.yes': { target, actions: again },
    'answer.no': { target: '#recovery.stoppedByUser' },
    choose: [
      { guard: { type: 'chose' as const, params: { option: 'retry' } }, target, actions: again },
      { guard: { type: 'chose' as const, params: { option: 'stop' } }, target: '#recovery.stoppedByUser' },
    ],
  };
}

function retryPrompt(action: string, error: string | null): Prompt {
  return {
    id: `retry:${action}`,
    kind: 'yes-no',
    question: `${action} failed. Try again?`,
    detail: error ?? 'The action failed.',
    recommended: null,
  };
}

export type RecoveryMachine = typeof recoveryMachine;
export type RecoveryActor = ActorRefFrom<RecoveryMachine>;
export type RecoverySnapshot = SnapshotFrom<RecoveryMachine>;

/** The step a snapshot is in (1–9), for the screens and the autopilot's lines. */
export function currentStep(snapshot: { context: RecoveryContext }): StepRow | null {
  return snapshot.context.steps.find((s) => s.status === 'active') ?? null;
}
