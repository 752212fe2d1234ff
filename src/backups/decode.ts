/**
 * The import pipeline: a talos-backup file (plain, `.zst`, `.age`, `.zst.age`) streamed from disk or S3, decrypted
 * (age-encryption) and decompressed (zstd) on the fly into a new 0600 file, verified exactly as a taken snapshot
 * (inspectSnapshot reads it back from disk), then moved into place with link()+unlink() so an existing file is never
 * replaced. Whatever goes wrong, no partial file is left. Nothing here writes a key anywhere.
 *
 * Layers are recognised by their first bytes, not by the name: age's header line, then zstd's frame magic.
 */
import { createHash } from 'node:crypto';
import type { Hash } from 'node:crypto';
import { spawn } from 'node:child_process';
import {
  accessSync,
  constants as fsConstants,
  createReadStream,
  createWriteStream,
  existsSync,
  statSync,
} from 'node:fs';
import { access, link, mkdtemp, open, readFile, rm, stat, unlink } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { basename, delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { Readable, pipeline as pipelineCallback } from 'node:stream';
import type { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import { Decrypter, identityToRecipient } from 'age-encryption';
import { Decompress } from 'fzstd';
import { UserError } from '../errors.js';
import { inspectSnapshot } from '../etcd/inspect.js';
import type { SnapshotKind, SnapshotReport } from '../etcd/types.js';
import { NotASnapshotError } from '../etcd/kind.js';
import { sha256Line } from '../etcd/acquire.js';
import type { LoadedIdentity } from './identity.js';

const AGE_BINARY = Buffer.from('age-encryption.org/v1\n');
const AGE_ARMORED = Buffer.from('-----BEGIN AGE ENCRYPTED FILE-----');
const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);
/** enough leading bytes to tell the layers apart */
const SNIFF_BYTES = AGE_ARMORED.length;

export type DecodeLayer = 'age' | 'zstd';

export interface ImportSource {
  /** what the user named: a path or s3://bucket/key (for sentences and the chain) */
  name: string;
  /** the bytes, from the start; the pipeline consumes it once */
  open(): AsyncIterable<Uint8Array> | Promise<AsyncIterable<Uint8Array>>;
  /** total bytes when known (progress) */
  size?: number;
}

export interface ImportOptions {
  /** the plain snapshot to create; must not exist */
  out: string;
  identity?: LoadedIdentity;
  signal?: AbortSignal;
  /** source bytes consumed so far, and the total when known */
  onProgress?(bytes: number, total: number | undefined): void;
  /** what happens after the stream: verification (bytes read back and hashed, of the plain file's size) */
  onVerifyProgress?(bytes: number, total: number): void;
  /** write OUT.sha256 beside the snapshot (default true) */
  sha256File?: boolean;
  /** decode zstd on a thread of its own; default: when the worker is built and a core is idle (see idleCore) */
  zstdInWorker?: boolean;
  /**
   * which zstd decoder: 'system' is the zstd program on PATH (the reference decoder, in a process of its own),
   * 'fzstd' the JavaScript one; default: 'system' when PATH has a zstd program, else 'fzstd'
   */
  zstdDecoder?: 'system' | 'fzstd';
  /**
   * which age decrypter for the payload: 'system' is the age program on PATH (`age -d -i KEYFILE`, in a process of its
   * own), 'js' age-encryption in this thread; default: 'system' when PATH has an age program and the identity file is
   * one age reads as it is (plain X25519 keys; a passphrase-protected one stays here). The header is always read and
   * checked here first, so a wrong key or a damaged header gives the same sentence either way.
   */
  ageDecoder?: 'system' | 'js';
}

/** One link of the sha256 chain: a file as it was at one stage. */
export interface ChainLink {
  stage: 'source' | 'decrypted' | 'plain';
  /** what this stage is: the source's layers still on it ('age', 'zstd'), none for the plain snapshot */
  layers: DecodeLayer[];
  sha256: string;
  bytes: number;
}

export interface ImportResult {
  source: string;
  /** the new plain snapshot (0600) */
  file: string;
  sha256File: string | null;
  /** the layers taken off, outermost first */
  layers: DecodeLayer[];
  /** encrypted (or compressed) file → plain file */
  chain: ChainLink[];
  report: SnapshotReport;
}

/** Decodes `source` into `opts.out`, verifies it, and returns the chain; throws UserError (one sentence) otherwise. */
export async function importSnapshot(source: ImportSource, opts: ImportOptions): Promise<ImportResult> {
  const out = opts.out;
  const part = join(dirname(out), `.${basename(out)}.importing-${process.pid}-${Date.now().toString(36)}`);
  let partCreated = false;
  await checkTarget(out, opts.sha256File !== false);
  try {
    const sourceTap = new Tap();
    const raw = tap(await source.open(), sourceTap, (bytes) => opts.onProgress?.(bytes, source.size));
    const outer = await peek(raw, SNIFF_BYTES);
    const layers: DecodeLayer[] = [];
    let stream: AsyncIterable<Uint8Array> = outer.stream;
    let decryptedTap: Tap | null = null;
    if (startsWith(outer.head, AGE_ARMORED)) {
      throw new UserError(
        `${source.name} is ASCII-armored age: decrypt it first (age -d -i KEYFILE -o FILE) and import FILE.`,
      );
    }
    if (startsWith(outer.head, AGE_BINARY)) {
      if (!opts.identity) {
        throw new UserError(
          `${source.name} is age-encrypted: give the identity whose public key talos-backup encrypted to (AGE_X25519_PUBLIC_KEY) with --identity KEYFILE.`,
        );
      }
      layers.push('age');
      decryptedTap = new Tap();
      stream = tap(await decrypt(stream, opts.identity, source.name, opts.ageDecoder), decryptedTap);
    }
    const inner = await peek(stream, ZSTD_MAGIC.length);
    stream = inner.stream;
    if (startsWith(inner.head, ZSTD_MAGIC)) {
      layers.push('zstd');
      stream = decompress(stream, opts);
    }
    const plainTap = new Tap();
    stream = tap(stream, plainTap);
    partCreated = true;
    await pipeline(
      Readable.from(guard(stream, source.name, layers), { objectMode: false }),
      createWriteStream(part, { flags: 'wx', mode: 0o600 }),
      { signal: opts.signal },
    );
    await syncFile(part);
    // Verified from the bytes on disk (SAFETY rule 2), which must be the bytes decoded.
    // A decoded file that is not bbolt is refused from its first pages, before the hashing reads all of it.
    const report = await inspectSnapshot(part, {
      signal: opts.signal,
      onProgress: opts.onVerifyProgress,
      refuseOtherFormats: true,
    }).catch((error: unknown) => {
      if (error instanceof NotASnapshotError) throw notSnapshot(source.name, layers, error.kind, error.message);
      throw error;
    });
    if (report.sha256 !== plainTap.hex()) {
      throw new UserError(
        `The snapshot read back from ${dirname(out)} differs from the bytes decoded; check the disk and import again.`,
      );
    }
    if (!report.usable) throw notSnapshot(source.name, layers, report.kind, report.problems[0]);
    await placeNoReplace(part, out);
    partCreated = false;
    let shaFile: string | null = null;
    if (opts.sha256File !== false) {
      shaFile = `${out}.sha256`;
      await writeNew(shaFile, sha256Line(report.sha256, out));
    }
    const chain: ChainLink[] = [
      { stage: 'source', layers: [...layers], sha256: sourceTap.hex(), bytes: sourceTap.bytes },
    ];
    if (decryptedTap && layers.includes('zstd')) {
      chain.push({ stage: 'decrypted', layers: ['zstd'], sha256: decryptedTap.hex(), bytes: decryptedTap.bytes });
    }
    chain.push({ stage: 'plain', layers: [], sha256: report.sha256, bytes: report.size });
    return { source: source.name, file: out, sha256File: shaFile, layers, chain, report: { ...report, file: out } };
  } catch (error) {
    if (partCreated) await unlink(part).catch(() => undefined);
    if (error instanceof UserError) throw error;
    if (opts.signal?.aborted) throw new UserError('Stopped before the import finished; no file was written.', 3);
    throw asSentence(error, source.name, out);
  }
}

/** Before any download: the folder exists and neither the snapshot nor its .sha256 does (nothing is replaced). */
async function checkTarget(out: string, withSha256: boolean): Promise<void> {
  for (const path of withSha256 ? [out, `${out}.sha256`] : [out]) {
    const exists = await access(path).then(
      () => true,
      () => false,
    );
    if (exists) throw new UserError(`${path} already exists; choose another file with -o, or move it away.`);
  }
  const folder = await stat(dirname(out)).catch(() => null);
  if (!folder?.isDirectory()) {
    throw new UserError(`The folder ${dirname(out)} does not exist; create it or choose another file with -o.`);
  }
}

/** The sentence for a failure that is not already one. */
function asSentence(error: unknown, name: string, out: string): UserError {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'EEXIST') return new UserError(`${out} already exists; choose another file with -o, or remove it.`);
  if (code === 'ENOENT') return new UserError(`The folder for ${out} does not exist; create it or choose another -o.`);
  if (code === 'EACCES' || code === 'EPERM')
    return new UserError(`${out} cannot be written (permission denied); choose another -o.`);
  if (code === 'ENOSPC') return new UserError(`The disk is full while writing ${out}; free space and import again.`);
  const detail = error instanceof Error ? error.message : String(error);
  return new UserError(`${name} could not be imported (${detail.split('\n')[0]}); check the file and try again.`);
}

