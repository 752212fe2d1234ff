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
  const e = parsed as Partial<StateEnvelope>;
  if (e.kind !== 'talos-dr-state') return { ok: false, reason: `${path} was not written by talos-dr` };
  if (e.v !== STATE_VERSION)
    return { ok: false, reason: `${path} was written by another talos-dr version (state version ${String(e.v)})` };
  return { ok: true, envelope: e as StateEnvelope };
}
