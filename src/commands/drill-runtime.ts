/**
 * What `drill` and `resume` share to run the procedure against an embedded simulated cluster: starting (or
 * restoring) the simulator inside the incident folder, the client for it, saving `sim-state.json` after every step,
 * every destructive call and on exit, and the drill's score.
 */
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { ListScenarios, SimCluster, StartOptions, StartSimulator } from '../sim/types.js';
import { UserError, UsageError } from '../errors.js';
import type { RecoveryContext } from '../../machines/recovery.js';
import { SIM_STATE_FILE } from '../journal/incident.js';
import { Journal } from '../journal/journal.js';
import { formatDuration } from '../journal/report.js';
import { listScenarioNames } from '../paths.js';

// Imported by name at run time: `--help` must never load the simulator.
const SIM_MODULE = '../sim/index.js';

interface SimModule {
  startSimulator: StartSimulator;
  listScenarios: ListScenarios;
}

export async function loadSim(): Promise<SimModule> {
  try {
    return (await import(SIM_MODULE)) as SimModule;
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

export interface DrillScore {
  timeToRecover: string;
  dataLost: string;
  mistakesStopped: number;
}

export function drillScore(context: RecoveryContext, sim: SimCluster, endedAt: number): DrillScore {
  const data = sim.dataReport();
  const dataLost =
    data.restoredRevision === null
      ? 'nothing restored'
      : data.lostRevisions === 0
        ? 'none'
        : `${data.lostRevisions} revisions (last write ${data.lastWriteRevision}, restored ${data.restoredRevision})`;
  // with --etcd real the revisions and keys are what the etcd members answered, not the model's bookkeeping
  const checked =
    data.etcd === 'real' && data.restoredRevision !== null
      ? data.keysMatchSnapshot
        ? ' (data checked on real etcd: the restored keys equal the snapshot)'
        : ' (data checked on real etcd: the restored keys DIFFER from the snapshot)'
      : '';
  return {
    timeToRecover: context.outcome === 'recovered' ? formatDuration(endedAt - context.startedAt) : 'not recovered',
    dataLost: dataLost + checked,
    mistakesStopped: context.guardStops.length,
  };
}

export function scoreLine(score: DrillScore): string {
  return `score: time to recover ${score.timeToRecover}; data lost ${score.dataLost}; mistakes the guards stopped ${score.mistakesStopped}`;
}