function notSnapshot(name: string, layers: DecodeLayer[], kind: SnapshotKind, problem: string | undefined): UserError {
  const after = layers.length === 0 ? '' : ` after ${describeLayers(layers)}`;
  const why = (problem ?? 'it does not verify').replace(/\.$/, '');
  if (kind !== 'bbolt') {
    return new UserError(`${name} is not an etcd snapshot${after} (${why}); check that it is a talos-backup file.`);
  }
  return new UserError(`${name} holds a damaged snapshot${after} (${why}); do not restore from it.`);
}

export function describeLayers(layers: readonly DecodeLayer[]): string {
  const words = layers.map((layer) => (layer === 'age' ? 'decryption' : 'decompression'));
  return words.join(' and ');
}

/**
 * age decryption as a stream: the header is read (and the key tried) here before this returns, by age-encryption
 * whichever decrypter then does the payload, so a wrong key, a damaged header or a file that is not age give one and
 * the same sentence. The payload goes to the age program on PATH when there is one (see ageProgramFor): it decrypts
 * about 8 times faster than age-encryption's JavaScript ChaCha20-Poly1305 (bench/RESULTS.md, import rows).
 */
async function decrypt(
  stream: AsyncIterable<Uint8Array>,
  identity: LoadedIdentity,
  name: string,
  decoder: ImportOptions['ageDecoder'],
): Promise<AsyncIterable<Uint8Array>> {
  const decrypter = new Decrypter();
  for (const key of identity.keys) decrypter.addIdentity(key);
  const program = decoder === 'js' ? null : await ageProgramFor(identity);
  if (!program) {
    const web = Readable.toWeb(Readable.from(stream, { objectMode: false })) as ReadableStream<Uint8Array>;
    const plain = await decrypter.decrypt(web).catch((error: unknown) => ageHeaderFailure(error, identity, name));
    return ageErrors(plain, name);
  }
  // The bytes age-encryption takes to read the header (and the payload's nonce) are kept, to be given to age again.
  const iterator = stream[Symbol.asyncIterator]();
  const taken: Uint8Array[] = [];
  let detached = false;
  let pulling: Promise<unknown> = Promise.resolve();
  const recorded = new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        // Once the header is checked, age-encryption's payload stream gets nothing more (it is never read).
        if (detached) return new Promise<void>(() => undefined);
        const next = iterator.next().then((item) => {
          if (item.done) controller.close();
          else {
            taken.push(item.value);
            controller.enqueue(item.value);
          }
        });
        pulling = next.catch(() => undefined);
        return next;
      },
    },
    { highWaterMark: 0 },
  );
  await decrypter.decrypt(recorded).catch((error: unknown) => ageHeaderFailure(error, identity, name));
  detached = true;
  await pulling;
  async function* again(): AsyncIterable<Uint8Array> {
    yield* taken;
    for (;;) {
      const next = await iterator.next();
      if (next.done) return;
      yield next.value;
    }
  }
  return ageErrors(ageInProcess(again(), program, identity.file), name);
}

