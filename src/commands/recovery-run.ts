/**
 * Runs one recovery session to its end, headless (autopilot) or interactive, and turns it into output and an exit
 * code: `recover`, `drill` and `resume` differ only in how they get the client, the nodes and the incident folder.
 */
import type { Snapshot } from 'xstate';
import type { CommandContext } from './types.js';
import type { TalosClient, MaintenanceClient } from '../talos/types.js';
import { DEFAULT_TIMING, type RecoveryContext, type Timing } from '../../machines/recovery.js';
import type { Journal } from '../journal/journal.js';
import type { IncidentPaths } from '../journal/incident.js';
import type { StateEnvelope } from '../journal/state.js';
import { writeReport } from '../journal/report.js';
import { driveAutopilot, exitCodeForOutcome, startSession } from './recovery-session.js';
import type { SimCluster } from '../sim/types.js';
import { drillScore, scoreLine } from './drill-runtime.js';
import { observeNodes, type EffectDeps } from './recovery-actors.js';

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
  };
}

export interface RunOptions {
  ctx: CommandContext;
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
  contextName: string;
  /** present for a drill */
  drill?: { sim: SimCluster; save: () => Promise<void>; scenario: string; timeLimitMs: number };
  autopilot: boolean;
  headlessAlternative: string;
}

export async function runRecovery(opts: RunOptions): Promise<number> {
  const { ctx, drill } = opts;
  const deps: EffectDeps = {
    client: opts.client,
    connectMaintenance: opts.connectMaintenance,
    incident: opts.incident,
    journal: opts.journal,
    operator: opts.operator,
    statusTimeoutMs: Math.max(1000, Math.min(4000, opts.timing.pollMs * 10)),
    ...(drill ? { afterDestructive: drill.save } : {}),
    signal: ctx.signal,
  };
  const session = startSession({
    deps,
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
  ctx.signal.addEventListener('abort', onAbort, { once: true });
  try {
    if (opts.autopilot) return await runHeadless(opts, session);
    const { runInteractive } = await import('./interactive.js');
    const code = await runInteractive({
      actor: session.actor,
      incidentDir: opts.incident.dir,
      context: opts.contextName,
      endpoint: () => opts.client.endpointInUse,
      // The live node table's own fan-out refresh, so it stays current during long steps (wipes, waits).
      refreshNodes: (nodes: string[]) => observeNodes(deps, nodes),
      ...(drill
        ? {
            drill: {
              scenario: drill.scenario,
              timeLimitSec: Math.round(drill.timeLimitMs / 1000),
              dataLost: () => drillScore(session.actor.getSnapshot().context, drill.sim, Date.now()).dataLost,
            },
          }
        : {}),
      flush: async () => {
        await drill?.save();
      },
      signal: ctx.signal,
      headlessAlternative: opts.headlessAlternative,
      env: ctx.io.env,
    });
    safeReport(opts.incident.dir);
    return code;
  } finally {
    ctx.signal.removeEventListener('abort', onAbort);
    session.stop();
    await drill?.save();
    opts.journal.close();
  }
}

async function runHeadless(opts: RunOptions, session: ReturnType<typeof startSession>): Promise<number> {
  const { ctx, drill } = opts;
  const print = (line: string) => ctx.io.stdout.write(`${line}\n`);
  const stopPilot = driveAutopilot(session, opts.journal, {
    print,
    timeLimitMs: drill?.timeLimitMs ?? 60 * 60_000,
    repeatPauseMs: opts.timing.pollMs,
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
    print(scoreLine(drillScore(context, drill.sim, Date.now())));
  }
  safeReport(opts.incident.dir);
  print(`outcome: ${context.outcome ?? 'stopped-by-user'}`);
  return exitCodeForOutcome(context.outcome);
}

function safeReport(dir: string): void {
  try {
    writeReport(dir);
  } catch {
    // the journal is the record; a report that cannot be written now can be rendered later with `talos-dr report`
  }
}
