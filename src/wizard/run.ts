/**
 * Runs one recovery session to its end, headless (autopilot) or on a screen the command supplies, and turns it into
 * output and an exit code: `recover`, `drill` and `resume` differ only in how they get the client, the nodes and the
 * incident folder.
 */
import type { Snapshot } from 'xstate';
import type { MaintenanceClient, TalosClient } from '../talos/types.js';
import { connectMaintenance } from '../talos/maintenance.js';
import { DEFAULT_TALOS_PORT, type TalosContextConfig } from '../talos/talosconfig.js';
import { DEFAULT_TIMING, type RecoveryContext, type Timing } from '../../machines/recovery.js';
import type { NodeView } from '../../machines/recovery-types.js';
import type { Journal } from '../journal/journal.js';
import type { IncidentPaths } from '../journal/incident.js';
import type { StateEnvelope } from '../journal/state.js';
import { writeReport } from '../journal/report.js';
import type { SimCluster } from '../sim/types.js';
import type { EffectDeps } from './deps.js';
import { observeNodes } from './observe.js';
import { startSession, type Session } from './session.js';
import { driveAutopilot } from './autopilot.js';
import { dataLostText, drillScore, exitCodeForOutcome, outcomeLine, scoreLine } from './outcome.js';

/** Drill timings follow the simulator's time compression; a real cluster gets the defaults. */
export function timingFor(speed: number): Timing {
  const scale = (ms: number, min: number) => Math.max(min, Math.round(ms / speed));
  return {
    pollMs: scale(DEFAULT_TIMING.pollMs, 100),
    // A node's reboot in the simulator is compressed, but the process work around it (listeners, certificates,
    // a resumed simulator's start) is not: a loaded 2-core machine once took over 6 s of wall time for it.
    nodeBackTimeoutMs: scale(DEFAULT_TIMING.nodeBackTimeoutMs, 20_000),
    preparingTimeoutMs: scale(DEFAULT_TIMING.preparingTimeoutMs, 5000),
    verifyTimeoutMs: scale(DEFAULT_TIMING.verifyTimeoutMs, 5000),
    backoffMs: scale(DEFAULT_TIMING.backoffMs, 50),
    maxAttempts: DEFAULT_TIMING.maxAttempts,
    // a rebooting node is waited for as the wipes' reboots are: with a wall-time floor for the uncompressed work
    nodeAnswerTimeoutMs: scale(DEFAULT_TIMING.nodeAnswerTimeoutMs, 20_000),
  };
}

/** What the screen is given: the running session, a live reader of the nodes, and for a drill its score's parts. */
export interface ScreenSession {
  session: Session;
  /** the incident folder, named on screen with the command that resumes from it */
  incidentDir: string;
  /** the live node table's own fan-out refresh, so it stays current during long steps (wipes, waits) */
  refreshNodes: (nodes: string[]) => Promise<NodeView[]>;
  endpoint: () => string | undefined;
  drill?: { scenario: string; timeLimitSec: number; dataLost: () => string };
  /** writes whatever is still buffered (a drill's simulated cluster) */
  flush: () => Promise<void>;
}

/** Mounts the interactive wizard on a session and resolves with the exit code when the screen ends. */
export type Screen = (s: ScreenSession) => Promise<number>;

export interface RunOptions {
  client: TalosClient;
  connectMaintenance: ((node: string) => Promise<MaintenanceClient>) | null;
  incident: IncidentPaths;
  journal: Journal;
  nodes: string[];
  operator: string;
  timing: Timing;
  givenSnapshots: string[];
  envelope: Omit<StateEnvelope, 'v' | 'kind' | 'savedAt' | 'snapshot'>;
  restore?: Snapshot<unknown>;
  /** present for a drill */
  drill?: { sim: SimCluster; save: () => Promise<void>; scenario: string; timeLimitMs: number };
  /** the interactive screen; without one the session runs on autopilot (drills only) */
  screen?: Screen;
  /** one line to stdout (autopilot's step lines, score and outcome) */
  print: (line: string) => void;
  /** aborted on SIGINT/SIGTERM: the machine stops as the user's q does */
  signal: AbortSignal;
  /** how long one status read of a node may take before the node counts as not answering (default: from timing) */
  statusTimeoutMs?: number;
}