/** The sentence for a header age-encryption refused. */
async function ageHeaderFailure(error: unknown, identity: LoadedIdentity, name: string): Promise<never> {
  const message = error instanceof Error ? error.message : '';
  if (/no identity matched/.test(message)) {
    const recipients = await Promise.all(identity.keys.map((key) => identityToRecipient(key).catch(() => '?')));
    throw new UserError(
      `${name} was not encrypted to the identity in ${identity.file} (public key ${recipients.join(', ')}); use the secret key whose public key talos-backup has as AGE_X25519_PUBLIC_KEY.`,
    );
  }
  if (/invalid header HMAC/.test(message)) {
    throw new UserError(`${name} has a damaged age header (its MAC does not match); use another copy of the backup.`);
  }
  throw new UserError(
    `${name} is not a readable age file (${message || 'bad header'}); use another copy of the backup.`,
  );
}

/**
 * The age program on PATH when it reads `identity.file` as age-encryption did: not passphrase-protected, and every
 * line empty, a comment, or one of the same X25519 keys, untrimmed (age's ParseIdentities skips only "" and "#…"
 * lines and takes the rest as they are: FiloSottile/age parse.go, ParseIdentities, read at 2e0f1ef). Else null.
 */
async function ageProgramFor(identity: LoadedIdentity): Promise<string | null> {
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
const OWN_GROUP = true;

/**
 * `age -d -i KEYFILE` with the file on its stdin and the plain bytes from its stdout: the key stays in its file (no
 * argument or variable holds it). age exits non-zero when a chunk does not authenticate or the payload is cut short;
 * its header was already checked, so that is the one failure left. The process never outlives the stream.
 */
function ageInProcess(input: AsyncIterable<Uint8Array>, program: string, keyFile: string): AsyncIterable<Uint8Array> {
  return throughProgram(input, program, ['-d', '-i', keyFile], (end) => {
    if (end.spawnFailure) return new AgeProgramError(end.spawnFailure.message);
    if (end.pumpFailure !== null) return end.pumpFailure;
    return end.code === 0 ? null : new Error(`age exited with ${String(end.code)}`);
  });
}

/** How a decoding program ended: its exit status, a failure to start it, a failure feeding it, its first words. */
interface ProgramEnd {
  code: number | null;
  spawnFailure: Error | null;
  pumpFailure: unknown;
  stderr: string;
}

/**
 * `program args` with `input` on its stdin and its stdout as the output; once the output ends, `failureOf` says what
 * to throw from how the program ended (null: it finished well). The process never outlives the stream.
 */
async function* throughProgram(
  input: AsyncIterable<Uint8Array>,
  program: string,
  args: string[],
  failureOf: (end: ProgramEnd) => unknown,
): AsyncIterable<Uint8Array> {
  const child = spawn(program, args, { stdio: ['pipe', 'pipe', 'pipe'], detached: OWN_GROUP });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (text: string) => {
    if (stderr.length < 4096) stderr += text;
  });
  let spawnFailure: Error | null = null;
  const exited = new Promise<number | null>((resolve) => {
    child.on('error', (error) => {
      spawnFailure ??= error;
      resolve(null);
    });
    child.on('close', (code) => resolve(code));
  });
  let pumpFailure: unknown = null;
  // Errors on stdin (EPIPE once the program has given up) are the exit status's to explain.
  child.stdin.on('error', () => undefined);
  const pump = pipeline(Readable.from(input, { objectMode: false }), child.stdin).catch((error: unknown) => {
    pumpFailure = error;
    child.kill();
  });
  try {
    for await (const chunk of child.stdout) yield chunk as Uint8Array;
    await pump;
    const code = await exited;
    const failure = failureOf({ code, spawnFailure, pumpFailure, stderr });
    if (failure !== null) throw failure;
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill();
    await pump;
  }
}

