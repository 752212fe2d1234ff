/**
 * A drill's runtime: starting (or restoring) the simulated cluster inside the incident folder, saving
 * `sim-state.json` after every step, every destructive call and on exit, and running the procedure against it with
 * the real Talos client (`drill` and `resume` of a drill share it).
 */
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Snapshot } from 'xstate';
import type { ListScenarios, SimCluster, StartOptions, StartSimulator } from '../sim/types.js';
import { UserError, UsageError } from '../errors.js';
import { SIM_STATE_FILE } from '../journal/incident.js';
import { Journal } from '../journal/journal.js';
import { listScenarioNames } from '../paths.js';
import type { IncidentPaths } from '../journal/incident.js';
import type { StateEnvelope } from '../journal/state.js';
import type { Screen } from './run.js';
import writeFileAtomic from 'write-file-atomic';
import type { RecoveryContext } from '../../machines/recovery-types.js';
import { readState } from '../journal/state.js';
import { writeReport } from '../journal/report.js';
import { drillScore, scoreRecord, verdictPrinted, type DrillScore } from './outcome.js';

/** The drill's score beside the journal, read by report.md. */
const SCORE_FILE = 'score.json';

interface SimModule {
  startSimulator: StartSimulator;
  listScenarios: ListScenarios;
}

export async function loadSim(): Promise<SimModule> {
  try {
    // imported when a drill starts, never with the command: `--help` must not load the simulator
    return (await import('../sim/index.js')) as SimModule;
  } catch (error) {
    throw new UserError(
      `The simulated cluster is not available in this build (${error instanceof Error ? error.message.split('\n')[0] : String(error)}); drills need it.`,
      1,
    );
  }
}

/** Time compression for the simulator and the drill's time limit (tests and impatient trainers). */
export function drillSpeed(env: NodeJS.ProcessEnv): number {
  const v = Number(env.TALOS_DR_DRILL_SPEED ?? '1');
  return Number.isFinite(v) && v >= 1 ? v : 1;
}

/**
 * Runs `body` on a started drill cluster with the incident's journal open, then saves the cluster's state, stops it
 * and closes the journal however `body` ended: the shell shared by `drill` and `resume`.
 */
export async function onDrillCluster<T>(
  incidentDir: string,
  scenario: string,
  opts: Parameters<typeof startDrillSim>[2],
  body: (drill: StartedDrill & { journal: Journal }) => Promise<T>,
): Promise<T> {
  const { sim, save } = await startDrillSim(incidentDir, scenario, opts);
  const journal = new Journal(incidentDir);
  try {
    return await body({ sim, save, journal });
  } finally {
    await save();
    await sim.stop();
    journal.close();
  }
}

/** A loopback address range unlikely to be in use by another simulator: 127.X.Y.2 upwards. */
export function freeAddressBase(): string {
  const x = 1 + Math.floor(Math.random() * 250);
  const y = Math.floor(Math.random() * 250);
  return `127.${x}.${y}.2`;
}

/** A talosconfig path in `dir/sim` that does not exist yet (the simulator refuses to overwrite one). */
function freshTalosconfigPath(simDir: string): string {
  const used = existsSync(simDir) ? readdirSync(simDir).filter((f) => f.startsWith('talosconfig')).length : 0;
  return join(simDir, used === 0 ? 'talosconfig' : `talosconfig-${used + 1}`);
}

export interface StartedDrill {
  sim: SimCluster;
  save: () => Promise<void>;
}

export async function startDrillSim(
  incidentDir: string,
  scenario: string,
  opts: { addressBase: string; speed: number; restore: boolean; etcd?: 'model' | 'real' },
): Promise<StartedDrill> {
  const { startSimulator } = await loadSim();
  const simDir = join(incidentDir, 'sim');
  mkdirSync(simDir, { recursive: true, mode: 0o700 });
  const statePath = join(incidentDir, SIM_STATE_FILE);
  const start: StartOptions = {
    scenario,
    dir: simDir,
    port: 0,
    addressBase: opts.addressBase,
    speed: opts.speed,
    talosconfigPath: freshTalosconfigPath(simDir),
    ...(opts.etcd ? { etcd: opts.etcd } : {}),
    ...(opts.restore && existsSync(statePath) ? { restoreFrom: statePath } : {}),
  };
  let sim: SimCluster;
  try {
    sim = await startSimulator(start);
  } catch (error) {
    // the simulator's own one-sentence refusals (real etcd missing or failing, a saved state that cannot resume)
    if (error instanceof Error && error.constructor.name === 'SimStartError') throw new UserError(error.message, 1);
    throw error;
  }
  let saving: Promise<void> = Promise.resolve();
  // saves are chained: two overlapping writes of the same file would race
  const save = () => (saving = saving.then(() => sim.saveState(statePath)).catch(() => undefined));
  return { sim, save };
}

export function requireScenario(name: string): void {
  const names = listScenarioNames();
  if (!names.includes(name) && !name.endsWith('.yaml') && !name.endsWith('.yml'))
    throw new UsageError(`There is no scenario "${name}"; "talos-dr drill --list" shows them (${names.join(', ')}).`);
}

export interface DrillRunArgs {
  sim: SimCluster;
  save: () => Promise<void>;
  incident: IncidentPaths;
  journal: Journal;
  scenario: string;
  /** the interactive screen; without one the drill runs on autopilot */
  screen?: Screen;
  /** who answers: the trainee's name (autopilot answers as "autopilot") */
  operator: string;
  print: (line: string) => void;
  signal: AbortSignal;
  speed: number;
  addressBase: string;
  restore?: Snapshot<unknown>;
  /** overrides the scenario's time limit (tests) */
  timeLimitMs?: number;
  /** real etcd members behind the nodes: they do not run on the simulator's compressed clock */
  realEtcd?: boolean;
}

