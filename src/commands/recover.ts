/**
 * `talos-dr recover [--dir DIR]` (the default command): the wizard against the configured cluster. Interactive only:
 * a recovery of a real cluster is never run by autopilot.
 */
import { parseArgs } from 'node:util';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { isS3Url } from '../backups/s3-url.js';
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
  givenSnapshots: string[] = [],
): Promise<number> {
  const { wizardScreen } = await import('./interactive.js');
  return runClusterRecovery({
    givenSnapshots,
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

const USAGE = 'usage: talos-dr recover [--dir DIR] [--backups s3://BUCKET/PREFIX|FILE]... [--identity AGE-KEY-FILE]';

/** recover's own flags: the incident folder, the backup locations offered at step 3, the age key that opens them. */
function parseRecoverArgs(args: string[], cwd: string): { dir?: string; backups: string[]; identity?: string } {
  let values: { dir?: string; backups?: string[]; identity?: string };
  try {
    values = parseArgs({
      args,
      options: {
        dir: { type: 'string' },
        backups: { type: 'string', multiple: true },
        identity: { type: 'string' },
      },
      strict: true,
    }).values;
  } catch (error) {
    throw new UsageError(`${error instanceof Error ? error.message.split('\n')[0] : String(error)}; ${USAGE}.`);
  }
  // a file is kept by its absolute path: the wizard and a later resume may run from another folder
  const backups = (values.backups ?? []).map((b) => (isS3Url(b) ? b : resolve(cwd, b)));
  const identity = values.identity === undefined ? undefined : resolve(cwd, values.identity);
  if (identity !== undefined && !existsSync(identity))
    throw new UsageError(
      `There is no age identity file at ${identity}: pass the key talos-backup encrypts to with --identity FILE.`,
    );
  return { ...(values.dir !== undefined ? { dir: values.dir } : {}), backups, ...(identity ? { identity } : {}) };
}

/**
 * The wizard's backup import reads the age identity from TALOS_DR_IDENTITY (src/wizard/snapshot.ts), so --identity
 * sets it for this process; the path (never the key) is kept in connection.json for a resume.
 */
export function useBackupIdentity(identity: string | undefined): void {
  if (identity) process.env.TALOS_DR_IDENTITY = identity;
}

const run: CommandRun = async (ctx) => {
  const { dir, backups, identity } = parseRecoverArgs(ctx.args, ctx.io.cwd);
  useBackupIdentity(identity);
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
  saveConnection(incident.dir, config, ctx.io.cwd, identity);
  // above the first frame, so it stays in the scrollback: where the state, journal and report are
  ctx.io.stdout.write(`incident folder: ${incident.dir}\n`);
  const journal = new Journal(incident.dir);
  journal.append({
    kind: 'session',
    what: `recovery of context ${config.contextName} started`,
    by: operatorName(ctx.io.env),
    data: { nodes: config.nodes, endpoints: config.endpoints.map((e) => e.address) },
  });
  return runRealRecovery(ctx, config, client, incident, journal, undefined, backups);
};
export default run;
