/**
 * `talos-dr recover [--dir DIR]` (the default command): the wizard against the configured cluster. Interactive only:
 * a recovery of a real cluster is never run by autopilot.
 */
import { parseArgs } from 'node:util';
import { userInfo } from 'node:os';
import type { CommandRun, CommandContext } from './types.js';
import { UsageError } from '../errors.js';
import { createIncidentDir, defaultIncidentDir, type IncidentPaths } from '../journal/incident.js';
import { Journal } from '../journal/journal.js';
import { lockIncident } from '../journal/lock.js';
import { loadClientFromFlags } from '../talos/client.js';
import type { TalosContextConfig } from '../talos/talosconfig.js';
import type { Snapshot } from 'xstate';
import { runClusterRecovery } from '../wizard/run.js';
import { refuseWithoutTerminal } from './terminal.js';
import { saveConnection } from './connection.js';

export const HEADLESS_ALTERNATIVE =
  '"talos-dr status" to see the cluster, "talos-dr snapshot -n NODE" to take a snapshot, or "talos-dr drill --autopilot" to practise';

export function operatorName(env: NodeJS.ProcessEnv): string {
  try {
    return env.USER ?? userInfo().username;
  } catch {
    return 'operator';
  }
}

/**
 * Runs (or continues) a recovery of the configured cluster on the wizard's screen; shared with `resume`. Ink loads
 * only here.
 */
export async function runRealRecovery(
  ctx: CommandContext,
  config: TalosContextConfig,
  client: ReturnType<typeof loadClientFromFlags>['client'],
  incident: IncidentPaths,
  journal: Journal,
  restore?: Snapshot<unknown>,
): Promise<number> {
  const { wizardScreen } = await import('./interactive.js');
  return runClusterRecovery({
    config,
    client,
    incident,
    journal,
    operator: operatorName(ctx.io.env),
    screen: wizardScreen({
      context: config.contextName,
      headlessAlternative: HEADLESS_ALTERNATIVE,
      signal: ctx.signal,
      env: ctx.io.env,
    }),
    print: (line) => ctx.io.stdout.write(`${line}\n`),
    signal: ctx.signal,
    ...(restore ? { restore } : {}),
  });
}

const run: CommandRun = async (ctx) => {
  let dir: string | undefined;
  try {
    dir = parseArgs({ args: ctx.args, options: { dir: { type: 'string' } }, strict: true }).values.dir;
  } catch (error) {
    throw new UsageError(
      `${error instanceof Error ? error.message.split('\n')[0] : String(error)}; usage: talos-dr recover [--dir DIR].`,
    );
  }
  refuseWithoutTerminal(ctx, 'talos-dr recover', HEADLESS_ALTERNATIVE);
  const { client, config } = loadClientFromFlags(ctx.global, ctx.io.env);
  if (config.nodes.length === 0) {
    client.close();
    throw new UsageError(
      'No control-plane nodes are named: pass them with -n (e.g. -n 10.0.0.2,10.0.0.3,10.0.0.4) or set nodes in the talosconfig context.',
    );
  }
  const incident = createIncidentDir(dir ?? defaultIncidentDir(ctx.io.cwd, config.contextName, new Date()));
  lockIncident(incident.dir, 'recover');
  // resume reaches the same cluster without the flags typed again
  saveConnection(incident.dir, config, ctx.io.cwd);
  // above the first frame, so it stays in the scrollback: where the state, journal and report are
  ctx.io.stdout.write(`incident folder: ${incident.dir}\n`);
  const journal = new Journal(incident.dir);
  journal.append({
    kind: 'session',
    what: `recovery of context ${config.contextName} started`,
    by: operatorName(ctx.io.env),
    data: { nodes: config.nodes, endpoints: config.endpoints.map((e) => e.address) },
  });
  return runRealRecovery(ctx, config, client, incident, journal);
};
export default run;