/** age could not be started at all: not the file's fault. */
class AgeProgramError extends Error {}

async function* ageErrors(
  plain: ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>,
  name: string,
): AsyncIterable<Uint8Array> {
  try {
    for await (const chunk of plain as unknown as AsyncIterable<Uint8Array>) yield chunk;
  } catch (error) {
    if (error instanceof UserError || error instanceof AgeProgramError) throw error;
    throw new UserError(
      `${name} is damaged or truncated: its encrypted data does not authenticate; use another copy of the backup (no file was kept).`,
    );
  }
}

/**
 * zstd decoding as a stream: Node's own decoder where it has one (zlib.createZstdDecompress, Node 22.15+); else the
 * zstd program on PATH (facebook/zstd, the decoder talos-backup's files are checked with), in a process of its own so
 * it decodes on the other core while this thread decrypts, hashes and writes; else fzstd (pure JavaScript; Node 20's
 * zlib has no zstd). Measured on the 2-core machine, 128 MiB of a talos-backup .zst: fzstd decodes 92 MB per CPU
 * second, the zstd program 1250 MB (bench/import.mjs, BENCH_IMPORT_STAGES=1, has the whole-import figures).
 */
function decompress(
  stream: AsyncIterable<Uint8Array>,
  opts: Pick<ImportOptions, 'zstdInWorker' | 'zstdDecoder'>,
): AsyncIterable<Uint8Array> {
  const native = (zlib as unknown as { createZstdDecompress?: () => Transform }).createZstdDecompress;
  if (typeof native === 'function' && opts.zstdDecoder === undefined) {
    // pipeline, not pipe: a failure upstream (a damaged age stream) must end the decoder's output with that error.
    const decoder = native();
    pipelineCallback(Readable.from(stream, { objectMode: false }), decoder, () => undefined);
    return zstdErrors(decoder);
  }
  const program = opts.zstdDecoder === 'fzstd' || opts.zstdInWorker !== undefined ? null : zstdProgram();
  if (program) return zstdErrors(zstdInProcess(stream, program));
  const threaded = (opts.zstdInWorker ?? idleCore()) && zstdWorkerAvailable();
  return zstdErrors(threaded ? zstdInWorker(stream) : fzstdDecode(stream));
}

