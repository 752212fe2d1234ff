/**
 * journal.jsonl: the append-only record of an incident (PRODUCT.md §3). Every line is written and fsync'd before the
 * call returns, so a crash right after an action was sent still leaves its "before" line on disk — which is how a
 * resumed run recognises an interrupted destructive call instead of sending it again.
 * No secrets ever go in (SAFETY rule 10): values that look like keys, certificates or machine configurations are cut.
 */
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { localDiskError, reportLocalDiskFailure } from './local-disk.js';
import { nodeText } from '../text/sanitize.js';

export type JournalKind =
  | 'session'
  | 'step'
  | 'observation'
  | 'decision'
  | 'confirmation'
  | 'override'
  | 'refusal'
  | 'warning'
  | 'action'
  | 'outcome';

export interface JournalRecord {
  /** ISO time */
  t: string;
  kind: JournalKind;
  /** actions: before the call is sent / after its answer */
  phase?: 'before' | 'after';
  /** actions: stable id of the operation across a resume (e.g. "reset:127.0.0.3:0") */
  opId?: string;
  step?: string;
  node?: string | null;
  what: string;
  /** who confirmed / answered: the OS user, or "autopilot" */
  by?: string;
  result?: string;
  ok?: boolean;
  data?: Record<string, unknown>;
}

export const JOURNAL_FILE = 'journal.jsonl';

const SECRET_PATTERNS = [
  /-----BEGIN [A-Z0-9 ]*-----/,
  /\bmachine:\s*\n/,
  /"?(key|crt|token|secret)"?\s*[:=]\s*\S{16,}/i,
];
const SECRET_FIELDS = /^(key|crt|ca|token|secret|password|config|configYaml|data64)$/i;

/** Removes anything that could be a secret: PEM blocks, machine-config YAML, long values under secret-ish names. */
export function scrub(value: unknown, field = ''): unknown {
  if (typeof value === 'string') {
    if (SECRET_FIELDS.test(field) && value.length > 0) return '[withheld]';
    if (SECRET_PATTERNS.some((p) => p.test(value))) return '[withheld: looked like a secret]';
    // node-controlled text (errors, names) reaches the journal: no escape sequences, one line, bounded
    return nodeText(value, 2000);
  }
  if (Array.isArray(value)) return value.map((v) => scrub(v));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = scrub(v, k);
    return out;
  }
  if (typeof value === 'bigint') return value.toString();
  return value;
}

export class Journal {
  readonly path: string;
  private fd: number | null = null;

  constructor(readonly dir: string) {
    this.path = join(dir, JOURNAL_FILE);
  }

  /** Appends one record and fsyncs it before returning. */
  append(record: Omit<JournalRecord, 't'> & { t?: string }): JournalRecord {
    const full = scrub({ t: record.t ?? new Date().toISOString(), ...record }) as JournalRecord;
    try {
      this.fd ??= openSync(this.path, 'a', 0o600);
      writeSync(this.fd, `${JSON.stringify(full)}\n`);
      fsyncSync(this.fd);
    } catch (error) {
      // the record of the incident cannot be kept: stop, and never take this for a node's failure
      throw reportLocalDiskFailure(localDiskError(error, 'writing the journal', this.path, this.dir));
    }
    return full;
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}

/** Every record of a journal, oldest first. A torn last line (crash mid-write) is skipped, not fatal. */
export function readJournal(dir: string): JournalRecord[] {
  const path = join(dir, JOURNAL_FILE);
  if (!existsSync(path)) return [];
  const records: JournalRecord[] = [];
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    try {
      records.push(JSON.parse(line) as JournalRecord);
    } catch {
      // a line cut by a crash mid-append: everything before it is intact
    }
  }
  return records;
}

/** The state of one operation according to the journal: never sent, sent and answered, or sent with no answer. */
export type LedgerState = 'new' | 'done' | 'interrupted';

export function ledgerState(records: readonly JournalRecord[], opId: string): LedgerState {
  let state: LedgerState = 'new';
  for (const r of records) {
    if (r.kind !== 'action' || r.opId !== opId) continue;
    if (r.phase === 'before') state = 'interrupted';
    else if (r.phase === 'after' && r.ok) state = 'done';
    else if (r.phase === 'after') state = 'new'; // failed: nothing happened that needs reconciling
  }
  return state;
}
