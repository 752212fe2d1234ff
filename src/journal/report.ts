/**
 * report.md: the incident's timeline rendered from journal.jsonl (and state.json for the snapshot details): when the
 * outage was assessed, each step with its duration, every confirmation and override, the snapshot's revision and age
 * (the data-loss window), total time to recovery, and the outcome. Rendered from the journal alone, so it can be
 * rebuilt from any incident folder, even one whose run was killed.
 */
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import writeFileAtomic from 'write-file-atomic';
import { readJournal, type JournalRecord } from './journal.js';
import { REPORT_FILE } from './incident.js';
import { nodeText, nodeTextDeep } from '../text/sanitize.js';
import { timeToRecoverMs } from '../../machines/decisions.js';
import { FOLLOW_UP } from '../../machines/recovery/context.js';
import { readState } from './state.js';
import { findPackageRoot } from '../paths.js';

export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

/**
 * The time-to-recover figure in words, the same on the final screen, in the drill's score and in this report; a right
 * call that needed no recovery (waiting for a member that came back, a right stop) is "none needed", not "not recovered".
 */
export function timeToRecoverText(ms: number | null, rightCall: boolean): string {
  if (ms !== null) return formatDuration(ms);
  return rightCall ? 'none needed' : 'not recovered';
}

interface StepSpan {
  step: string;
  n: number;
  start: number;
  end: number | null;
  status: string;
  result: string;
}

function stepSpans(records: readonly JournalRecord[]): StepSpan[] {
  const spans: StepSpan[] = [];
  for (const r of records) {
    if (r.kind !== 'step' || !r.step) continue;
    const m = /^step (\d+) (\w+)/.exec(r.what);
    if (!m) continue;
    const n = Number(m[1]);
    const verb = m[2] as string;
    const t = Date.parse(r.t);
    if (verb === 'started') spans.push({ step: r.step, n, start: t, end: null, status: 'running', result: '' });
    else {
      const open = [...spans].reverse().find((s) => s.n === n && s.end === null);
      if (open) Object.assign(open, { end: t, status: verb, result: r.result ?? '' });
      else spans.push({ step: r.step, n, start: t, end: t, status: verb, result: r.result ?? '' });
    }
  }
  return spans;
}

const cell = (s: string): string => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
const time = (iso: string | number): string =>
  new Date(iso)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, ' UTC');

