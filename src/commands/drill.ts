/**
 * `talos-dr drill [--scenario NAME] [--list] [--autopilot] [--dir DIR]`: the procedure against an embedded simulated
 * cluster with injected faults. With --autopilot every prompt gets its recommended answer and each step prints one
 * plain line, then the score and `outcome: …` as the very last line. Without it, the wizard (a terminal is required).
 */
import { parseArgs } from 'node:util';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import type { CommandRun } from './types.js';
import { EXIT, UsageError, UserError } from '../errors.js';
import { createIncidentDir, defaultIncidentDir } from '../journal/incident.js';
import { lockIncident } from '../journal/lock.js';
import {
  drillSpeed,
  drillTimeLimitMs,
  freeAddressBase,
  loadSim,
  onDrillCluster,
  requireScenario,
  runDrill,
} from '../wizard/drill.js';
import { hasTerminal, refuseWithoutTerminal } from './terminal.js';
import type { CommandContext } from './types.js';
import type { StartingHandle } from './interactive.js';
import type { Screen } from '../wizard/run.js';
import { parseEtcdKind, realEtcdMissing } from '../sim/real-etcd-tools.js';
import type { ScenarioInfo, SimCluster } from '../sim/types.js';
import type { BriefingView } from '../../components/view-model.js';
import type { RecoveryContext } from '../../machines/recovery-types.js';

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

/**
 * Where a drill's incident folders go without --dir: never the current folder (run from the source checkout, a drill
 * would litter it), but $XDG_STATE_HOME/talos-dr when set, else the OS temp folder (talos-dr-drills-UID). Named on
 * screen when the drill starts.
 */
export function drillHome(env: NodeJS.ProcessEnv): string {
  const state = env.XDG_STATE_HOME;
  if (state && isAbsolute(state)) return join(state, 'talos-dr');
  return join(tmpdir(), `talos-dr-drills-${process.getuid?.() ?? 'user'}`);
}

/** Who a drill journals as answering, when a person does. */
export const trainee = (env: NodeJS.ProcessEnv): string => env.USER ?? 'trainee';

/** One line to the command's stdout. */
export const printer =
  (ctx: CommandContext) =>
  (line: string): void => {
    ctx.io.stdout.write(`${line}\n`);
  };

/**
 * A drill's first frame, drawn before the simulator and the client load (not under autopilot, nor without a
 * terminal), and the signal that stops the drill: the command's, or q at that frame once the wizard is up (it saves
 * the state and names resume), like a signal does.
 */
export async function drillFirstFrame(
  ctx: CommandContext,
  autopilot: boolean,
  scenario: string,
  status: string,
  since?: number,
): Promise<{ signal: AbortSignal; screen: StartingHandle | null }> {
  const stop = new AbortController();
  const signal = AbortSignal.any([ctx.signal, stop.signal]);
  if (autopilot || !hasTerminal(ctx)) return { signal, screen: null };
  const { openStartingScreen } = await import('./interactive.js');
  const screen = openStartingScreen({
    context: DRILL_CONTEXT,
    drill: { scenario },
    status,
    ...(since === undefined ? {} : { since }),
    env: ctx.io.env,
    onQuit: () => stop.abort(),
  });
  return { signal, screen };
}

/**
 * What a drill's run gets from the command, alike when it starts and when it is resumed: the started drill (its
 * simulator, save and journal), the wizard's screen (none under autopilot), the trainee's name, the command's stdout
 * and the stop signal.
 */
export async function drillIo<D extends { sim: SimCluster }>(
  ctx: CommandContext,
  signal: AbortSignal,
  autopilot: boolean,
  drill: D,
) {
  return {
    ...drill,
    ...(autopilot ? {} : { screen: await drillScreen(ctx, signal, drill.sim) }),
    operator: trainee(ctx.io.env),
    print: printer(ctx),
    signal,
  };
}

/**
 * The wizard's screen for a drill (Ink loads only here, after the first frame); with the simulator, the final screen
 * judges the run against the scenario's expected outcome and right answer.
 */
