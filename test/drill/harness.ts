/**
 * Runs the recovery machine in-process, with the real Talos client against the simulator, exactly as
 * `talos-dr drill --autopilot` does (same runDrill), but keeps the simulator running afterwards so the tests can ask it
 * what happened (destructive calls, data report, node views).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSimulator } from '../../src/sim/index.js';
import type { SimCluster } from '../../src/sim/types.js';
import { createIncidentDir } from '../../src/journal/incident.js';
import { Journal, readJournal, type JournalRecord } from '../../src/journal/journal.js';
import { runDrill } from '../../src/wizard/drill.js';
import { readState } from '../../src/journal/state.js';
import type { RecoveryContext } from '../../machines/recovery.js';
import type { Snapshot } from 'xstate';
import { loadTalosconfig } from '../../src/talos/talosconfig.js';
import { createTalosClient } from '../../src/talos/client.js';
import type { TalosClient } from '../../src/talos/types.js';
import { connectMaintenance } from '../../src/talos/maintenance.js';
import { startSession, type Session } from '../../src/wizard/session.js';
import { timingFor } from '../../src/wizard/run.js';
import type { IncidentPaths } from '../../src/journal/incident.js';

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
    operator: 'autopilot',
    print: (line) => lines.push(line),
    signal: new AbortController().signal,
    sim,
    save,
    incident,
    journal,
    scenario,
    speed: SPEED,
    addressBase,
    ...(opts.timeLimitMs ? { timeLimitMs: opts.timeLimitMs } : {}),
  });
  const state = readState(dir);
  if (!state.ok) throw new Error(state.reason);
  const context = (state.envelope.snapshot as { context: RecoveryContext }).context;
  return { code, lines, dir, sim, journal: readJournal(dir), context };
}

/** A simulated cluster with an incident folder, a client and a journal: what a session needs, for driving by hand. */
export interface Ground {
  sim: SimCluster;
  client: TalosClient;
  incident: IncidentPaths;
  journal: Journal;
  operator: string;
}

const grounds: (() => Promise<void>)[] = [];

/** Stops every session, client and simulator started by startGround / startSessionOn (use in afterAll). */
export async function closeGrounds(): Promise<void> {
  for (const close of grounds.splice(0).reverse()) await close();
}

export async function startGround(scenario: string, operator = 'tester'): Promise<Ground> {
  const dir = join(mkdtempSync(join(tmpdir(), 'talos-dr-ground-')), 'incident');
  const incident = createIncidentDir(dir);
  const sim = await startSimulator({
    scenario,
    dir: join(dir, 'sim'),
    port: 0,
    addressBase: nextAddressBase(),
    speed: SPEED,
    talosconfigPath: join(dir, 'sim', 'talosconfig'),
  });
  await sim.writeGiven(dir);
  const client = createTalosClient(loadTalosconfig({ talosconfig: sim.talosconfigPath }, {}), {
    defaultTimeoutMs: 2000,
    connectTimeoutMs: 2000,
  });
  const journal = new Journal(dir);
  grounds.push(async () => {
    client.close();
    journal.close();
    await sim.stop();
  });
  return { sim, client, incident, journal, operator };
}

/** A recovery session on the ground, as `drill` runs one (optionally continuing a persisted snapshot, as `resume`). */
export function startSessionOn(g: Ground, restore?: Snapshot<unknown>): Session {
  const session = startSession({
    deps: {
      client: g.client,
      connectMaintenance: (node) => connectMaintenance(`${node}:${g.sim.port}`, { connectTimeoutMs: 2000 }),
      incident: g.incident,
      journal: g.journal,
      operator: g.operator,
      statusTimeoutMs: 1000,
    },
    input: {
      nodes: g.sim.nodes,
      operator: g.operator,
      mode: 'drill',
      timing: timingFor(SPEED),
      givenSnapshots: g.sim.scenario.given
        .filter((x) => x.kind === 'snapshot')
        .map((x) => join(g.incident.dir, x.path)),
    },
    envelope: { mode: 'drill', nodes: g.sim.nodes },
    ...(restore ? { restore } : {}),
  });
  grounds.push(async () => session.stop());
  return session;
}
