#!/usr/bin/env node
/**
 * The one entry point: parse the global flags, pick the command, run it, turn every failure into one sentence and
 * an exit code. Commands are imported lazily so that `--help` never loads Ink, grpc or the simulator.
 */
import { splitGlobalFlags, HELP_TEXT, COMMANDS, commandUsage, type CommandName } from './commands/registry.js';
import { UserError, UsageError, EXIT } from './errors.js';
import { hasTerminal } from './commands/terminal.js';
import type { CommandContext } from './commands/types.js';
import { closeSync, constants as fsConstants, mkdtempSync, openSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { heldIncidentDir, releaseIncidentLocks } from './journal/lock.js';
import { Journal } from './journal/journal.js';
import { LocalDiskError, localDiskFailure, onLocalDiskFailure } from './journal/local-disk.js';

async function main(argv: string[]): Promise<number> {
  const { global, command, args, help, version } = splitGlobalFlags(argv);
  if (version) {
    process.stdout.write(`talos-dr ${await packageVersion()}\n`);
    return EXIT.ok;
  }
  if (help || command === 'help') {
    process.stdout.write(args[0] ? commandUsage(args[0]) : HELP_TEXT);
    return EXIT.ok;
  }
  const name: CommandName = (command ?? 'recover') as CommandName;
  const entry = COMMANDS[name];
  if (!entry) throw new UsageError(`Unknown command "${command}"; run "talos-dr --help" to see the commands.`);
  const controller = new AbortController();
  stopOnSignals(() => controller.abort());
  // A local write that failed (journal, state.json, a backup) stops the procedure as a signal does, at once, before
  // its caller can take the failure for a node's; the entry then says the disk's sentence instead of an outcome.
  onLocalDiskFailure(() => controller.abort());
  const ctx: CommandContext = {
    args,
    global,
    io: {
      stdout: process.stdout,
      stderr: process.stderr,
      stdinIsTTY: Boolean(process.stdin.isTTY),
      env: process.env,
      cwd: process.cwd(),
    },
    signal: controller.signal,
  };
  const closeFrame = await drawFirstFrame(entry, ctx, () => controller.abort());
  try {
    const run = await entry.load();
    const code = await run(ctx);
    const disk = localDiskFailure();
    if (disk) {
      noteInJournal(disk);
      throw disk;
    }
    return code;
  } catch (error) {
    // whatever the command made of it, a failed local write is said as what it is
    throw localDiskFailure() ?? error;
  } finally {
    // the wizard took the frame over, or the command ended before it: then the frame goes before any error sentence
    await closeFrame?.();
    releaseIncidentLocks();
  }
}

/**
 * The run stopped for the local disk, which the machine records as a stop by the user: the journal (if it can still
 * be written) says why, so the report and the next reader see the disk's sentence.
 */
function noteInJournal(disk: LocalDiskError): void {
  const dir = heldIncidentDir();
  if (!dir) return;
  const journal = new Journal(dir);
  try {
    journal.append({ kind: 'warning', what: 'local disk failure', result: disk.message });
  } catch {
    // the journal is on the failing disk: the sentence on screen is all there is
  } finally {
    journal.close();
  }
}

/** Set once a stop signal arrived: a terminal that hung up then fails our writes, which is no longer an error. */
let stopping = false;

/**
 * SIGINT, SIGTERM and SIGHUP (a dropped SSH session) all stop the command the way q does: the machine saves its
 * state, the outcome is stopped-by-user, exit 3, and a partial download is removed. The listeners stay installed
 * (never `once`): signal-exit, which Ink and write-file-atomic load, re-raises a signal to kill the process whenever
 * it finds only its own listeners left (signal-exit: src/index.ts@v4.1.0, `listeners.length === count`), so a
 * one-shot listener, gone after the first signal, let the process die with 130/143 and no outcome. A second signal
 * while stopping changes nothing: the stop is already under way.
 */
function stopOnSignals(stop: () => void): void {
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const)
    process.on(signal, () => {
      stopping = true;
      stop();
    });
}

/**
 * Draws the wizard's first frame for a command that asks the entry to (recover), before the command module, the
 * talosconfig and the Talos client load; the wizard takes it over. q on it stops like SIGINT. Returns how to close it.
 */
