/**
 * From the recovery machine's context to the screens' view model. Every selector here is pure and returns either a
 * primitive or an object that `shallowEqual` can compare, so `useSelector` re-renders only when what is shown
 * changes. This is the one file that knows the machine's context shape.
 */
import type {
  NodeRow as MachineNodeRow,
  NodeView,
  Prompt,
  RecoveryContext,
  StepRow,
} from '../machines/recovery-types.js';
import { STEP_TEXT } from './step-text.js';
import type { NodeRow, Outcome, StepExplanation, StepView, TransferView, WaitView } from './view-model.js';

const STATUS: Record<StepRow['status'], StepView['status']> = {
  pending: 'pending',
  active: 'current',
  done: 'done',
  skipped: 'skipped',
  failed: 'failed',
};

export function stepView(row: StepRow): StepView {
  return {
    n: row.n,
    title: STEP_TEXT[row.name]?.title ?? row.name,
    status: STATUS[row.status],
    ...(row.result ? { result: row.result } : {}),
    ...(row.startedAt !== null && row.endedAt !== null ? { durationMs: row.endedAt - row.startedAt } : {}),
  };
}

/** The steps as shown; between steps (a question before the next one starts) the next step counts as current. */
export function selectSteps(ctx: Pick<RecoveryContext, 'steps'>): StepView[] {
  const current = currentStepRow(ctx);
  return ctx.steps.map((row) => {
    const view = stepView(row);
    return row === current && view.status === 'pending' ? { ...view, status: 'current' } : view;
  });
}

/** The step on screen: the active one, else the first not finished, else the last. */
export function currentStepRow(ctx: Pick<RecoveryContext, 'steps'>): StepRow | undefined {
  return (
    ctx.steps.find((s) => s.status === 'active') ?? ctx.steps.find((s) => s.status === 'pending') ?? ctx.steps.at(-1)
  );
}

export function selectExplanation(ctx: Pick<RecoveryContext, 'steps'>): StepExplanation | null {
  const row = currentStepRow(ctx);
  if (!row) return null;
  const text = STEP_TEXT[row.name];
  return { why: text.why, whatHappens: text.whatHappens, talosctl: row.talosctl };
}

/** When the assessment started (the clock in the header runs from there), or null before it did. */
export function assessmentStartedAt(ctx: Pick<RecoveryContext, 'steps'>): number | null {
  return ctx.steps.find((s) => s.name === 'assess')?.startedAt ?? null;
}

/** A node row as the table shows it; `lastAnsweredAt` is filled in by the screen, which keeps the clock. */
export function nodeRowView(
  row: MachineNodeRow,
  ctx: Pick<RecoveryContext, 'observations'>,
): Omit<NodeRow, 'lastAnsweredAt'> {
  const obs = ctx.observations.find((o) => o.node === row.node);
  const prep =
    row.prep.status === 'confirmed'
      ? // confirmed but not started: the snapshot source waits for the other nodes' Resets (6-prepare.ts)
        `${row.prep.plan ?? 'prepare'}: waits, the snapshot source goes last`
      : row.prep.status && row.prep.status !== 'done'
        ? `${row.prep.plan ?? 'prepare'}: ${row.prep.status}${
            row.prep.detail && (row.prep.status === 'failed' || row.prep.status === 'retrying')
              ? ` (${row.prep.detail})`
              : ''
          }`
        : null;
  return {
    address: row.node,
    hostname: row.hostname,
    reachable: row.reachable,
    machineType: row.machineType,
    etcdService: row.maintenance ? 'maint.' : row.etcdService,
    healthy: row.healthy,
    members: obs?.members ? obs.members.length : null,
    raftAppliedIndex: row.raftAppliedIndex,
    // what this node is doing now, most telling first: our own action on it, what it waits for, its etcd's last
    // word, and only then the error of the last call to it
    lastEvent: prep ?? row.waitingFor ?? obs?.etcdLastEvent ?? row.error,
  };
}

/** What the node table is made of: changes only when the machine stores a new read. */
export type NodeSource = Pick<RecoveryContext, 'rows' | 'observations' | 'nodes'>;

export const selectNodeSource = (ctx: RecoveryContext): NodeSource => ({
  rows: ctx.rows,
  observations: ctx.observations,
  nodes: ctx.nodes,
});

export const selectNodeRows = (ctx: NodeSource): Omit<NodeRow, 'lastAnsweredAt'>[] =>
  ctx.nodes.map((n) => ctx.rows[n]).flatMap((row) => (row ? [nodeRowView(row, ctx)] : []));

/**
 * The table's rows with a fresher answer of the screen's own refresh laid over the machine's rows: what the node
 * says now (reachable, etcd state, health, members, applied index, last event), while the machine's own progress on
 * the node (a wipe under way) keeps its place in the last-event column.
 */
export function overlayRefresh(
  rows: readonly Omit<NodeRow, 'lastAnsweredAt'>[],
  views: readonly NodeView[],
  ctx: Pick<RecoveryContext, 'rows'>,
): Omit<NodeRow, 'lastAnsweredAt'>[] {
  return rows.map((row) => {
    const v = views.find((x) => x.node === row.address);
    if (!v) return row;
    const machineRow = ctx.rows[row.address];
    const prepActive = machineRow?.prep.status && machineRow.prep.status !== 'done';
    return {
      ...row,
      hostname: v.hostname ?? row.hostname,
      reachable: v.reachable,
      machineType: v.reachable ? v.machineType : row.machineType,
      etcdService: v.maintenance ? 'maint.' : v.etcdService,
      healthy: v.etcdHealthy,
      members: v.members ? v.members.length : null,
      raftAppliedIndex: v.status ? String(v.status.raftAppliedIndex) : null,
      lastEvent: prepActive ? row.lastEvent : (v.etcdLastEvent ?? v.error ?? v.statusError ?? row.lastEvent),
    };
  });
}

