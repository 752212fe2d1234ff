/**
 * The import pipeline: a talos-backup file (plain, `.zst`, `.age`, `.zst.age`) from disk or S3, decrypted and
 * decompressed on the fly into a new 0600 file, verified exactly as a taken snapshot (read back from disk: its sha256
 * as the decoder writes it, digestWhileWritten, then inspectSnapshot's walk beside the fsync), then moved into place
 * with link()+unlink() so an existing file is never replaced.
 * Whatever goes wrong, no partial file is left. Nothing here writes a key anywhere. With the age and zstd programs on
 * PATH the bytes do not pass through this process: age reads a local file itself (an S3 object is piped to it), its
 * output goes straight into zstd, and zstd writes the new file; this process hashes the source beside them and checks
 * the age header (and the first chunk) with age-encryption first. The sha256 chain is the file as stored -> the plain
 * snapshot read back.
 *
 * Layers are recognised by their first bytes, not by the name: age's header line, then zstd's frame magic. The
 * decoders live beside this file: age.ts (decryption), zstd.ts (decompression in this process), programs.ts (the age
 * and zstd programs on PATH), streams.ts (the sha256 taps).
 */
import { createReadStream } from 'node:fs';
import { access, link, mkdtemp, open, rm, stat, unlink } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { UserError } from '../errors.js';
import { inspectSnapshot } from '../etcd/inspect.js';
import type { SnapshotKind, SnapshotReport } from '../etcd/types.js';
import { NotASnapshotError } from '../etcd/kind.js';
import { sha256Line } from '../etcd/acquire.js';
import { GrowingFile, digestWhileWritten } from '../etcd/digest.js';
import type { FollowedDigest } from '../etcd/digest.js';
import { Tap, peek, startsWith, tap } from './streams.js';
import { ZstdError, decompress, zstdProgramFor } from './zstd.js';
import { AgeDataError, ZstdProgramError, ageIntoFile, ageZstdIntoFile, zstdIntoFile } from './programs.js';
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
  /**
   * the source is this local file (`open()` is then not called): the age or zstd program reads it itself through a
   * read-only descriptor while this process reads the same descriptor again, by position, for its sha256
   */
  file?: string;
}