async function drawFirstFrame(
  entry: (typeof COMMANDS)[CommandName],
  ctx: CommandContext,
  stop: () => void,
): Promise<(() => Promise<void>) | null> {
  const frame = 'firstFrame' in entry ? entry.firstFrame(ctx.args, ctx.global) : null;
  if (!frame || !hasTerminal(ctx)) return null;
  const { openStartingScreen, closeStartingScreen } = await import('./commands/interactive.js');
  return openStartingScreen({ ...frame, env: ctx.io.env, onQuit: stop }) ? closeStartingScreen : null;
}

async function packageVersion(): Promise<string> {
  const { readFile } = await import('node:fs/promises');
  const { findPackageRoot } = await import('./paths.js');
  const pkg = JSON.parse(await readFile(`${findPackageRoot()}/package.json`, 'utf8')) as { version: string };
  return pkg.version;
}

function sentenceFor(error: unknown): { text: string; code: number } {
  if (error instanceof UserError) return { text: error.message, code: error.exitCode };
  const detail = error instanceof Error ? error.message.split('\n')[0] : String(error);
  return {
    text: `talos-dr stopped on an unexpected error (${detail}); your files are untouched, please report this.`,
    code: EXIT.failure,
  };
}

// React and its reconciler (inside Ink) load their production builds unless the environment asks for another mode:
// about half the code to compile before the wizard's first frame, and no development-only warnings drawn over it.
process.env.NODE_ENV ??= 'production';

// Node prints DEP/ExperimentalWarnings on stderr; the user must only ever see our sentences.
process.removeAllListeners('warning');
process.on('warning', () => {});

// A reader that goes away (`talos-dr snapshot ... | head -1`) is not a failure of ours: stop quietly instead of
// letting Node print an unhandled EPIPE stack trace. Files are already complete or cleaned up by then.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    // after a hang-up the terminal is gone: the stop goes on (state saved, outcome journalled) without a screen
    if (stopping) return;
    if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw error;
  });
}

// Last resort: an error that escaped every command (a promise nobody awaited, a throw in a timer) still ends as one
// sentence. The stack goes to a file for the report instead of onto the screen; the journal and state.json, written
// before every action, are what `resume` continues from.
for (const event of ['uncaughtException', 'unhandledRejection'] as const) {
  process.on(event, (error: unknown) => {
    // a failed local write thrown where nobody catches it (a state.json save in a subscriber): the stop it started
    // is under way, and the entry says the disk's sentence when it ends
    if (error instanceof LocalDiskError && error === localDiskFailure()) return;
    const detail = error instanceof Error ? error.message.split('\n')[0] : String(error);
    const file = keepErrorDetails(error);
    process.stderr.write(
      `talos-dr stopped on an unexpected error (${detail}); a recovery or drill continues from its incident folder with "talos-dr resume". ${file ? `Please report this with ${file}.` : 'Please report this.'}\n`,
    );
    process.exit(EXIT.failure);
  });
}

/**
 * The stack goes into the incident folder this process holds, or else into a fresh private folder (mode 0700, random
 * name) in the temp folder; the file is created exclusively, never through a symbolic link, mode 0600: a predictable
 * name in a shared temp folder once let a planted link make a root run overwrite another file.
 */
function keepErrorDetails(error: unknown): string | null {
  const stack = error instanceof Error ? (error.stack ?? error.message) : String(error);
  const text = `${new Date().toISOString()} talos-dr ${process.argv.slice(2).join(' ')}\n${stack}\n`;
  const flags = fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | (fsConstants.O_NOFOLLOW ?? 0);
  const name = `talos-dr-error-${new Date()
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z')}-${process.pid}.log`;
  const places = [heldIncidentDir, () => mkdtempSync(join(tmpdir(), 'talos-dr-error-'))];
  for (const place of places) {
    try {
      const dir = place();
      if (!dir) continue;
      const file = join(dir, name);
      const fd = openSync(file, flags, 0o600);
      try {
        writeSync(fd, text);
      } finally {
        closeSync(fd);
      }
      return file;
    } catch {
      // the next place, or no file at all: the sentence is said either way
    }
  }
  return null;
}

/**
 * The command is over: the process ends when its last handle closes, or a few seconds later whatever is still open.
 * The signal listeners stay installed for the whole run (stopOnSignals), so a timer or socket some failure path
 * left open would otherwise keep a finished command alive with Ctrl-C and SIGTERM doing nothing.
 */
function endSoon(code: number): void {
  process.exitCode = code;
  setTimeout(() => process.exit(code), 3000).unref();
}

main(process.argv.slice(2)).then(endSoon, (error: unknown) => {
  const { text, code } = sentenceFor(error);
  process.stderr.write(`${text}\n`);
  endSoon(code);
});