export function renderReport(dir: string, given: readonly JournalRecord[] = readJournal(dir)): string {
  // a journal from an older version or edited by hand: whatever it says is made safe to print again
  const records = given.map((r) => nodeTextDeep(r, 2000) as JournalRecord);
  const lines: string[] = [];
  const session = records.find((r) => r.kind === 'session');
  const outcome = [...records].reverse().find((r) => r.kind === 'outcome');
  const first = records[0];
  const last = records.at(-1);
  lines.push(`# talos-dr incident report`, '');
  lines.push(`- Folder: \`${dir}\``);
  lines.push(...whereFrom(dir));
  if (session) lines.push(`- Started: ${time(session.t)} — ${session.what}${session.by ? ` (by ${session.by})` : ''}`);
  const assessed = records.find((r) => r.kind === 'decision' && r.what.startsWith('quorum verdict'));
  if (assessed) lines.push(`- Outage assessed: ${time(assessed.t)} — ${assessed.what}: ${assessed.result ?? ''}`);
  const snap = [...records]
    .reverse()
    .find((r) => r.kind === 'observation' && r.what.startsWith('snapshot ') && r.result?.startsWith('usable'));
  if (snap?.data) {
    const takenAt = typeof snap.data.takenAt === 'string' ? Date.parse(snap.data.takenAt) : NaN;
    const age = Number.isNaN(takenAt)
      ? 'unknown age'
      : `${formatDuration(Date.parse(snap.t) - takenAt)} old when chosen`;
    lines.push(
      `- Snapshot: \`${String(snap.data.file)}\` — revision ${String(snap.data.revision)}, ${String(snap.data.totalKeys)} keys, ${age} (data-loss window: writes after revision ${String(snap.data.revision)})`,
    );
    lines.push(`- Snapshot sha256: \`${String(snap.data.sha256)}\``);
  }
  if (outcome && first) {
    const total = Date.parse(outcome.t) - Date.parse(first.t);
    lines.push(`- Outcome: **${outcome.result ?? ''}** at ${time(outcome.t)}`);
    // the figure the screen and the drill score give: from the assessment to the verified end, by the machine's clock
    const ttr = recoveredIn(dir);
    if (ttr !== null)
      lines.push(`- Time to recover: ${formatDuration(ttr)} (from the assessment to the verified cluster)`);
    lines.push(`- Total time: ${formatDuration(total)}`);
  } else if (last) {
    lines.push(`- Outcome: not reached yet (last entry ${time(last.t)}); continue with \`talos-dr resume ${dir}\``);
  }
  const spans = stepSpans(records);
  lines.push(...timeline(records, spans, session, outcome));
  lines.push(
    '',
    '## Steps',
    '',
    '| step | started | duration | status | result | machine | waiting for a person |',
    '|---|---|---|---|---|---|---|',
  );
  for (const s of spans) {
    const waited = s.end === null ? 0 : personWaitMs(records, s.start, s.end);
    lines.push(
      `| ${s.n}. ${cell(s.step)} | ${time(s.start)} | ${s.end === null ? 'interrupted' : formatDuration(s.end - s.start)} | ${s.status} | ${cell(s.result)} | ${s.end === null ? '—' : formatDuration(s.end - s.start - waited)} | ${s.end === null ? '—' : formatDuration(waited)} |`,
    );
  }
  const confirmations = records.filter((r) => r.kind === 'confirmation' || r.kind === 'override');
  lines.push('', '## Confirmations and overrides', '');
  if (!confirmations.length) lines.push('None.');
  for (const r of confirmations)
    lines.push(
      `- ${time(r.t)} — ${r.kind === 'override' ? `**override** of ${r.what}, reason: "${r.result ?? ''}"` : `${r.what}${r.node ? ` [${r.node}]` : ''} → ${r.result ?? ''}`} (by ${r.by ?? 'unknown'})`,
    );
  const actions = records.filter((r) => r.kind === 'action' && r.phase === 'after');
  lines.push('', '## Actions sent to the cluster', '');
  if (!actions.length) lines.push('None.');
  for (const r of actions)
    lines.push(
      `- ${time(r.t)} — ${r.what}${r.node ? ` → ${r.node}` : ''}: ${r.ok ? 'ok' : 'failed'}${r.result ? ` (${cell(r.result)})` : ''}`,
    );
  const notes = records.filter((r) => r.kind === 'warning' || r.kind === 'refusal');
  if (notes.length) {
    lines.push('', '## Warnings and refusals', '');
    for (const r of notes)
      lines.push(`- ${time(r.t)} — ${r.kind === 'refusal' ? `refused (${r.what}): ` : ''}${r.result ?? r.what}`);
  }
  if (outcome?.result === 'recovered') {
    // the same standing follow-ups as the final screen; step 10's own (what is still wrong) are among the warnings
    lines.push('', '## Follow-up', '');
    for (const line of FOLLOW_UP) lines.push(`- ${line}`);
  }
  lines.push(...finalNodes(dir));
  const score = join(dir, 'score.json');
  if (existsSync(score)) {
    try {
      const s = JSON.parse(readFileSync(score, 'utf8')) as Record<string, unknown>;
      lines.push('', '## Drill score', '');
      for (const [k, v] of Object.entries(s)) lines.push(`- ${nodeText(k, 100)}: ${nodeText(v, 500)}`);
    } catch {
      // a score that cannot be read is left out of the report, never fatal
    }
  }
  return `${lines.join('\n')}\n`;
}

/**
 * How long the answers inside [start, end] waited for a person: each confirmation and override is journalled with
 * the time its question stood on screen (src/wizard/session.ts). The rest of a step's time is the machine's.
 */
function personWaitMs(records: readonly JournalRecord[], start: number, end: number): number {
  let sum = 0;
  for (const r of records) {
    if (r.kind !== 'confirmation' && r.kind !== 'override') continue;
    const t = Date.parse(r.t);
    const waited = r.data?.waitedMs;
    if (t >= start && t <= end && typeof waited === 'number' && waited > 0) sum += waited;
  }
  return Math.min(sum, end - start);
}

/** The milestones of a recovery in the order a review reads them, each with the time since the one before. */
const MILESTONES: readonly { label: string; step: string; at: 'start' | 'end' }[] = [
  { label: 'assessment started', step: 'assess', at: 'start' },
  { label: 'outage assessed', step: 'assess', at: 'end' },
  { label: 'snapshot verified', step: 'snapshot', at: 'end' },
  { label: 'restored (bootstrap answered)', step: 'bootstrap', at: 'end' },
  { label: 'healthy (verified)', step: 'verify', at: 'end' },
];