export interface ImportOptions {
  /** the plain snapshot to create; must not exist */
  out: string;
  identity?: LoadedIdentity;
  signal?: AbortSignal;
  /** source bytes consumed so far, and the total when known */
  onProgress?(bytes: number, total: number | undefined): void;
  /**
   * what happens after the stream: verification (bytes read back and hashed, of the plain file's size); when the
   * file was hashed as it was written, told once, whole, as the walk begins
   */
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
  let local: LocalSource | null = null;
  await checkTarget(out, opts.sha256File !== false);
  try {
    const sourceTap = new Tap();
    const onSourceBytes = (n: number): void => opts.onProgress?.(n, source.size);
    local = source.file ? await openLocal(source.file, sourceTap, onSourceBytes) : null;
    const raw = tap(local?.stream ?? (await source.open()), sourceTap, onSourceBytes);
    const outer = await peek(raw, SNIFF_BYTES);
    const layers: DecodeLayer[] = [];
    let stream: AsyncIterable<Uint8Array> = outer.stream;
    /** a program chain that decodes the rest and writes the file itself, when there is one */
    let direct: ((fd: number) => Promise<void>) | null = null;
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
      // age-encryption is loaded only for an age file: the wizard's snapshot step imports this module for every run
      const { decrypt, notAuthentic } = await import('./age.js');
      const decryption = await decrypt(stream, opts.identity, source.name, opts.ageDecoder);
      const payload = decryption.payload;
      const zstdProgram = payload && startsWith(Buffer.from(payload.head), ZSTD_MAGIC) ? zstdProgramFor(opts) : null;
      if (payload && zstdProgram) {
        // age's output goes straight into zstd, whose output is the file: no decrypted byte passes through here.
        layers.push('zstd');
        direct = (fd) =>
          besideHash(local, payload.ciphertext, (input) =>
            ageZstdIntoFile(input, payload, zstdProgram, fd, opts.signal),
          ).catch((error: unknown) => {
            if (error instanceof AgeDataError) throw notAuthentic(source.name);
            throw error instanceof ZstdProgramError ? zstdSentence(source.name, layers) : error;
          });
      } else if (payload && !startsWith(Buffer.from(payload.head), ZSTD_MAGIC)) {
        // no zstd inside: age writes the plain file itself
        direct = (fd) =>
          besideHash(local, payload.ciphertext, (input) => ageIntoFile(input, payload, fd, opts.signal)).catch(
            (error: unknown) => {
              throw error instanceof AgeDataError ? notAuthentic(source.name) : error;
            },
          );
      }
      stream = decryption.plain;
    }
    let zstd = layers.includes('zstd');
    if (!direct) {
      const inner = await peek(stream, ZSTD_MAGIC.length);
      stream = inner.stream;
      zstd = startsWith(inner.head, ZSTD_MAGIC);
      if (zstd) layers.push('zstd');
      const program = zstd ? zstdProgramFor(opts) : null;
      const input = stream;
      // zstd reads the file itself only when the file is what it decodes (no age layer before it)
      const fromSource = layers.includes('age') ? null : local;
      if (program) {
        direct = (fd) =>
          besideHash(fromSource, input, (from) => zstdIntoFile(from, program, fd, opts.signal)).catch(
            (error: unknown) => {
              throw error instanceof ZstdProgramError ? zstdSentence(source.name, layers) : error;
            },
          );
      }
    }
    // What this process writes itself it also hashes, for the read-back to match; the zstd program writes alone.
    const plainTap = direct ? null : new Tap();
    partCreated = true;
    const handle = await open(part, 'wx', 0o600);
    // The plain file is read back and hashed while it is written, so that only the tree walk is left once the decoder
    // is done (issue 16); it is still the file on disk that is hashed, and verified below.
    const written = new GrowingFile();
    let follower: Follower | null = null;
    // The walk's module (with the native CRC-32C library) is loaded while the decoder runs, not after it.
    void import('../etcd/status.js').catch(() => undefined);
    try {
      follower = await followWritten(part, written, opts);
      if (direct) {
        await direct(handle.fd);
      } else {
        const plain = tap(zstd ? decompress(stream, opts) : stream, plainTap as Tap);
        await pipeline(Readable.from(guard(plain, source.name, layers), { objectMode: false }), intoHandle(handle), {
          signal: opts.signal,
        });
      }
      written.finish(plainTap ? plainTap.bytes : (await handle.stat()).size);
    } catch (error) {
      written.stop();
      await follower?.close();
      await handle.close().catch(() => undefined);
      throw error;
    }
    if (local) await local.unchanged(sourceTap.bytes, source.name);
    // Verified from the bytes on disk (SAFETY rule 2) while the fsync makes them durable (both through the page
    // cache, as a taken snapshot is: src/etcd/acquire.ts); the file is named only after both have succeeded.
    // A decoded file that is not bbolt is refused from its first pages (what was hashed as it was written is dropped,
    // and no "verifying" progress is told).
    const [synced, verified] = await Promise.allSettled([
      handle.sync().finally(() => handle.close()),
      inspectSnapshot(part, {
        signal: opts.signal,
        onProgress: opts.onVerifyProgress,
        refuseOtherFormats: true,
        hashedWhileWritten: follower.hashing,
      }).finally(() => {
        written.stop();
        return follower?.close();
      }),
    ]);
    if (verified.status === 'rejected') {
      const error: unknown = verified.reason;
      if (error instanceof NotASnapshotError) throw notSnapshot(source.name, layers, error.kind, error.message);
      throw error;
    }
    if (synced.status === 'rejected') throw synced.reason;
    const report = verified.value;
    if (plainTap && report.sha256 !== plainTap.hex()) {
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
    // The two ends: the file as stored and the plain snapshot. (Up to 0dae2f3 the chain also held the decrypted .zst's
    // sha256; hashing it meant relaying those bytes through this process between age and zstd.)
    const chain: ChainLink[] = [
      { stage: 'source', layers: [...layers], sha256: sourceTap.hex(), bytes: sourceTap.bytes },
      { stage: 'plain', layers: [], sha256: report.sha256, bytes: report.size },
    ];
    await local?.handle.close();
    local = null;
    return { source: source.name, file: out, sha256File: shaFile, layers, chain, report: { ...report, file: out } };
  } catch (error) {
    await local?.handle.close().catch(() => undefined);
    local = null;
    if (partCreated) await unlink(part).catch(() => undefined);
    if (error instanceof UserError) throw error;
    if (opts.signal?.aborted) throw new UserError('Stopped before the import finished; no file was written.', 3);
    throw asSentence(error, source.name, out);
  }
}

const MiB = 1024 * 1024;

/** A local source file, open read-only once: the programs read it through this descriptor, this process by position. */
interface LocalSource {
  handle: FileHandle;
  /** the file from its first byte, for the header checks (through the tap) */
  stream: AsyncIterable<Uint8Array>;
  /**
   * Hashes the rest of the file into the tap, from where the header checks left it, through two reused buffers: the
   * stream's fresh 1 MiB buffer per read (514 of them for a 1 GiB snapshot's .zst.age) stayed in memory until
   * garbage collection, and glibc kept what they had taken: 20-25 MB of the import's peak (bench/import.mjs).
   */
  hashRest(): Promise<void>;
  /** throws when the file changed while it was read (its size, inode or time of change), or was not read whole */
  unchanged(hashed: number, name: string): Promise<void>;
}

