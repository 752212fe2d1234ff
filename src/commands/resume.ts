/**
 * `talos-dr resume [DIR]`: continues an interrupted recovery or drill from its incident folder (the newest one in the
 * current directory when DIR is omitted, named on screen). The machine is restored from state.json; every step it
 * re-enters re-reads live state, and an action the journal shows as sent but unanswered is checked against the nodes
 * before anything is sent again. A drill gets its simulated cluster back from sim-state.json; an autopilot drill
 * continues headless.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Snapshot } from 'xstate';
import type { CommandRun } from './types.js';
import { UsageError, UserError } from '../errors.js';
import { incidentPaths, newestIncidentDir, removeStaleParts, SIM_STATE_FILE } from '../journal/incident.js';
import { lockIncident } from '../journal/lock.js';
import { Journal } from '../journal/journal.js';
import { readState, type StateEnvelope } from '../journal/state.js';
import { drillFirstFrame, drillHome, drillIo, trainee } from './drill.js';
import { hasTerminal, refuseWithoutTerminal } from './terminal.js';
import type { CommandContext } from './types.js';
import { loadConnection, loadSavedIdentity, withSaved } from './connection.js';

const run: CommandRun = async (ctx) => {
  const unknown = ctx.args.find((a) => a.startsWith('-'));
  if (unknown) throw new UsageError(`Unknown flag ${unknown}; usage: talos-dr resume [DIR].`);
  if (ctx.args.length > 1) throw new UsageError('Give one incident folder; usage: talos-dr resume [DIR].');
  // without DIR: the newest in the current folder, else the newest drill where drills are kept by default
  const dir = ctx.args[0]
    ? resolve(ctx.io.cwd, ctx.args[0])
    : (newestIncidentDir(ctx.io.cwd) ?? newestIncidentDir(drillHome(ctx.io.env)));
  if (!dir)
    throw new UserError(
      `There is no incident folder (talos-dr-*) with a state.json in ${ctx.io.cwd} or ${drillHome(ctx.io.env)}; give its path: talos-dr resume DIR.`,
      1,
    );
  // one process per incident; then the partial files a crash or a hang-up left are only ours to remove
  if (existsSync(dir)) removeStaleParts(lockIncident(dir, 'resume').dir);
  const state = readState(dir);
  if (!state.ok) throw new UserError(`Cannot resume: ${state.reason}.`, 1);
  const envelope = state.envelope;
  const incident = incidentPaths(dir);
  const snapshot = envelope.snapshot as Snapshot<unknown> & { status?: string };
  if (snapshot.status === 'done')
    throw new UserError(`The incident in ${dir} has already ended; "talos-dr report ${dir}" shows how.`, 1);

  if (envelope.mode === 'drill') {
    const autopilot = Boolean(envelope.autopilot);
    if (!autopilot) refuseWithoutTerminal(ctx, 'talos-dr resume', '"talos-dr drill --autopilot" for a new drill');
    if (!existsSync(join(dir, SIM_STATE_FILE)))
      throw new UserError(
        `${dir} has no ${SIM_STATE_FILE}, so the drill's cluster cannot be restored; start a new drill.`,
        1,
      );
    ctx.io.stdout.write(`resuming the drill in ${dir}\n`);
    const scenario = envelope.scenario ?? 'lost-quorum';
    // the first frame before the simulator and the client load, as a new drill draws it
    const { signal, screen: starting } = await drillFirstFrame(ctx, autopilot, scenario, 'Restoring the drill cluster');
    // the simulator, the client and the machine load behind that frame
    const { drillSpeed, onDrillCluster, runDrill } = await import('../wizard/drill.js');
    const speed = drillSpeed(ctx.io.env);
    const addressBase = envelope.addressBase ?? '127.0.0.2';
    try {
      return await onDrillCluster(dir, scenario, { addressBase, speed, restore: true }, async (drill) => {
        drill.journal.append({
          kind: 'session',
          what: `drill ${scenario} resumed`,
          // the name `drill` journalled the trainee by when it started (and answers by)
          by: autopilot ? 'autopilot' : trainee(ctx.io.env),
        });
        return runDrill({
          ...(await drillIo(ctx, signal, autopilot, drill)),
          incident,
          scenario,
          speed,
          addressBase,
          restore: snapshot,
        });
      });
    } finally {
      await starting?.close();
    }
  }

  if (!hasTerminal(ctx)) {
    const { HEADLESS_ALTERNATIVE } = await import('./recover.js');
    refuseWithoutTerminal(ctx, 'talos-dr resume', HEADLESS_ALTERNATIVE);
  }
  ctx.io.stdout.write(`resuming the recovery in ${dir}\n`);
  // the wizard's first frame before the talosconfig and the Talos client load, as the entry draws recover's (the wizard
  // takes it over; an error before that erases it first); q on it stops like SIGINT
  const stop = new AbortController();
  const signal = AbortSignal.any([ctx.signal, stop.signal]);
  const { openStartingScreen } = await import('./interactive.js');
  // the talosconfig, context, endpoints and nodes the recovery started with (flags given now win)
  const saved = withSaved(ctx.global, loadConnection(dir));
  const context = saved.context ?? envelope.context;
  const starting = openStartingScreen({
    ...(context ? { context } : {}),
    status: 'Reading the talosconfig and loading the Talos client',
    env: ctx.io.env,
    onQuit: () => stop.abort(),
  });
  try {
    return await resumeRecovery({ ...ctx, signal }, dir, envelope, snapshot, saved);
  } finally {
    await starting?.close();
  }
};

/** The recovery's own resume: its connection and key as saved, the client, the journal, then the wizard. */
async function resumeRecovery(
  ctx: CommandContext,
  dir: string,
  envelope: StateEnvelope,
  snapshot: Snapshot<unknown>,
  saved: ReturnType<typeof withSaved>,
): Promise<number> {
  const incident = incidentPaths(dir);
  const [{ operatorName, runRealRecovery, useBackupIdentity }, { loadClientFromFlags }] = await Promise.all([
    import('./recover.js'),
    import('../talos/client.js'),
  ]);
  // the backup key the recovery started with, unless one is set now
  if (!process.env.TALOS_DR_IDENTITY) useBackupIdentity(loadSavedIdentity(dir));
  const global = {
    ...saved,
    context: saved.context ?? envelope.context,
    nodes: saved.nodes ?? envelope.nodes,
  };
  const { client, config } = loadClientFromFlags(global, ctx.io.env);
  const journal = new Journal(dir);
  journal.append({
    kind: 'session',
    what: `recovery of context ${config.contextName} resumed`,
    by: operatorName(ctx.io.env),
  });
  return runRealRecovery(ctx, { ...config, nodes: envelope.nodes }, client, incident, journal, snapshot);
}
export default run;
