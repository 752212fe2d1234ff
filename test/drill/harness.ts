/**
 * Runs the recovery machine in-process, with the real Talos client against the simulator, exactly as
 * `talos-dr drill --autopilot` does (same runDrill), but keeps the simulator running afterwards so the tests can ask it
 * what happened (destructive calls, data report, node views).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { startSimulator } from '../../src/sim/index.js';
import type { SimCluster } from '../../src/sim/types.js';
import { createIncidentDir } from '../../src/journal/incident.js';
import { Journal, readJournal, type JournalRecord } from '../../src/journal/journal.js';
import { runDrill } from '../../src/commands/drill.js';
import type { CommandContext } from '../../src/commands/types.js';
import { readState } from '../../src/journal/state.js';
import type { RecoveryContext } from '../../machines/recovery.js';

export const SPEED = 100;

let base = 10 + Math.floor(Math.random() * 200);
/** A loopback range of its own for each run (127.N.M.2…), so runs never collide. */
export function nextAddressBase(): string {
  base = (base + 1) % 250;
  return `127.${base + 1}.${(process.pid % 200) + 1}.2`;
}

export interface DrillRun {
  code: number;
  lines: string[];
  dir: string;
  sim: SimCluster;
  journal: JournalRecord[];
  context: RecoveryContext;
}

export function fakeCtx(lines: string[], signal = new AbortController().signal): CommandContext {
  const stdout = new Writable({
    write(chunk, _enc, cb) {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      cb();
    },
  });
  const stderr = new Writable({ write: (_c, _e, cb) => cb() });
  return { args: [], global: {}, io: { stdout, stderr, stdinIsTTY: false, env: {}, cwd: tmpdir() }, signal };
}

export async function runScenario(scenario: string, opts: { timeLimitMs?: number } = {}): Promise<DrillRun> {
  const dir = join(mkdtempSync(join(tmpdir(), 'talos-dr-drill-')), 'incident');
  const incident = createIncidentDir(dir);
  const addressBase = nextAddressBase();
  const sim = await startSimulator({
    scenario,
    dir: join(dir, 'sim'),
    port: 0,
    addressBase,
    speed: SPEED,
    talosconfigPath: join(dir, 'sim', 'talosconfig'),
  });
  await sim.writeGiven(dir);
  const journal = new Journal(dir);
  const save = () => sim.saveState(join(dir, 'sim-state.json'));
  const lines: string[] = [];
  const code = await runDrill({
    ctx: fakeCtx(lines),
    sim,
    save,
    incident,
    journal,
    scenario,
    autopilot: true,
    speed: SPEED,
    addressBase,
    ...(opts.timeLimitMs ? { timeLimitMs: opts.timeLimitMs } : {}),
  });
  const state = readState(dir);
  if (!state.ok) throw new Error(state.reason);
  const context = (state.envelope.snapshot as { context: RecoveryContext }).context;
  return { code, lines, dir, sim, journal: readJournal(dir), context };
}