export async function drillScreen(ctx: CommandContext, signal: AbortSignal, sim?: SimCluster): Promise<Screen> {
  const [{ wizardScreen }, { judgeOnSim }] = await Promise.all([
    import('./interactive.js'),
    import('../wizard/outcome.js'),
  ]);
  return wizardScreen({
    context: DRILL_CONTEXT,
    headlessAlternative: 'talos-dr drill --autopilot',
    signal,
    env: ctx.io.env,
    ...(sim ? { judge: (context: RecoveryContext) => judgeOnSim(context, sim) } : {}),
  });
}

/** What the briefing shows of the scenario: never its expected outcome, procedure or right answer. */
export function briefingOf(s: ScenarioInfo, speed: number, realEtcd: boolean): BriefingView {
  return {
    scenario: s.name,
    description: s.description,
    talosVersion: s.talosVersion,
    nodeCount: s.nodeCount,
    timeLimitSec: Math.round(drillTimeLimitMs(s.timeLimitSec, speed, realEtcd) / 1000),
  };
}

/** The briefing of a scenario by name or file, read without starting its cluster. */
async function briefingFor(scenario: string, speed: number, realEtcd: boolean): Promise<BriefingView> {
  const { loadScenario, scenarioInfo } = await import('../sim/scenario.js');
  return briefingOf(scenarioInfo(loadScenario(scenario), '127.0.0.2'), speed, realEtcd);
}

const run: CommandRun = async (ctx) => {
  const since = Date.now();
  const flags = parse(ctx.args);
  if (flags.list) {
    const { listScenarios } = await loadSim();
    for (const s of listScenarios())
      ctx.io.stdout.write(`${s.name.padEnd(20)} Talos ${s.talosVersion.padEnd(5)} ${s.description}\n`);
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
  // a scenario file is checked before the incident folder exists: a bad one must not leave a folder blocking the re-run
  if (/\.ya?ml$/.test(scenario) || scenario.includes('/')) {
    const { loadScenario, ScenarioError } = await import('../sim/scenario.js');
    try {
      loadScenario(scenario);
    } catch (error) {
      throw error instanceof ScenarioError ? new UserError(error.message, EXIT.failure) : error;
    }
  }
  const incident = createIncidentDir(flags.dir ?? defaultIncidentDir(drillHome(ctx.io.env), DRILL_CONTEXT, new Date()));
  lockIncident(incident.dir, 'drill');
  // above the first frame, so it stays in the scrollback: where the state, journal and report are
  ctx.io.stdout.write(`incident folder: ${incident.dir}\n`);

  const { signal, screen } = await drillFirstFrame(
    ctx,
    autopilot,
    scenario,
    `Starting the drill cluster (${etcd === 'real' ? 'real etcd members' : 'simulated nodes'})`,
    since,
  );
  const speed = drillSpeed(ctx.io.env);
  const addressBase = freeAddressBase();
  try {
    // The briefing comes before the simulated cluster starts: the scenario's clock (a node that boots again after two
    // minutes) runs from then, so reading it uses up none of the drill. Enter begins; q stops the drill here.
    if (screen) await screen.brief(await briefingFor(scenario, speed, etcd === 'real'), incident.dir, signal);
    return await onDrillCluster(incident.dir, scenario, { addressBase, speed, restore: false, etcd }, async (drill) => {
      const { sim, save, journal } = drill;
      await sim.writeGiven(incident.dir);
      journal.append({
        kind: 'session',
        what: `drill ${scenario} started${autopilot ? ' (autopilot)' : ''}`,
        by: autopilot ? 'autopilot' : trainee(ctx.io.env),
        data: { scenario, nodes: sim.nodes, addressBase, incident: incident.dir },
      });
      await save();
      screen?.update('Connecting to the drill cluster');
      return runDrill({
        ...(await drillIo(ctx, signal, autopilot, drill)),
        incident,
        scenario,
        speed,
        addressBase,
        realEtcd: etcd === 'real',
      });
    });
  } finally {
    await screen?.close();
  }
};
export default run;