async function openLocal(file: string, into: Tap, onBytes: (bytes: number) => void): Promise<LocalSource> {
  const handle = await open(file, 'r');
  const before = await handle.stat();
  const stream = handle.createReadStream({ start: 0, autoClose: false, highWaterMark: MiB });
  return {
    handle,
    stream,
    async hashRest() {
      // The stream may have read ahead of what went through the tap (up to its 1 MiB, then it waits: nothing reads
      // it again); from here on this reads by position. Not destroyed: that would close the descriptor.
      const buffers = [Buffer.allocUnsafe(MiB), Buffer.allocUnsafe(MiB)];
      let at = into.bytes;
      let turn = 0;
      let reading = handle.read(buffers[0] as Buffer, 0, MiB, at);
      for (;;) {
        const { bytesRead, buffer } = await reading;
        if (bytesRead === 0) return;
        at += bytesRead;
        turn ^= 1;
        reading = handle.read(buffers[turn] as Buffer, 0, MiB, at);
        into.update(buffer.subarray(0, bytesRead));
        onBytes(into.bytes);
      }
    },
    async unchanged(hashed, name) {
      const after = await handle.stat();
      const same = after.size === before.size && after.ino === before.ino && after.ctimeMs === before.ctimeMs;
      if (!same || hashed !== after.size) {
        throw new UserError(`${name} changed while it was imported; import it again once nothing writes to it.`);
      }
    },
  };
}

/**
 * Runs `decode` on the local file's descriptor (the program reads the file itself, from offset 0: every read here is
 * by position) while the rest of the file, from where the header checks left it, is hashed (LocalSource.hashRest);
 * without a local file, `decode` gets `rest` (the tapped source stream) through a pipe as before. The decoder's
 * failure comes first.
 */
async function besideHash(
  local: LocalSource | null,
  rest: AsyncIterable<Uint8Array>,
  decode: (input: AsyncIterable<Uint8Array> | number) => Promise<void>,
): Promise<void> {
  if (!local) return decode(rest);
  const hashing = local.hashRest();
  const [decoded, hashed] = await Promise.allSettled([decode(local.handle.fd), hashing]);
  if (decoded.status === 'rejected') throw decoded.reason;
  if (hashed.status === 'rejected') throw hashed.reason;
}

/** The plain file being hashed as it is written (digestWhileWritten), through a read-only descriptor of its own. */
interface Follower {
  hashing: Promise<FollowedDigest>;
  /** waits for the hashing to end (stop the GrowingFile first, unless it was finished) and closes the descriptor */
  close(): Promise<void>;
}

async function followWritten(part: string, written: GrowingFile, opts: ImportOptions): Promise<Follower> {
  const reader = await open(part, 'r');
  // No progress of its own: the source's is shown while the decoder writes, and inspect tells the verification's.
  const hashing = digestWhileWritten(reader.fd, written, { signal: opts.signal });
  hashing.catch(() => undefined);
  let closing: Promise<void> | null = null;
  return {
    hashing,
    close() {
      closing ??= hashing.then(
        () => reader.close(),
        () => reader.close(),
      );
      return closing;
    },
  };
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

/** Turns a decoder's own failure into the sentence for this file. */
async function* guard(
  stream: AsyncIterable<Uint8Array>,
  name: string,
  layers: DecodeLayer[],
): AsyncIterable<Uint8Array> {
  try {
    yield* stream;
  } catch (error) {
    throw error instanceof ZstdError ? zstdSentence(name, layers) : error;
  }
}

function zstdSentence(name: string, layers: DecodeLayer[]): UserError {
  return new UserError(
    `${name} is damaged or truncated: its zstd-compressed data ${layers.includes('age') ? '(after decryption) ' : ''}does not decode; use another copy of the backup (no file was kept).`,
  );
}

/** link() fails with EEXIST where rename() would replace: a file that appeared meanwhile is kept. */
async function placeNoReplace(part: string, target: string): Promise<void> {
  await link(part, target);
  await unlink(part);
}

/** A stream into an open file that leaves it open (its fsync and close come after): each chunk written whole. */
function intoHandle(handle: FileHandle): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, done) {
      writeAll(handle, chunk).then(() => done(), done);
    },
  });
}

async function writeAll(handle: FileHandle, chunk: Buffer): Promise<void> {
  for (let at = 0; at < chunk.length;) at += (await handle.write(chunk, at, chunk.length - at)).bytesWritten;
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
      { name: path, size, file: path, open: () => createReadStream(path, { highWaterMark: MiB }) },
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