/** The zstd program on PATH, or null. */
function zstdProgram(): string | null {
  return programOnPath('zstd');
}

/** An executable file called `name` in a folder of PATH, or null. */
function programOnPath(name: string): string | null {
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
 * `zstd -d -c -q` with the stream on its stdin and the decoded bytes from its stdout. Its exit status decides: zstd
 * exits non-zero on a damaged frame, a truncated stream (premature end) or a window larger than its memory limit.
 * A failure upstream (a damaged age stream) stops it and is told first; the process never outlives the stream.
 */
function zstdInProcess(input: AsyncIterable<Uint8Array>, program: string): AsyncIterable<Uint8Array> {
  return throughProgram(input, program, ['-d', '-c', '-q'], (end) => {
    if (end.pumpFailure instanceof UserError) return end.pumpFailure;
    if (end.spawnFailure) return end.spawnFailure;
    if (end.code !== 0) return new Error(end.stderr.trim().split('\n')[0] || `zstd exited with ${String(end.code)}`);
    return end.pumpFailure;
  });
}

/**
 * The thread only pays when a core is free for it. Measured on the shared 2-core machine at a load of 11-15 (256 MiB
 * snapshot, .zst.age): 18.4-19.4 s and 150 MB peak in one thread against 21.5-23.9 s and 189 MB with the thread, so
 * it is used unless every core is already taken (the same rule as inspect's split walk, src/etcd/inspect.ts).
 */
function idleCore(): boolean {
  return (loadavg()[0] ?? 0) < availableParallelism();
}

const ZSTD_WORKER_URL = new URL('./zstd-worker.js', import.meta.url);

/** The worker exists only as compiled JavaScript (dist/); the test runner, on the sources, decodes in this thread. */
function zstdWorkerAvailable(): boolean {
  return ZSTD_WORKER_URL.protocol === 'file:' && existsSync(fileURLToPath(ZSTD_WORKER_URL));
}

/** Input is sent in pieces of about this size (fewer messages); at most IN_FLIGHT of them wait to be decoded. */
const TO_WORKER_BYTES = 1024 * 1024;
const IN_FLIGHT = 3;
/** decoded bytes waiting to be written before more input is sent */
const MAX_QUEUED_BYTES = 8 * 1024 * 1024;

/**
 * zstd decoding on zstd-worker.ts's thread: the input is pumped to it while its output is yielded, with both sides
 * bounded (IN_FLIGHT pieces in, MAX_QUEUED_BYTES out), so memory stays flat whatever the size.
 */
async function* zstdInWorker(input: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
  const execArgv = process.execArgv.filter((arg) => !arg.startsWith('--input-type'));
  const worker = new Worker(ZSTD_WORKER_URL, { execArgv });
  const queue: Uint8Array[] = [];
  let queuedBytes = 0;
  let inFlight = 0;
  let finished = false;
  let failure: Error | null = null;
  let waiters: Array<() => void> = [];
  const notify = (): void => {
    const woken = waiters;
    waiters = [];
    for (const wake of woken) wake();
  };
  const changed = (): Promise<void> => new Promise((resolve) => waiters.push(resolve));
  type FromWorker =
    { type: 'out'; bytes: Uint8Array } | { type: 'ack' } | { type: 'done' } | { type: 'error'; message: string };
  worker.on('message', (message: FromWorker) => {
    switch (message.type) {
      case 'out':
        queue.push(message.bytes);
        queuedBytes += message.bytes.length;
        break;
      case 'ack':
        inFlight--;
        break;
      case 'done':
        finished = true;
        break;
      case 'error':
        failure ??= new Error(message.message);
        break;
    }
    notify();
  });
  worker.on('error', (error) => {
    failure ??= error;
    notify();
  });
  worker.on('exit', () => {
    if (!finished) failure ??= new Error('the zstd thread stopped unexpectedly');
    notify();
  });
  let pumpFailure: unknown = null;
  const send = (pieces: Uint8Array[], bytes: number): void => {
    const joined = new Uint8Array(bytes);
    let at = 0;
    for (const piece of pieces) {
      joined.set(piece, at);
      at += piece.length;
    }
    inFlight++;
    worker.postMessage({ type: 'data', bytes: joined }, [joined.buffer]);
  };
  const pump = (async () => {
    let pieces: Uint8Array[] = [];
    let bytes = 0;
    for await (const chunk of input) {
      pieces.push(chunk);
      bytes += chunk.length;
      if (bytes < TO_WORKER_BYTES) continue;
      while ((inFlight >= IN_FLIGHT || queuedBytes >= MAX_QUEUED_BYTES) && !failure) await changed();
      if (failure) return;
      send(pieces, bytes);
      pieces = [];
      bytes = 0;
    }
    if (bytes > 0) send(pieces, bytes);
    worker.postMessage({ type: 'end' });
  })().catch((error: unknown) => {
    pumpFailure = error;
    notify();
  });
  try {
    for (;;) {
      const next = queue.shift();
      if (next) {
        queuedBytes -= next.length;
        notify();
        yield next;
        continue;
      }
      // Upstream failures (a damaged age stream) are theirs to tell, before the decoder's.
      if (pumpFailure) throw pumpFailure;
      if (failure) throw failure;
      if (finished) return;
      await changed();
    }
  } finally {
    await worker.terminate();
    await pump;
  }
}

async function* fzstdDecode(stream: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
  let pending: Uint8Array[] = [];
  let ended = false;
  const decoder = new Decompress((chunk, final) => {
    pending.push(chunk);
    if (final) ended = true;
  });
  for await (const chunk of stream) {
    decoder.push(chunk);
    if (pending.length > 0) {
      const ready = pending;
      pending = [];
      yield* ready;
    }
  }
  decoder.push(new Uint8Array(0), true);
  yield* pending;
  if (!ended) throw new Error('unexpected end of zstd data');
}

async function* zstdErrors(stream: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
  try {
    for await (const chunk of stream) yield chunk as Uint8Array;
  } catch (error) {
    if (error instanceof UserError) throw error;
    throw new ZstdError();
  }
}

class ZstdError extends Error {}

/** Turns a decoder's own failure into the sentence for this file. */
async function* guard(
  stream: AsyncIterable<Uint8Array>,
  name: string,
  layers: DecodeLayer[],
): AsyncIterable<Uint8Array> {
  try {
    yield* stream;
  } catch (error) {
    if (error instanceof ZstdError) {
      throw new UserError(
        `${name} is damaged or truncated: its zstd-compressed data ${layers.includes('age') ? '(after decryption) ' : ''}does not decode; use another copy of the backup (no file was kept).`,
      );
    }
    throw error;
  }
}

/** Counts and hashes what passes. */
class Tap {
  private readonly hash: Hash = createHash('sha256');
  bytes = 0;
  private digest: string | null = null;
  update(chunk: Uint8Array): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
  }
  hex(): string {
    this.digest ??= this.hash.digest('hex');
    return this.digest;
  }
}

