/**
 * `talos-dr drill [--scenario NAME] [--list] [--autopilot] [--dir DIR]`: the procedure against an embedded simulated
 * cluster with injected faults. With --autopilot every prompt gets its recommended answer and each step prints one
 * plain line, then the score and `outcome: …` as the very last line. Without it, the wizard (a terminal is required).
 */
import { parseArgs } from 'node:util';
import { join } from 'node:path';
import type { CommandRun } from './types.js';
import { EXIT, UsageError, UserError } from '../errors.js';
import { createIncidentDir, defaultIncidentDir } from '../journal/incident.js';
import type { Journal } from '../journal/journal.js';
import { lockIncident } from '../journal/lock.js';
import { drillSpeed, freeAddressBase, loadSim, onDrillCluster, requireScenario } from './drill-runtime.js';
import { hasTerminal, refuseWithoutTerminal } from './terminal.js';
import type { SimCluster } from '../sim/types.js';
import type { CommandContext } from './types.js';
import type { IncidentPaths } from '../journal/incident.js';
import type { Snapshot } from 'xstate';
import type { StateEnvelope } from '../journal/state.js';
import type { StartingHandle } from './interactive.js';
import { parseEtcdKind, realEtcdMissing } from '../sim/real-etcd-tools.js';

// The Talos client (grpc-js), the machines and the simulator are loaded after the first frame is on screen: the
// drill shows where the trainee is while they load (PRODUCT.md §5: the first frame within 10× of `node -e 0`).

function parse(args: string[]) {
  try {
    return parseArgs({
      args,
      options: {
        scenario: { type: 'string' },
        list: { type: 'boolean' },
        autopilot: { type: 'boolean' },
        dir: { type: 'string' },
        etcd: { type: 'string' },
      },
      allowPositionals: false,
      strict: true,
    }).values;
  } catch (error) {
    throw new UsageError(
      `${error instanceof Error ? error.message.split('\n')[0] : String(error)}; usage: talos-dr drill [--scenario NAME] [--list] [--autopilot] [--dir DIR] [--etcd model|real].`,
    );
  }
}

export const DRILL_CONTEXT = 'talos-dr-sim';

