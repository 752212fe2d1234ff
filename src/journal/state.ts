/**
 * state.json: the persisted machine in a versioned envelope, written atomically and fsync'd after every transition
 * (never debounced: a lost write could repeat a destructive step). Reading gives null for a missing, foreign or
 * unreadable file, with the reason, so resume can say one clear sentence.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import writeFileAtomic from 'write-file-atomic';
import { localDiskError, reportLocalDiskFailure } from './local-disk.js';

export const STATE_FILE = 'state.json';
export const STATE_VERSION = 1;

export interface StateEnvelope<S = unknown> {
  v: number;
  kind: 'talos-dr-state';
  /** what started this incident: a real recovery or a drill (with its scenario) */
  mode: 'recover' | 'drill';
  scenario?: string;
  autopilot?: boolean;
  /** the talosconfig context for a recovery */
  context?: string;
  nodes: string[];
  /** a drill's simulated cluster: its first node address (the machine's node addresses depend on it) */
  addressBase?: string;
  savedAt: string;
  snapshot: S;
}

export function writeState(dir: string, envelope: Omit<StateEnvelope, 'v' | 'kind' | 'savedAt'>): void {
  const full: StateEnvelope = {
    v: STATE_VERSION,
    kind: 'talos-dr-state',
    savedAt: new Date().toISOString(),
    ...envelope,
  };
  const path = join(dir, STATE_FILE);
  try {
    writeFileAtomic.sync(path, `${JSON.stringify(full)}\n`, { mode: 0o600, fsync: true });
  } catch (error) {
    throw reportLocalDiskFailure(localDiskError(error, `saving ${STATE_FILE}`, path, dir));
  }
}

export type ReadStateResult = { ok: true; envelope: StateEnvelope } | { ok: false; reason: string };

export function readState(dir: string): ReadStateResult {
  const path = join(dir, STATE_FILE);
  if (!existsSync(path))
    return { ok: false, reason: `${dir} has no ${STATE_FILE}, so there is nothing to resume there` };
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    return { ok: false, reason: `${path} is not readable JSON` };
  }
  const e = parsed as Partial<StateEnvelope> | null;
  if (!e || typeof e !== 'object' || e.kind !== 'talos-dr-state')
    return { ok: false, reason: `${path} was not written by talos-dr` };
  if (e.v !== STATE_VERSION)
    return { ok: false, reason: `${path} was written by another talos-dr version (state version ${String(e.v)})` };
  const damage = shapeDamage(e);
  if (damage) {
    const fresh = e.mode === 'drill' ? 'a new "talos-dr drill"' : 'a new "talos-dr recover"';
    return {
      ok: false,
      reason:
        `${path} is damaged (${damage}), so the procedure cannot be continued from it safely; the journal is the ` +
        `record: "talos-dr report ${dir}" shows what was done and which actions reached the nodes, and ${fresh} ` +
        `reads the cluster afresh`,
    };
  }
  return { ok: true, envelope: e as StateEnvelope };
}

type Kind = 'string' | 'number' | 'boolean' | 'list' | 'object' | 'null';

function kindOf(v: unknown): Kind | 'other' {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'list';
  const t = typeof v;
  return t === 'string' || t === 'number' || t === 'boolean' || t === 'object' ? (t as Kind) : 'other';
}

const NAMES: Record<Kind, string> = {
  string: 'text',
  number: 'a number',
  boolean: 'true or false',
  list: 'a list',
  object: 'an object',
  null: 'null',
};

function expect(value: unknown, where: string, ...kinds: Kind[]): string | null {
  const k = kindOf(value);
  if (k !== 'other' && kinds.includes(k)) return null;
  return value === undefined ? `${where} is missing` : `${where} is not ${kinds.map((x) => NAMES[x]).join(' or ')}`;
}

/**
 * What is wrong with a state.json that parses but is not shaped as talos-dr writes it (the envelope, the machine's
 * persisted snapshot and the context fields every screen and step reads), or null. A file edited by hand or damaged
 * on disk must be said as damaged, never crash resume.
 */
export function shapeDamage(e: Partial<StateEnvelope>): string | null {
  const top =
    (e.mode !== 'recover' && e.mode !== 'drill' ? 'mode is neither recover nor drill' : null) ??
    expect(e.nodes, 'nodes', 'list') ??
    (Array.isArray(e.nodes) && e.nodes.some((n) => typeof n !== 'string')
      ? 'nodes holds something else than names'
      : null) ??
    expect(e.savedAt, 'savedAt', 'string') ??
    (e.scenario !== undefined ? expect(e.scenario, 'scenario', 'string') : null) ??
    (e.context !== undefined ? expect(e.context, 'context', 'string') : null) ??
    (e.addressBase !== undefined ? expect(e.addressBase, 'addressBase', 'string') : null) ??
    expect(e.snapshot, 'snapshot', 'object');
  if (top) return top;
  const snap = e.snapshot as Record<string, unknown>;
  const status = snap.status;
  if (status !== 'active' && status !== 'done' && status !== 'error' && status !== 'stopped')
    return 'snapshot.status is not a machine status';
  const outer =
    expect(snap.value, 'snapshot.value', 'string', 'object') ??
    expect(snap.context, 'snapshot.context', 'object') ??
    (snap.children !== undefined ? expect(snap.children, 'snapshot.children', 'object') : null) ??
    (snap.historyValue !== undefined ? expect(snap.historyValue, 'snapshot.historyValue', 'object') : null);
  if (outer) return outer;
  const c = snap.context as Record<string, unknown>;
  const fields =
    expect(c.nodes, 'snapshot.context.nodes', 'list') ??
    expect(c.steps, 'snapshot.context.steps', 'list') ??
    expect(c.rows, 'snapshot.context.rows', 'object') ??
    expect(c.startedAt, 'snapshot.context.startedAt', 'number') ??
    expect(c.prompt, 'snapshot.context.prompt', 'object', 'null') ??
    (c.outcome !== undefined ? expect(c.outcome, 'snapshot.context.outcome', 'string', 'null') : null);
  if (fields) return fields;
  const steps = c.steps as unknown[];
  for (const [i, s] of steps.entries()) {
    const step = s as Record<string, unknown> | null;
    const bad =
      expect(step, `step ${i + 1}`, 'object') ??
      expect(step?.n, `step ${i + 1}'s number`, 'number') ??
      expect(step?.name, `step ${i + 1}'s name`, 'string') ??
      expect(step?.status, `step ${i + 1}'s status`, 'string');
    if (bad) return bad;
  }
  for (const list of ['warnings', 'followUp', 'guardStops', 'overrides'] as const)
    if (c[list] !== undefined) {
      const bad = expect(c[list], `snapshot.context.${list}`, 'list');
      if (bad) return bad;
    }
  return null;
}
