/**
 * The decoding programs on PATH (age, zstd): found, started in a process group of their own, fed from a stream, and
 * their output either yielded (throughProgram) or written straight into a file (programIntoFile), so the bytes never
 * pass through this process. How each program's end reads (its exit status, a failure feeding it) is the caller's.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { accessSync, constants as fsConstants, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { Readable } from 'node:stream';
import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { UserError } from '../errors.js';
import type { LoadedIdentity } from './identity.js';

/**
 * The age program on PATH when it reads `identity.file` as age-encryption did: not passphrase-protected, and every
 * line empty, a comment, or one of the same X25519 keys, untrimmed (age's ParseIdentities skips only "" and "#…"
 * lines and takes the rest as they are: FiloSottile/age parse.go, ParseIdentities, read at 2e0f1ef). Else null.
 */
export async function ageProgramFor(identity: LoadedIdentity): Promise<string | null> {
  if (identity.passphraseProtected) return null;
  if (identity.keys.some((key) => !key.startsWith('AGE-SECRET-KEY-1'))) return null;
  const program = programOnPath('age');
  if (!program) return null;
  const text = await readFile(identity.file, 'utf8').catch(() => null);
  if (text === null) return null;
  const keys = text.split(/\r?\n/).filter((line) => line !== '' && !line.startsWith('#'));
  const same = keys.length === identity.keys.length && keys.every((line, i) => line === identity.keys[i]);
  return same ? program : null;
}

/**
 * The decoding programs run in a process group of their own: Ctrl-C at a terminal signals the whole foreground group,
 * and an age or zstd that died of it first made a stopped import read as a damaged backup ("does not authenticate")
 * instead of "Stopped before the import finished". talos-dr stops them itself (the stream's end kills them), and a
 * talos-dr that dies closes their pipes, which ends them too.
 */
export const OWN_GROUP = true;

/**
 * `age -d -i KEYFILE` with the file on its stdin and the plain bytes from its stdout: the key stays in its file (no
 * argument or variable holds it). age exits non-zero when a chunk does not authenticate or the payload is cut short;
 * its header was already checked, so that is the one failure left. The process never outlives the stream.
 */
export function ageInProcess(
  input: AsyncIterable<Uint8Array>,
  program: string,
  keyFile: string,
): AsyncIterable<Uint8Array> {
  return throughProgram(input, program, ['-d', '-i', keyFile], ageFailure);
}

function ageFailure(end: ProgramEnd): unknown {
  if (end.spawnFailure) return new AgeProgramError(end.spawnFailure.message);
  if (end.pumpFailure !== null) return end.pumpFailure;
  return end.code === 0 ? null : new AgeDataError(`age exited with ${String(end.code ?? end.signal)}`);
}

/** age refused the payload (a chunk that does not authenticate, a stream cut short). */
export class AgeDataError extends Error {}

/** How a decoding program ended: its exit status, a failure to start it, a failure feeding it, its first words. */
export interface ProgramEnd {
  code: number | null;
  /** the signal that ended it, if one did */
  signal?: NodeJS.Signals | null;
  spawnFailure: Error | null;
  pumpFailure: unknown;
  stderr: string;
}

/** A program started with `input` pumped into its stdin; `end()` once it has closed says how it ended. */
interface Started {
  child: ChildProcess;
  /** settles (never rejects) once the input is pumped or has failed */
  pump: Promise<void>;
  end(): Promise<ProgramEnd>;
}

function start(
  input: AsyncIterable<Uint8Array> | number,
  program: string,
  args: string[],
  stdout: 'pipe' | number,
  signal?: AbortSignal,
): Started {
  // A stop that came before the start (an 'abort' listener added now would never fire): the program is not started.
  signal?.throwIfAborted();
  // A number is an open file: the program reads it itself from where its offset is.
  const stdin = typeof input === 'number' ? input : 'pipe';
  const child = spawn(program, args, { stdio: [stdin, stdout, 'pipe'], detached: OWN_GROUP });
  // A stop ends the program at once, also when nothing is pumped into it (it reads a file itself).
  const onAbort = (): void => stop(child);
  signal?.addEventListener('abort', onAbort, { once: true });
  const ended = watchEnd(child).finally(() => signal?.removeEventListener('abort', onAbort));
  let pumpFailure: unknown = null;
  let pump: Promise<void> = Promise.resolve();
  if (typeof input !== 'number') {
    const pipeIn = child.stdin as Writable;
    // Errors on stdin (EPIPE once the program has given up) are the exit status's to explain.
    pipeIn.on('error', () => undefined);
    pump = pipeline(Readable.from(input, { objectMode: false }), pipeIn, ...(signal ? [{ signal }] : [])).catch(
      (error: unknown) => {
        pumpFailure = error;
        child.kill();
      },
    );
  }
  return {
    child,
    pump,
    async end() {
      await pump;
      return { ...(await ended), pumpFailure };
    },
  };
}

/** How `child` ended, once it has closed: exit status or signal, a failure to start it, its first words. */
function watchEnd(child: ChildProcess): Promise<Omit<ProgramEnd, 'pumpFailure'>> {
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (text: string) => {
    if (stderr.length < 4096) stderr += text;
  });
  return new Promise((resolve) => {
    child.on('error', (error) => resolve({ code: null, signal: null, spawnFailure: error, stderr }));
    child.on('close', (code, signal) => resolve({ code, signal, spawnFailure: null, stderr }));
  });
}

function stop(child: ChildProcess): void {
  if (child.exitCode === null && child.signalCode === null) child.kill();
}