export function selectTransfer(ctx: Pick<RecoveryContext, 'transfer'>, startedAt: number): TransferView | null {
  const t = ctx.transfer;
  if (!t) return null;
  // step 3's download (or an import's decode and verify) names itself; only step 8's upload is said here
  if (t.label) return { label: t.label, bytes: t.bytes, total: t.total, startedAt };
  const restarted = t.restarts > 0 ? ` (restarted from zero ${t.restarts}× after a cut stream)` : '';
  return { label: `Uploading ${t.file} to ${t.node}${restarted}`, bytes: t.bytes, total: t.total, startedAt };
}

/** Which step each kind of wait belongs to: a wait left over from an earlier step is not what is awaited now. */
const WAIT_STEP: Record<NonNullable<RecoveryContext['wait']>['what'], string> = {
  'node back': 'prepare nodes',
  Preparing: 'wait for Preparing',
  recovery: 'verify',
};

export function selectWait(ctx: Pick<RecoveryContext, 'wait' | 'steps' | 'procedure'>): WaitView | null {
  const w = ctx.wait;
  if (!w) return null;
  // the quorum-restoring procedures wait inside their own steps (a member to come back, to leave, to join): the
  // machine's sentence says what for, and the time left counts down to the question that follows
  if (ctx.procedure === 'replace-member' || ctx.procedure === 'nospace') {
    const step = currentStepRow(ctx)?.name;
    return {
      awaiting: step ? STEP_TEXT[step].working : w.message,
      latest: w.message,
      since: w.since,
      deadline: w.deadline,
    };
  }
  if (WAIT_STEP[w.what] !== currentStepRow(ctx)?.name) return null;
  const first = w.pending[0];
  const latest = first
    ? `${first.node} ${first.state ?? 'not answering'}${first.cause ? `: ${first.cause}` : ''}${w.pending.length > 1 ? ` (+${w.pending.length - 1} more)` : ''}`
    : w.message;
  const awaiting =
    w.what === 'Preparing'
      ? "every node's etcd to reach Preparing"
      : w.what === 'node back'
        ? 'the nodes to come back'
        : 'etcd to be Running and healthy everywhere';
  return { awaiting, latest, since: w.since };
}

export function selectOutcome(ctx: RecoveryContext): Outcome | null {
  const o = ctx.outcome;
  if (o === null) return null;
  if (o.startsWith('failed: ')) return { kind: 'failed', reason: o.slice('failed: '.length) };
  return { kind: o as Exclude<Outcome['kind'], 'failed'> };
}

export const selectPrompt = (ctx: RecoveryContext): Prompt | null => ctx.prompt;

/**
 * The project's own documents ("SAFETY rule 8", "PRODUCT.md §2") mean nothing to the person at the terminal: a
 * citation of one in a sentence from the machine is left out on screen, and the sentence still reads whole.
 */
const CITATION = /\s*\([^()]*\b(?:SAFETY|PRODUCT|STYLE)(?:\.md)?\b[^()]*\)/g;
export const userText = (text: string): string => text.replace(CITATION, '');

/**
 * The latest warning as shown. A snapshot file whose raft index is unknown (a file given by path) cannot be said to
 * be older than a live member: the machine's "holds newer data" is then only a possibility, and is said so.
 */
export function selectWarning(ctx: Pick<RecoveryContext, 'warnings' | 'snapshot'>): string | null {
  const warning = ctx.warnings.at(-1);
  if (warning === undefined) return null;
  const pointUnknown = ctx.snapshot !== null && ctx.snapshot.raftAppliedIndex === null;
  return userText(
    pointUnknown
      ? warning.replace(
          /\b(?:holds|hold) newer data than this snapshot; a snapshot from (\S+) loses less\./,
          'may hold newer data than this snapshot (the file does not say how far it reaches); a snapshot from $1 may lose less.',
        )
      : warning,
  );
}

/** "less than a minute", "11 min", "2 h 05 min", "3 days": how old a snapshot is, in words. */
export function ageInWords(ms: number): string {
  const min = Math.floor(Math.max(0, ms) / 60_000);
  if (min < 1) return 'less than a minute';
  if (min < 60) return `${min} min`;
  const h = Math.floor(min / 60);
  if (h < 48) return `${h} h ${String(min % 60).padStart(2, '0')} min`;
  return `${Math.floor(h / 24)} days`;
}

/** The data-loss window as of `now`: the snapshot's revision and its age, which grows while the prompt waits. */
export const liveDataLossWindow = (snapshot: NonNullable<RecoveryContext['snapshot']>, now: number): string =>
  `snapshot revision ${snapshot.revision ?? '?'}, taken ${ageInWords(now - snapshot.takenAt)} ago: writes after that point are lost`;

/**
 * The prompt as shown: sentences without internal citations, and the data-loss window the machine wrote when the
 * snapshot was verified replaced by one as of now (the question may wait for many minutes).
 */
export function selectPromptView(
  ctx: Pick<RecoveryContext, 'prompt' | 'snapshot' | 'dataLossWindow'>,
  now: number,
): Prompt | null {
  const p = ctx.prompt;
  if (!p) return null;
  let detail = userText(p.detail);
  if (ctx.snapshot && ctx.dataLossWindow && detail.includes(ctx.dataLossWindow))
    detail = detail.replace(ctx.dataLossWindow, liveDataLossWindow(ctx.snapshot, now));
  return { ...p, question: userText(p.question), detail, ...(p.risk ? { risk: userText(p.risk) } : {}) };
}