/**
 * Real etcd members join, catch up and pass their health check in real seconds whatever the simulator's speed, so
 * the waits for them (and the drill's limit) keep a real-time floor; the built-in model follows the compressed clock.
 */
const REAL_ETCD_VERIFY_FLOOR_MS = 90_000;
const REAL_ETCD_TIME_LIMIT_FLOOR_MS = 240_000;
/**
 * A real member's EtcdStatus through the simulator first re-reads the member (etcd's status and member list, each
 * allowed 1.5 s: src/sim/real-etcd-calls.ts QUERY_TIMEOUT_MS) and answers after it; on a loaded machine that took 1.8 s and
 * 1.9 s (measured during lost-quorum drills), which the compressed 1 s read counted as "did not answer in time". A
 * real etcd gets the status time a real cluster gets (deps.ts statusTimeout's 4 s); the model keeps its fast reads.
 */
const REAL_ETCD_STATUS_TIMEOUT_MS = 4000;

/**
 * The drill's score of the run as state.json last saved it; null when the state cannot be read or the drill was
 * stopped to be resumed (its verdict, and the right answer with it, wait for the end).
 */
function scoreOfSaved(a: Pick<DrillRunArgs, 'incident' | 'sim'>): DrillScore | null {
  const state = readState(a.incident.dir);
  const context = state.ok ? (state.envelope.snapshot as { context?: RecoveryContext } | null)?.context : undefined;
  if (!context || context.outcome === null || context.outcome === 'stopped-by-user') return null;
  return drillScore(context, a.sim);
}

/**
 * Autopilot's lines, with the trainer's verdict just above the score line (the run prints the score, then the outcome
 * as the very last line): the machine's state is saved on every transition, so at the score it holds the end.
 */
function withVerdict(a: DrillRunArgs): (line: string) => void {
  return (line) => {
    const score = line.startsWith('score: ') ? scoreOfSaved(a) : null;
    if (score) for (const v of verdictPrinted(score.verdict)) a.print(v);
    a.print(line);
  };
}

/** score.json beside the journal, and report.md again with it: the drill's score and right answer in the report. */
function recordScore(a: DrillRunArgs): void {
  const score = scoreOfSaved(a);
  if (!score) return;
  try {
    writeFileAtomic.sync(
      join(a.incident.dir, SCORE_FILE),
      `${JSON.stringify(scoreRecord(a.sim.scenario.name, score), null, 2)}\n`,
      {
        mode: 0o600,
      },
    );
    writeReport(a.incident.dir);
  } catch {
    // the journal is the record; `talos-dr report` renders the report again later
  }
}

/**
 * The drill's time limit on the wall clock (the briefing and the header show it, autopilot gives up at it): the
 * scenario's, compressed with the simulator, but never below 60 s (the tool's own polling does not get faster), nor
 * below a real etcd's floor.
 */
export function drillTimeLimitMs(scenarioSec: number, speed: number, realEtcd: boolean): number {
  return Math.max(realEtcd ? REAL_ETCD_TIME_LIMIT_FLOOR_MS : 60_000, Math.round((scenarioSec * 1000) / speed));
}

/** Runs (or continues) a drill on a started simulator; shared by `drill` and `resume`. */
export async function runDrill(a: DrillRunArgs): Promise<number> {
  // The Talos client (grpc-js) and the machines load here, after the first frame is on screen.
  const [{ loadTalosconfig }, { createTalosClient }, { connectMaintenance }, { runRecovery, timingFor }] =
    await Promise.all([
      import('../talos/talosconfig.js'),
      import('../talos/client.js'),
      import('../talos/maintenance.js'),
      import('./run.js'),
    ]);
  const autopilot = !a.screen;
  const config = loadTalosconfig({ talosconfig: a.sim.talosconfigPath }, {});
  const compressed = timingFor(a.speed);
  const timing = a.realEtcd
    ? { ...compressed, verifyTimeoutMs: Math.max(compressed.verifyTimeoutMs, REAL_ETCD_VERIFY_FLOOR_MS) }
    : compressed;
  const client = createTalosClient(config, {
    defaultTimeoutMs: Math.max(2000, timing.pollMs * 20),
    connectTimeoutMs: 2000,
  });
  const envelope: Omit<StateEnvelope, 'v' | 'kind' | 'savedAt' | 'snapshot'> = {
    mode: 'drill',
    scenario: a.scenario,
    autopilot,
    context: a.sim.context,
    nodes: a.sim.nodes,
    addressBase: a.addressBase,
  };
  try {
    return await runRecovery({
      client,
      connectMaintenance: (node) => connectMaintenance(`${node}:${a.sim.port}`, { connectTimeoutMs: 2000 }),
      incident: a.incident,
      journal: a.journal,
      nodes: a.sim.nodes,
      operator: autopilot ? 'autopilot' : a.operator,
      timing,
      givenSnapshots: a.sim.scenario.given
        .filter((g) => g.kind === 'snapshot')
        .map((g) => join(a.incident.dir, g.path)),
      envelope,
      ...(a.restore ? { restore: a.restore } : {}),
      drill: {
        sim: a.sim,
        save: a.save,
        scenario: a.scenario,
        timeLimitMs: a.timeLimitMs ?? drillTimeLimitMs(a.sim.scenario.timeLimitSec, a.speed, Boolean(a.realEtcd)),
      },
      ...(a.screen ? { screen: a.screen } : {}),
      print: autopilot ? withVerdict(a) : a.print,
      signal: a.signal,
      ...(a.realEtcd ? { statusTimeoutMs: REAL_ETCD_STATUS_TIMEOUT_MS } : {}),
    });
  } finally {
    recordScore(a);
    client.close();
  }
}
