/**
 * The recovery machine's context: its first value, and the pure functions that read and fold it (node rows from
 * observations, the ways to get a snapshot, the nodes a wait looks at, what held a given-up procedure up). Nothing
 * here reads a clock: a time is passed in.
 */
import { waitingCause } from '../decisions.js';
import { errorInfo } from '../errors.js';
import {
  DEFAULT_TIMING,
  type NodeRow,
  type NodeView,
  type Prompt,
  type RecoveryContext,
  type RecoveryEvent,
  type RecoveryInput,
  type SnapshotInfo,
  type StepRow,
} from '../recovery-types.js';
import { PROCEDURE_STEPS, STEPS, stepByName, type Procedure, type StepName, type TalosctlArgs } from './steps.js';

export const FOLLOW_UP = [
  // step 10 restarted the kubelets (or named, as warnings, the ones still to restart by hand)
  'Restart the controllers that watch the API (controller-manager, scheduler, operators) so their caches do not see revisions go backwards.',
  'Run `talosctl health` and check that every node and workload comes back.',
  'Unpause any external controller you paused (Omni, Cluster API) only after the cluster is healthy.',
  'Take a fresh snapshot now: the restored state is your new baseline.',
];

export function initialSteps(nodes: string[]): StepRow[] {
  return STEPS.map((s) => pendingRow(s.name, nodes));
}

function pendingRow(name: StepName, nodes: readonly string[]): StepRow {
  const s = stepByName(name);
  return {
    n: s.n,
    name,
    status: 'pending',
    result: null,
    startedAt: null,
    endedAt: null,
    talosctl: s.talosctl({ nodes }),
  };
}

/** What each procedure is for, journalled when the assessment chooses it. */
export const PROCEDURE_WHY: Record<Procedure, string> = {
  recovery: 'quorum is lost: restore every member from one verified snapshot',
  'replace-member':
    'quorum holds: replace the broken members (or the one chosen for planned maintenance) one at a time, keeping the cluster and its newest writes',
  nospace: "etcd's database is full (NOSPACE alarm): free space and disarm the alarm, keeping every member",
};

/** The step rows of a procedure: rows already run keep their state; the procedure's other steps start pending. */
export function stepsForProcedure(
  steps: readonly StepRow[],
  procedure: Procedure,
  nodes: readonly string[],
): StepRow[] {
  return PROCEDURE_STEPS[procedure].map(
    (def) => steps.find((s) => s.name === def.name) ?? pendingRow(def.name as StepName, nodes),
  );
}

/** The rows with `name` present: a folder saved by an older build may lack a step added since (appended). */
export function withStepRow(steps: readonly StepRow[], name: StepName, nodes: readonly string[]): StepRow[] {
  return steps.some((s) => s.name === name) ? [...steps] : [...steps, pendingRow(name, nodes)];
}

/** The steps with one step's talosctl lines written anew (step 6 names each node's labels once the plan is known). */
export function withTalosctl(steps: StepRow[], name: StepName, args: TalosctlArgs): StepRow[] {
  const step = STEPS.find((s) => s.name === name);
  return step ? steps.map((s) => (s.name === name ? { ...s, talosctl: step.talosctl(args) } : s)) : steps;
}

/** The context a new recovery starts with, at `now` (ms since epoch). */
export function initialContext(input: RecoveryInput, now: number): RecoveryContext {
  return {
    nodes: [...input.nodes],
    operator: input.operator,
    mode: input.mode,
    timing: { ...DEFAULT_TIMING, ...input.timing },
    startedAt: now,
    steps: initialSteps(input.nodes),
    rows: Object.fromEntries(input.nodes.map((n) => [n, emptyRow(n)])),
    observations: [],
    verdict: null,
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
    procedure: 'recovery',
    replace: null,
    nospace: null,
    afterRestore: null,
  };
}

export function emptyRow(node: string): NodeRow {
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
export function rowsFrom(rows: Record<string, NodeRow>, views: readonly NodeView[]): Record<string, NodeRow> {
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
export function withPrep(
  rows: Record<string, NodeRow>,
  node: string,
  prep: Partial<NodeRow['prep']>,
): Record<string, NodeRow> {
  const row = rows[node] ?? emptyRow(node);
  return { ...rows, [node]: { ...row, prep: { ...row.prep, ...prep } } };
}

// step 3's choices live beside what is said about the chosen snapshot (issues 15, 16)
export { snapshotOptions } from './snapshot-options.js';

/** Short human age: "3 min", "2 h 5 min", "4 d". */
export function formatAge(ms: number): string {
  const min = Math.max(0, Math.round(ms / 60_000));
  if (min < 60) return `${min} min`;
  const h = Math.floor(min / 60);
  if (h < 48) return `${h} h ${min % 60} min`;
  return `${Math.floor(h / 24)} d`;
}

export function dataLossWindow(s: SnapshotInfo, now: number): string {
  return `snapshot revision ${s.revision ?? '?'}, taken ${formatAge(now - s.takenAt)} ago: writes after that point are lost`;
}

export const errorOf = (event: unknown): ReturnType<typeof errorInfo> =>
  errorInfo((event as { error?: unknown }).error);

/** The reason given with an acknowledgement, trimmed; null when none was given (an event of the older shape). */
export const acknowledgedReason = (event: RecoveryEvent): string | null =>
  (event.type === 'acknowledge' && event.reason?.trim()) || null;

export const activePrompt = (context: RecoveryContext): Prompt | null => context.prompt ?? context.lastPrompt;
export const promptTarget = (context: RecoveryContext): string | null => activePrompt(context)?.target ?? null;

export const bootstrapCandidate = (context: RecoveryContext): string | null => {
  const ready = context.observations.filter(
    (o) => context.prepared.includes(o.node) && !context.excluded.includes(o.node) && o.etcdService === 'Preparing',
  );
  const source = context.snapshot?.node;
  return ready.find((o) => o.node === source)?.node ?? ready[0]?.node ?? null;
};

/** Nodes the waits and the verification look at: prepared and not excluded by an override. */
export const targetNodes = (context: RecoveryContext): string[] =>
  context.plan.map((p) => p.node).filter((n) => !context.excluded.includes(n));

export function pendingPreparing(context: RecoveryContext, views: readonly NodeView[]) {
  return views
    .filter((v) => v.etcdService !== 'Preparing')
    .map((v) => ({
      node: v.node,
      state: v.etcdService,
      cause: waitingCause(v) ?? (v.reachable ? `etcd ${v.etcdService ?? 'not reported'}` : 'not answering'),
    }));
}

// ---- the machine ---------------------------------------------------------------------------------------------------

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

/** The step a snapshot is in (1–9), for the screens and the autopilot's lines. */
export function currentStep(snapshot: { context: RecoveryContext }): StepRow | null {
  return snapshot.context.steps.find((s) => s.status === 'active') ?? null;
}