async function* tap(
  stream: AsyncIterable<Uint8Array>,
  into: Tap,
  onBytes?: (bytes: number) => void,
): AsyncIterable<Uint8Array> {
  for await (const chunk of stream) {
    into.update(chunk);
    onBytes?.(into.bytes);
    yield chunk;
  }
}

/** Reads at least `n` bytes (or all there is) and gives them back with a stream that starts from them again. */
async function peek(
  stream: AsyncIterable<Uint8Array>,
  n: number,
): Promise<{ head: Buffer; stream: AsyncIterable<Uint8Array> }> {
  const iterator = stream[Symbol.asyncIterator]();
  const taken: Uint8Array[] = [];
  let length = 0;
  let done = false;
  while (length < n) {
    const next = await iterator.next();
    if (next.done) {
      done = true;
      break;
    }
    taken.push(next.value);
    length += next.value.length;
  }
  const head = Buffer.concat(taken.map((c) => Buffer.from(c.buffer, c.byteOffset, c.byteLength)));
  async function* again(): AsyncIterable<Uint8Array> {
    yield* taken;
    if (done) return;
    for (;;) {
      const next = await iterator.next();
      if (next.done) return;
      yield next.value;
    }
  }
  return { head, stream: again() };
}

function startsWith(head: Buffer, prefix: Buffer): boolean {
  return head.length >= prefix.length && head.subarray(0, prefix.length).equals(prefix);
}