export async function runRecovery(opts: RunOptions): Promise<number> {
  const { drill } = opts;
  const session = startSession({
    deps: {
      client: opts.client,
      connectMaintenance: opts.connectMaintenance,
      incident: opts.incident,
      journal: opts.journal,
      operator: opts.operator,
      statusTimeoutMs: opts.statusTimeoutMs ?? Math.max(1000, Math.min(4000, opts.timing.pollMs * 10)),
      ...(drill ? { afterDestructive: drill.save } : {}),
      signal: opts.signal,
    },
    input: {
      nodes: opts.nodes,
      operator: opts.operator,
      mode: drill ? 'drill' : 'recover',
      givenSnapshots: opts.givenSnapshots,
      timing: opts.timing,
    },
    envelope: opts.envelope,
    ...(opts.restore ? { restore: opts.restore } : {}),
    ...(drill ? { onStepEnd: () => void drill.save() } : {}),
  });
  const onAbort = () => session.actor.send({ type: 'abort' });
  opts.signal.addEventListener('abort', onAbort, { once: true });
  try {
    if (!opts.screen) return await runHeadless(opts, session);
    const deps: EffectDeps = session.deps;
    const code = await opts.screen({
      session,
      incidentDir: opts.incident.dir,
      refreshNodes: (nodes) => observeNodes(deps, nodes),
      endpoint: () => opts.client.endpointInUse,
      ...(drill
        ? {
            drill: {
              scenario: drill.scenario,
              timeLimitSec: Math.round(drill.timeLimitMs / 1000),
              dataLost: () => dataLostText(drill.sim),
            },
          }
        : {}),
      flush: async () => {
        await drill?.save();
      },
    });
    safeReport(opts.incident.dir);
    return code;
  } finally {
    opts.signal.removeEventListener('abort', onAbort);
    session.stop();
    await drill?.save();
    opts.journal.close();
  }
}

async function runHeadless(opts: RunOptions, session: Session): Promise<number> {
  const { drill, print } = opts;
  const stopPilot = driveAutopilot(session, {
    print,
    timeLimitMs: drill?.timeLimitMs ?? 60 * 60_000,
    repeatPauseMs: opts.timing.pollMs,
    // a planned-swap drill names the machine to take out: autopilot's right answer at the healthy verdict
    ...(drill?.sim.scenario.retire ? { retire: drill.sim.scenario.retire } : {}),
  });
  let context: RecoveryContext;
  try {
    context = await session.settled;
  } finally {
    stopPilot();
  }
  // let the last step line print before the summary
  await new Promise((r) => setImmediate(r));
  if (context.dataLossWindow && context.outcome === 'recovered') print(`data-loss window: ${context.dataLossWindow}`);
  for (const w of context.warnings) print(`warning: ${w}`);
  if (context.outcome === 'recovered') for (const f of context.followUp) print(`next: ${f}`);
  if (drill) {
    await drill.save();
    print(scoreLine(drillScore(context, drill.sim)));
  }
  safeReport(opts.incident.dir);
  print(outcomeLine(context.outcome));
  return exitCodeForOutcome(context.outcome);
}

function safeReport(dir: string): void {
  try {
    writeReport(dir);
  } catch {
    // the journal is the record; a report that cannot be written now can be rendered later with `talos-dr report`
  }
}

/** A recovery (or its continuation) of a configured cluster: `recover` and `resume` of a real incident. */
export async function runClusterRecovery(args: {
  config: TalosContextConfig;
  client: TalosClient;
  incident: IncidentPaths;
  journal: Journal;
  operator: string;
  screen: Screen;
  print: (line: string) => void;
  signal: AbortSignal;
  restore?: Snapshot<unknown>;
  /** backup locations (s3://… or absolute files) offered at step 3 and aged at the assessment */
  givenSnapshots?: string[];
}): Promise<number> {
  const { config, client } = args;
  // maintenance mode is served on the node's own address, on the port the endpoints use
  const port = config.endpoints[0]?.port ?? DEFAULT_TALOS_PORT;
  try {
    return await runRecovery({
      client,
      connectMaintenance: (node) =>
        connectMaintenance(node.includes(':') && !node.startsWith('[') ? `[${node}]:${port}` : `${node}:${port}`),
      incident: args.incident,
      journal: args.journal,
      nodes: config.nodes,
      operator: args.operator,
      timing: DEFAULT_TIMING,
      givenSnapshots: args.givenSnapshots ?? [],
      envelope: { mode: 'recover', context: config.contextName, nodes: config.nodes },
      ...(args.restore ? { restore: args.restore } : {}),
      screen: args.screen,
      print: args.print,
      signal: args.signal,
    });
  } finally {
    client.close();
  }
}
