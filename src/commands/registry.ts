/**
 * The command table and the global flags. Kept free of heavy imports: `talos-dr --help` loads only this file.
 */
import { parseArgs } from 'node:util';
import type { CommandRun, GlobalFlags } from './types.js';
import { UsageError } from '../errors.js';

/** What the wizard's first frame shows when the entry draws it, before the command module loads. */
export interface FirstFrame {
  /** the talosconfig context, when the flags name it (otherwise the frame says it is being read) */
  context?: string;
  /** what is being done, e.g. "Reading the talosconfig" */
  status: string;
}

interface CommandEntry {
  summary: string;
  usage: string;
  /** true for the commands that connect to a cluster through a talosconfig: their help names its environment */
  connects?: boolean;
  /**
   * For an interactive command whose first frame the entry draws (with a terminal) before loading the command and the
   * Talos client; null when these arguments would not reach the wizard (the command then says why, without a frame).
   */
  firstFrame?: (args: readonly string[], global: GlobalFlags) => FirstFrame | null;
  load: () => Promise<CommandRun>;
}

/** A command's module, imported when it runs (by a literal path, which the bundle follows: scripts/bundle-cli.mjs). */
const lazy = (load: () => Promise<{ default: CommandRun }>) => async (): Promise<CommandRun> => (await load()).default;

/** `recover`'s own flags (as recover.ts parses them): anything else is its usage error, said without a first frame. */
const RECOVER_OPTIONS = {
  dir: { type: 'string' },
  backups: { type: 'string', multiple: true },
  identity: { type: 'string' },
} as const;
const plainRecoverArgs = (args: readonly string[]): boolean => {
  try {
    const { values } = parseArgs({ args: [...args], options: RECOVER_OPTIONS, strict: true });
    // a value that looks like a flag is a flag given without its value
    return Object.values(values).every((v) => [v].flat().every((x) => typeof x !== 'string' || !x.startsWith('-')));
  } catch {
    return false;
  }
};

export const COMMANDS = {
  recover: {
    summary: 'interactive recovery wizard against the configured cluster (the default)',
    usage: 'talos-dr recover [--dir DIR] [--backups s3://BUCKET/PREFIX|FILE]... [--identity AGE-KEY-FILE]',
    connects: true,
    firstFrame: (args, global) =>
      plainRecoverArgs(args)
        ? {
            ...(global.context ? { context: global.context } : {}),
            status: 'Reading the talosconfig and loading the Talos client',
          }
        : null,
    load: lazy(() => import('./recover.js')),
  },
  resume: {
    summary: 'continue an interrupted recovery or drill from its incident folder',
    usage: 'talos-dr resume [DIR]',
    connects: true,
    load: lazy(() => import('./resume.js')),
  },
  drill: {
    summary: 'run the wizard against an embedded simulated cluster with injected faults',
    usage: 'talos-dr drill [--scenario NAME] [--list] [--autopilot] [--dir DIR] [--etcd model|real]',
    load: lazy(() => import('./drill.js')),
  },
  sim: {
    summary: 'run a simulated cluster alone until SIGINT/SIGTERM',
    usage: 'talos-dr sim --scenario NAME --dir DIR [--port P] [--address-base IP] [--etcd model|real]',
    load: lazy(() => import('./sim.js')),
  },
  status: {
    summary:
      'etcd view of the control-plane nodes and the verdict (healthy, degraded: members to replace, NOSPACE, lost)',
    usage: 'talos-dr status [--json] [--watch]',
    connects: true,
    load: lazy(() => import('./status.js')),
  },
  snapshot: {
    summary: 'take a snapshot (or raw db copy) from one node, verify it, write it atomically',
    usage: 'talos-dr snapshot -n NODE [-o FILE] [--raw] [--json]',
    connects: true,
    load: lazy(() => import('./snapshot.js')),
  },
  inspect: {
    summary: 'verify a snapshot file offline (kind, structure, hash, revision, keys, sha256 trailer)',
    usage: 'talos-dr inspect FILE [--identity KEYFILE] [--json]',
    load: lazy(() => import('./inspect.js')),
  },
  import: {
    summary:
      'decrypt (age), decompress (zstd) and verify a talos-backup snapshot (file or S3, AWS_* settings) into a plain one',
    usage:
      'talos-dr import FILE|s3://BUCKET/KEY [--identity KEYFILE] [-o OUT] [--newest] [--endpoint URL] [--region R] [--json]',
    load: lazy(() => import('./import.js')),
  },
  backups: {
    summary: 'list the talos-backup snapshots in S3 (AWS_* settings, ~/.aws profiles), newest first, with size and age',
    usage: 'talos-dr backups list s3://BUCKET/PREFIX [--endpoint URL] [--region R] [--json]',
    load: lazy(() => import('./backups.js')),
  },
  report: {
    summary: "render an incident folder's timeline as Markdown",
    usage: 'talos-dr report [DIR]',
    load: lazy(() => import('./report.js')),
  },
} satisfies Record<string, CommandEntry>;

export type CommandName = keyof typeof COMMANDS;

/** The commands whose help names the environment of a connection. */
const CONNECTING = Object.entries(COMMANDS as Record<string, CommandEntry>)
  .filter(([, c]) => c.connects)
  .map(([name]) => name);