/**
 * `program args` with `input` on its stdin and its stdout as the output; once the output ends, `failureOf` says what
 * to throw from how the program ended (null: it finished well). The process never outlives the stream.
 */
export async function* throughProgram(
  input: AsyncIterable<Uint8Array>,
  program: string,
  args: string[],
  failureOf: (end: ProgramEnd) => unknown,
): AsyncIterable<Uint8Array> {
  const started = start(input, program, args, 'pipe');
  try {
    for await (const chunk of started.child.stdout as Readable) yield chunk as Uint8Array;
    const failure = failureOf(await started.end());
    if (failure !== null) throw failure;
  } finally {
    stop(started.child);
    await started.pump;
  }
}

/**
 * `program args` with `input` on its stdin and its stdout the file open at `fd`: the program writes the file itself,
 * and no byte of its output passes through this process. Settles once the program has exited; `failureOf` says what
 * to throw from how it ended (null: it finished well). A signal stops it (the signal's reason is thrown).
 */
export async function programIntoFile(
  input: AsyncIterable<Uint8Array> | number,
  program: string,
  args: string[],
  fd: number,
  failureOf: (end: ProgramEnd) => unknown,
  signal?: AbortSignal,
): Promise<void> {
  const started = start(input, program, args, fd, signal);
  try {
    const end = await started.end();
    signal?.throwIfAborted();
    const failure = failureOf(end);
    if (failure !== null) throw failure;
  } finally {
    stop(started.child);
    await started.pump;
  }
}

/** age could not be started at all: not the file's fault. */
export class AgeProgramError extends Error {}

/** The zstd program on PATH, or null. */
export function zstdProgram(): string | null {
  return programOnPath('zstd');
}

/** An executable file called `name` in a folder of PATH, or null. */
export function programOnPath(name: string): string | null {
  for (const folder of (process.env.PATH ?? '').split(delimiter)) {
    if (!folder) continue;
    const candidate = join(folder, name);
    try {
      accessSync(candidate, fsConstants.X_OK);
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  return null;
}

/**
 * How zstd ended: it exits non-zero on a damaged frame, a truncated stream (premature end) or a window larger than its
 * memory limit. A failure upstream (a damaged age stream) stopped it and is told first.
 */
function zstdFailure(end: ProgramEnd): unknown {
  if (end.pumpFailure instanceof UserError) return end.pumpFailure;
  if (end.spawnFailure) return end.spawnFailure;
  if (end.code !== 0)
    return new ZstdProgramError(end.stderr.trim().split('\n')[0] || `zstd exited with ${String(end.code)}`);
  return end.pumpFailure;
}

/** zstd refused the data (or was stopped): the caller turns it into the sentence for the file. */
export class ZstdProgramError extends Error {}

/**
 * `zstd -d -c -q` with the stream on its stdin and its stdout the new file at `fd`: the decoded bytes go from zstd to
 * the file, not through this process. The process never outlives the call.
 */
export function zstdIntoFile(
  input: AsyncIterable<Uint8Array> | number,
  program: string,
  fd: number,
  signal?: AbortSignal,
): Promise<void> {
  return programIntoFile(input, program, ['-d', '-c', '-q'], fd, zstdFailure, signal);
}

/**
 * `age -d -i KEYFILE | zstd -d -c -q > FILE` without this process in between: `input` (the whole age file, or an open
 * file descriptor of it at offset 0, which age then reads itself) is pumped into age, age's stdout is zstd's stdin, zstd's stdout is the new file at `fd`. Neither the decrypted nor the plain
 * bytes pass through here. A failure feeding age is told first, then age's own (AgeDataError; not when age was only
 * stopped by SIGPIPE because zstd had given up), then zstd's (ZstdProgramError). Neither outlives the call.
 */
export async function ageZstdIntoFile(
  input: AsyncIterable<Uint8Array> | number,
  age: { program: string; keyFile: string },
  zstd: string,
  fd: number,
  signal?: AbortSignal,
): Promise<void> {
  const ageRun = start(input, age.program, ['-d', '-i', age.keyFile], 'pipe', signal);
  const between = ageRun.child.stdout as Readable;
  const zstdChild = spawn(zstd, ['-d', '-c', '-q'], { stdio: [between, fd, 'pipe'], detached: OWN_GROUP });
  // Only the two programs hold the pipe between them: when zstd gives up, age's next write fails instead of waiting.
  between.destroy();
  const zstdEnded = watchEnd(zstdChild);
  const onAbort = (): void => stop(zstdChild);
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const [ageEnd, zstdEnd] = await Promise.all([ageRun.end(), zstdEnded]);
    signal?.throwIfAborted();
    const zstdVerdict = zstdFailure({ ...zstdEnd, pumpFailure: null });
    const ageVerdict = ageEnd.signal === 'SIGPIPE' && zstdVerdict !== null ? null : ageFailure(ageEnd);
    if (ageVerdict !== null) throw ageVerdict;
    if (zstdVerdict !== null) throw zstdVerdict;
  } finally {
    signal?.removeEventListener('abort', onAbort);
    stop(ageRun.child);
    stop(zstdChild);
    await ageRun.pump;
  }
}

/**
 * `age -d -i KEYFILE > FILE`: for an age file with no zstd inside, age writes the plain snapshot itself. A failure
 * feeding it is told first, then age's own (AgeDataError). The process never outlives the call.
 */
export function ageIntoFile(
  input: AsyncIterable<Uint8Array> | number,
  age: { program: string; keyFile: string },
  fd: number,
  signal?: AbortSignal,
): Promise<void> {
  return programIntoFile(input, age.program, ['-d', '-i', age.keyFile], fd, ageFailure, signal);
}