/** link() fails with EEXIST where rename() would replace: a file that appeared meanwhile is kept. */
async function placeNoReplace(part: string, target: string): Promise<void> {
  await link(part, target);
  await unlink(part);
}

/** The decoded snapshot reaches the disk before it is verified and named (a crash must not leave a short file). */
async function syncFile(path: string): Promise<void> {
  const handle = await open(path, 'r+');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function writeNew(path: string, text: string): Promise<void> {
  const handle = await open(path, 'wx', 0o600);
  try {
    await handle.writeFile(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** The layers a file starts with, from its first bytes: age (binary) outermost, or zstd; empty for anything else. */
export async function sniffLayer(path: string): Promise<DecodeLayer | null> {
  const handle = await open(path, 'r').catch(() => null);
  if (!handle) return null;
  try {
    const head = Buffer.alloc(SNIFF_BYTES);
    const read = await handle.read(head, 0, head.length, 0).catch(() => null);
    if (!read) return null; // a directory or an unreadable file: inspect says which
    const { bytesRead } = read;
    const got = head.subarray(0, bytesRead);
    if (startsWith(got, AGE_BINARY) || startsWith(got, AGE_ARMORED)) return 'age';
    if (startsWith(got, ZSTD_MAGIC)) return 'zstd';
    return null;
  } finally {
    await handle.close();
  }
}

export interface LayeredInspection {
  /** the decoded snapshot's report, named after the file inspected */
  report: SnapshotReport;
  layers: DecodeLayer[];
  chain: ChainLink[];
}

/**
 * `inspect` of a talos-backup file: decoded into a private temporary folder (0700, under TMPDIR), verified, then
 * removed; the inspected file is only read. Null when the file has no age or zstd layer (inspect it as it is).
 */
export async function inspectLayered(
  path: string,
  opts: {
    identity?: LoadedIdentity;
    signal?: AbortSignal;
    onProgress?(bytes: number, total: number | undefined): void;
  },
): Promise<LayeredInspection | null> {
  if ((await sniffLayer(path)) === null) return null;
  const size = (await stat(path)).size;
  const scratch = await mkdtemp(join(tmpdir(), 'talos-dr-inspect-'));
  try {
    const result = await importSnapshot(
      { name: path, size, open: () => createReadStream(path, { highWaterMark: 1024 * 1024 }) },
      {
        out: join(scratch, 'plain.snap'),
        identity: opts.identity,
        signal: opts.signal,
        onProgress: opts.onProgress,
        sha256File: false,
      },
    );
    return { report: { ...result.report, file: path }, layers: result.layers, chain: result.chain };
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