/** Environment variables read when connecting to a cluster (src/talos/talosconfig.ts), as the help names them. */
const ENVIRONMENT = `  TALOSCONFIG            the talosconfig when --talosconfig is not given, if that file exists
                         (then $TALOS_HOME/config or ~/.talos/config), as talosctl reads it
  TALOS_DR_SERVER_NAME   through an SSH tunnel or port-forward (an endpoint such as
                         127.0.0.1:50000 that the node certificate does not name): a real node
                         IP or name, which the certificate is then checked against
  NODE_EXTRA_CA_CERTS    a CA file for a context without ca (Node.js checks the node's
                         certificate against its own root list, not the system's as talosctl does)

Refused before anything is changed, each with one sentence saying what to do instead:
  a context for Omni (auth.siderov1): restore through Omni (omnictl get etcdbackup)
  Talos in containers (talosctl cluster create on Docker): Reset does not wipe there; take a
    snapshot, re-create the containers with empty volumes, talosctl bootstrap --recover-from
  a node given with a port (-n 10.5.0.2:50000), as Talos refuses it: the port goes with -e
A snapshot that sends no byte for 20 s is stopped (its etcd is not serving): take a raw copy
(--raw) or a snapshot from another member.
`;

export const HELP_TEXT = `talos-dr — guided Talos Linux etcd disaster recovery

Usage: talos-dr [global flags] <command> [flags]

Commands:
${Object.values(COMMANDS)
  .map((c) => `  ${c.usage}\n      ${c.summary}`)
  .join('\n')}

Global flags (before or after the command, as in talosctl):
  --talosconfig FILE     talosconfig to use (default: $TALOSCONFIG, then ~/.talos/config)
  --context NAME         context in the talosconfig (default: its current context)
  -e, --endpoints LIST   endpoints to connect through (comma-separated or repeated)
  -n, --nodes LIST       control-plane nodes to act on (comma-separated or repeated)
  -h, --help             this help;  --version  the version

Environment (read by the commands that connect to a cluster: ${CONNECTING.join(', ')}):
${ENVIRONMENT}
Exit codes: 0 success, 1 failure, 2 usage error or refusal, 3 stopped by the user (resumable).
Start here without a cluster: talos-dr drill
`;

export interface SplitArgs {
  global: GlobalFlags;
  command?: string;
  args: string[];
  help: boolean;
  version: boolean;
}

const LIST_FLAGS: Record<string, 'endpoints' | 'nodes'> = {
  '-e': 'endpoints',
  '--endpoints': 'endpoints',
  '-n': 'nodes',
  '--nodes': 'nodes',
};
const VALUE_FLAGS: Record<string, 'talosconfig' | 'context'> = {
  '--talosconfig': 'talosconfig',
  '--context': 'context',
};

const splitList = (value: string): string[] =>
  value
    .split(',')
    .map((v) => v.trim())
    .filter(Boolean);

/**
 * Pulls the global flags out of argv wherever they stand, finds the command name (the first bare word), and leaves
 * everything else for the command's own parser.
 */
export function splitGlobalFlags(argv: readonly string[]): SplitArgs {
  const global: GlobalFlags = {};
  const args: string[] = [];
  let command: string | undefined;
  let help = false;
  let version = false;
  for (let i = 0; i < argv.length; i++) {
    const raw = argv[i] as string;
    if (raw === '--') {
      args.push(...argv.slice(i));
      break;
    }
    const eq = raw.startsWith('--') ? raw.indexOf('=') : -1;
    const flag = eq > 0 ? raw.slice(0, eq) : raw;
    const inline = eq > 0 ? raw.slice(eq + 1) : undefined;
    const takeValue = (): string => {
      if (inline !== undefined) return inline;
      const next = argv[i + 1];
      if (next === undefined || (next.startsWith('-') && next.length > 1))
        throw new UsageError(`The flag ${flag} needs a value; run "talos-dr --help" for the usage.`);
      i++;
      return next;
    };
    if (flag in LIST_FLAGS) {
      const key = LIST_FLAGS[flag] as 'endpoints' | 'nodes';
      global[key] = [...(global[key] ?? []), ...splitList(takeValue())];
    } else if (flag in VALUE_FLAGS) {
      global[VALUE_FLAGS[flag] as 'talosconfig' | 'context'] = takeValue();
    } else if (flag === '-h' || flag === '--help') {
      help = true;
    } else if (flag === '--version') {
      version = true;
    } else if (command === undefined && !raw.startsWith('-')) {
      command = raw;
    } else {
      args.push(raw);
    }
  }
  if (help && command && command in COMMANDS) {
    // `talos-dr drill --help` is handled by the command table's usage line.
    return { global, command: 'help', args: [command], help: false, version };
  }
  return { global, command, args, help, version };
}

export function commandUsage(name: string): string {
  const entry = (COMMANDS as Record<string, CommandEntry>)[name];
  if (!entry) return HELP_TEXT;
  return `Usage: ${entry.usage}\n  ${entry.summary}\n${entry.connects ? `\nEnvironment:\n${ENVIRONMENT}` : ''}`;
}