/** Detection → assessment → snapshot → restore → healthy, with durations; milestones a run never reached are left out. */
function timeline(
  records: readonly JournalRecord[],
  spans: readonly StepSpan[],
  session: JournalRecord | undefined,
  outcome: JournalRecord | undefined,
): string[] {
  const points: { label: string; t: number }[] = [];
  if (session) points.push({ label: 'the tool started (detection)', t: Date.parse(session.t) });
  for (const m of MILESTONES) {
    const done = spans.filter(
      (s) => s.step === m.step && (m.at === 'start' || (s.end !== null && s.status === 'done')),
    );
    const span = m.at === 'start' ? done[0] : done.at(-1);
    const t = span ? (m.at === 'start' ? span.start : span.end) : null;
    if (t !== null && t !== undefined) points.push({ label: m.label, t });
  }
  // stops and resumes: a session that was stopped (q, a signal) and continued later
  for (const r of records) {
    if (r.kind === 'session' && r !== session)
      points.push({ label: `${r.what}${r.by ? ` (by ${r.by})` : ''}`, t: Date.parse(r.t) });
    if (r.kind === 'confirmation' && r.what === 'stop')
      points.push({ label: `stopped${r.by ? ` by ${r.by}` : ''}`, t: Date.parse(r.t) });
  }
  if (outcome) points.push({ label: `ended: ${outcome.result ?? ''}`, t: Date.parse(outcome.t) });
  if (points.length < 2) return [];
  points.sort((a, b) => a.t - b.t);
  const out = ['', '## Timeline', ''];
  points.forEach((p, i) => {
    const prev = points[i - 1];
    out.push(`- ${time(p.t)} — ${p.label}${prev ? ` (+${formatDuration(p.t - prev.t)})` : ''}`);
  });
  return out;
}

/** The context saved by the machine (state.json), or null when there is none or it cannot be read. */
function savedContext(dir: string): SavedContext | null {
  const state = readState(dir);
  if (!state.ok) return null;
  const ctx = (state.envelope.snapshot as { context?: SavedContext } | null)?.context;
  return ctx && typeof ctx === 'object' ? ctx : null;
}

interface SavedContext {
  rows?: Record<
    string,
    {
      node: string;
      hostname: string | null;
      reachable: boolean;
      etcdService: string | null;
      healthy: boolean | null;
      raftAppliedIndex: string | null;
    }
  >;
  observations?: { node: string; members?: { hostname?: string; isLearner?: boolean }[] | null }[];
  excluded?: string[];
}

/** The tool's version from its package.json ("unknown" when it cannot be read). */
function toolVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(join(findPackageRoot(), 'package.json'), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}

/** What ran against what: the tool's version, the mode (a drill and its scenario) and context, the nodes. */
function whereFrom(dir: string): string[] {
  const state = readState(dir);
  const out = [`- Tool: talos-dr ${toolVersion()}`];
  if (!state.ok) return out;
  const e = state.envelope;
  const mode =
    e.mode === 'drill'
      ? `drill of scenario ${e.scenario ?? 'unknown'}${e.autopilot ? ' (autopilot)' : ''}`
      : 'recovery';
  out.push(`- ${mode}; context \`${e.context ?? 'unknown'}\`; control-plane nodes ${e.nodes.join(', ')}`);
  return out;
}

/** Each node as the machine last read it, with the member list it gave: the state the review starts from. */
function finalNodes(dir: string): string[] {
  const ctx = savedContext(dir);
  const rows = Object.values(ctx?.rows ?? {});
  if (rows.length === 0) return [];
  const out = [
    '',
    '## Final state of the nodes',
    '',
    '| node | host | answers | etcd | healthy | applied index | members it lists |',
    '|---|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    const members = ctx?.observations?.find((o) => o.node === r.node)?.members;
    const list = members
      ? members.map((m) => `${m.hostname || '(unnamed)'}${m.isLearner ? ' (learner)' : ''}`).join(', ')
      : '—';
    const left = ctx?.excluded?.includes(r.node) ? ' (left out)' : '';
    out.push(
      `| ${cell(r.node)}${left} | ${cell(r.hostname ?? '—')} | ${r.reachable ? 'yes' : 'no'} | ${cell(r.etcdService ?? '—')} | ${r.healthy === null ? '—' : r.healthy ? 'yes' : 'no'} | ${cell(r.raftAppliedIndex ?? '—')} | ${cell(list)} |`,
    );
  }
  return out;
}

/** The machine's time to recover from state.json, or null (not recovered, or no readable state). */
function recoveredIn(dir: string): number | null {
  const state = readState(dir);
  if (!state.ok) return null;
  const ctx = (state.envelope.snapshot as { context?: Parameters<typeof timeToRecoverMs>[0] } | null)?.context;
  if (!ctx || !Array.isArray(ctx.steps)) return null;
  try {
    return timeToRecoverMs(ctx);
  } catch {
    return null;
  }
}

/** Renders and writes report.md (the tool's own file: rewritten atomically). */
export function writeReport(dir: string): string {
  const text = renderReport(dir);
  writeFileAtomic.sync(join(dir, REPORT_FILE), text, { mode: 0o600, fsync: true });
  return text;
}