export interface DrillRunArgs {
  ctx: CommandContext;
  sim: SimCluster;
  save: () => Promise<void>;
  incident: IncidentPaths;
  journal: Journal;
  scenario: string;
  autopilot: boolean;
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

/** Runs (or continues) a drill on a started simulator; shared with `resume`. */
export async function runDrill(a: DrillRunArgs): Promise<number> {
  const [{ loadTalosconfig }, { createTalosClient }, { connectMaintenance }, { runRecovery, timingFor }] =
    await Promise.all([
      import('../talos/talosconfig.js'),
      import('../talos/client.js'),
      import('../talos/maintenance.js'),
      import('./recovery-run.js'),
    ]);
  const config = loadTalosconfig({ talosconfig: a.sim.talosconfigPath }, {});
  const compressed = timingFor(a.speed);
  const timing = a.realEtcd
    ? { ...compressed, verifyTimeoutMs: Math.max(compressed.verifyTimeoutMs, REAL_ETCD_VERIFY_FLOOR_MS) }
    : compressed;
  const limitFloorMs = a.realEtcd ? REAL_ETCD_TIME_LIMIT_FLOOR_MS : 60_000;
  const client = createTalosClient(config, {
    defaultTimeoutMs: Math.max(2000, timing.pollMs * 20),
    connectTimeoutMs: 2000,
  });
  const envelope: Omit<StateEnvelope, 'v' | 'kind' | 'savedAt' | 'snapshot'> = {
    mode: 'drill',
    scenario: a.scenario,
    autopilot: a.autopilot,
    context: a.sim.context,
    nodes: a.sim.nodes,
    addressBase: a.addressBase,
  };
  try {
    return await runRecovery({
      ctx: a.ctx,
      client,
      connectMaintenance: (node) => connectMaintenance(`${node}:${a.sim.port}`, { connectTimeoutMs: 2000 }),
      incident: a.incident,
      journal: a.journal,
      nodes: a.sim.nodes,
      operator: a.autopilot ? 'autopilot' : (a.ctx.io.env.USER ?? 'trainee'),
      timing,
      givenSnapshots: a.sim.scenario.given
        .filter((g) => g.kind === 'snapshot')
        .map((g) => join(a.incident.dir, g.path)),
      envelope,
      ...(a.restore ? { restore: a.restore } : {}),
      contextName: a.sim.context,
      drill: {
        sim: a.sim,
        save: a.save,
        scenario: a.scenario,
        // compressed with the simulator, but never below 60 s: the tool's own polling does not get faster
        timeLimitMs:
          a.timeLimitMs ?? Math.max(limitFloorMs, Math.round((a.sim.scenario.timeLimitSec * 1000) / a.speed)),
      },
      autopilot: a.autopilot,
      headlessAlternative: 'talos-dr drill --autopilot',
    });
  } finally {
    client.close();
  }
}

const run: CommandRun = async (ctx) => {
  const since = Date.now();
  const flags = parse(ctx.args);
  if (flags.list) {
    const { listScenarios } = await loadSim();
    for (const s of listScenarios()) ctx.io.stdout.write(`${s.name.padEnd(20)} ${s.description}\n`);
    return EXIT.ok;
  }
  const etcd = parseEtcdKind(flags.etcd);
  if (!etcd) throw new UsageError(`--etcd ${flags.etcd} is not known; use --etcd model (the default) or --etcd real.`);
  if (etcd === 'real') {
    const missing = realEtcdMissing();
    if (missing) throw new UserError(missing, EXIT.failure);
  }
  const scenario = flags.scenario ?? 'lost-quorum';
  const autopilot = Boolean(flags.autopilot);
  if (!autopilot) refuseWithoutTerminal(ctx, 'talos-dr drill', '"talos-dr drill --autopilot"');
  requireScenario(scenario);
  const incident = createIncidentDir(flags.dir ?? defaultIncidentDir(ctx.io.cwd, DRILL_CONTEXT, new Date()));
  lockIncident(incident.dir, 'drill');

  // The first frame, before the simulator and the client load: q there stops the drill once the wizard is up (it
  // saves the state and names resume), like a signal does.
  const stop = new AbortController();
  const signal = AbortSignal.any([ctx.signal, stop.signal]);
  let screen: StartingHandle | null = null;
  if (!autopilot && hasTerminal(ctx)) {
    const { openStartingScreen } = await import('./interactive.js');
    screen = openStartingScreen({
      context: DRILL_CONTEXT,
      drill: { scenario },
      status: `Starting the drill cluster (${etcd === 'real' ? 'real etcd members' : 'simulated nodes'})`,
      since,
      env: ctx.io.env,
      onQuit: () => stop.abort(),
    });
  }
  const speed = drillSpeed(ctx.io.env);
  const addressBase = freeAddressBase();
  try {
    return await onDrillCluster(
      incident.dir,
      scenario,
      { addressBase, speed, restore: false, etcd },
      async ({ sim, save, journal }) => {
        await sim.writeGiven(incident.dir);
        journal.append({
          kind: 'session',
          what: `drill ${scenario} started${autopilot ? ' (autopilot)' : ''}`,
          by: autopilot ? 'autopilot' : (ctx.io.env.USER ?? 'trainee'),
          data: { scenario, nodes: sim.nodes, addressBase, incident: incident.dir },
        });
        await save();
        screen?.update('Connecting to the drill cluster');
        return runDrill({
          ctx: { ...ctx, signal },
          sim,
          save,
          incident,
          journal,
          scenario,
          autopilot,
          speed,
          addressBase,
          realEtcd: etcd === 'real',
        });
      },
    );
  } finally {
    await screen?.close();
  }
};
export default run;
