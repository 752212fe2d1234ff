/**
 * Taking a snapshot off a node and keeping it safe (SAFETY rules 1, 2, 9):
 * the bytes go to `FILE.part` beside the target (mode 0600, exclusive create), are fsync'd, re-read and checked
 * (an API snapshot must carry a valid sha256 trailer; a raw copy must be a sound bbolt database), and only then are
 * moved into place with link()+unlink(), which fails instead of replacing a file that already exists, with
 * `FILE.sha256` beside it. Anything that goes wrong (a cut stream, an in-band error, a full disk, Ctrl-C) removes the
 * .part, so no file that looks complete is ever left behind.
 *
 * The sha256 is also computed from the bytes as they arrive, and the file read back from disk must hash the same: a
 * disk that damaged what was written is caught before anything trusts the file.
 */
import { createHash } from 'node:crypto';
import { createGunzip } from 'node:zlib';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { link, lstat, open, unlink } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { EXIT, UserError } from '../errors.js';
import { diskOf, diskReason } from '../journal/local-disk.js';
import { nodeText } from '../text/sanitize.js';
import type { TalosClient } from '../talos/types.js';
import type { AcquiredSnapshot, SnapshotReport } from './types.js';
import type * as InspectModule from './inspect.js';
import { TRAILER_SIZE, hasTrailer } from './trailer.js';
import { hasBoltMagic } from './bbolt.js';
import { detectKind } from './kind.js';
import type { FileDigest } from './trailer.js';

/**
 * The verifier (the bbolt reader and its native CRC-32C) is loaded once the first bytes have arrived, while the
 * rest stream in: the main thread has time to spare then, and the request goes out without waiting for it.
 */
let inspectLoading: Promise<typeof InspectModule> | undefined;
const loadInspect = () => (inspectLoading ??= import('./inspect.js'));

/** Where etcd keeps its database on a Talos node; what `--raw` copies. */
export const ETCD_DB_PATH = '/var/lib/etcd/member/snap/db';

export interface AcquireOptions {
  /** the target file (or an existing folder for it); default: `dir`/etcd-NODE-UTCTIME.snapshot (.db for a raw copy) */
  outFile?: string | undefined;
  dir: string;
  /** copy the raw database file instead of asking etcd for a consistent snapshot */
  raw: boolean;
  signal?: AbortSignal | undefined;
  /** bytes written so far */
  onProgress?: ((bytes: number) => void) | undefined;
  /** the clock for the default name (tests) */
  now?: (() => Date) | undefined;
}

/** `etcd-127.0.0.2-20261123T233000Z.snapshot`: node and UTC time, characters safe in any file system. */
export function defaultSnapshotName(node: string, raw: boolean, when: Date): string {
  const stamp = when
    .toISOString()
    .replace(/\.\d{3}Z$/, 'Z')
    .replace(/[-:]/g, '');
  const safeNode = node.replace(/[^A-Za-z0-9._-]/g, '_');
  return `etcd-${safeNode}-${stamp}.${raw ? 'db' : 'snapshot'}`;
}

/** The sha256sum line for a file, so `sha256sum -c FILE.sha256` checks it from its folder. */
export function sha256Line(sha256: string, file: string): string {
  return `${sha256}  ${basename(file)}\n`;
}

export async function acquireSnapshot(
  client: TalosClient,
  node: string,
  opts: AcquireOptions,
): Promise<AcquiredSnapshot> {
  const target = await targetPath(node, opts);
  const checksumFile = `${target}.sha256`;
  const part = `${target}.part`;
  await refuseExisting(target);
  await refuseExisting(checksumFile);
  const handle = await createPart(part);
  let placed = false;
  // the file being written when a local write fails: the sentence names it (and its disk), not always the .part
  let writing = part;
  try {
    const { bytes, digest } = await receive(client, node, opts, handle);
    // The fsync and the verification's walk run side by side (the walk reads what the fsync makes durable, through
    // the page cache either way); the file is placed only after both have succeeded.
    const [synced, verified] = await Promise.allSettled([
      handle.sync().then(() => handle.close()),
      verifyReceived(part, { bytes, digest }, opts.signal),
    ]);
    if (synced.status === 'rejected') throw synced.reason;
    if (verified.status === 'rejected') throw verified.reason;
    const report = verified.value;
    requireSound(report, node, opts.raw, bytes);
    await placeWithoutOverwriting(part, target);
    placed = true;
    await unlink(part);
    writing = checksumFile;
    await writeChecksumFile(checksumFile, sha256Line(report.sha256, target));
    writing = dirname(target);
    await syncDirectory(dirname(target));
    return {
      file: target,
      sha256File: checksumFile,
      report: { ...report, file: target },
      method: opts.raw ? 'raw' : 'api',
      node,
      bytes,
    };
  } catch (error) {
    await handle.close().catch(() => undefined);
    await unlink(part).catch(() => undefined);
    // A snapshot without its .sha256 is not what we promise: this run made it, so this run takes it back.
    if (placed) await unlink(target).catch(() => undefined);
    throw acquisitionError(error, { node, part, writing, raw: opts.raw, signal: opts.signal });
  }
}

/** -o FILE as given; -o naming an existing folder, or no -o, puts the default name in that folder. */
async function targetPath(node: string, opts: AcquireOptions): Promise<string> {
  const name = defaultSnapshotName(node, opts.raw, (opts.now ?? (() => new Date()))());
  if (opts.outFile === undefined) return resolve(opts.dir, name);
  const given = resolve(opts.dir, opts.outFile);
  const isFolder = await lstat(given).then(
    (info) => info.isDirectory(),
    () => false,
  );
  return isFolder ? join(given, name) : given;
}

async function refuseExisting(path: string): Promise<void> {
  const exists = await lstat(path).then(
    () => true,
    () => false,
  );
  if (exists) {
    throw new UserError(`${path} already exists and is never overwritten; choose another name with -o FILE.`);
  }
}

async function createPart(part: string): Promise<FileHandle> {
  try {
    return await open(part, 'wx', 0o600);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') {
      throw new UserError(
        `${part} is left over from an interrupted attempt; remove it, or choose another name with -o FILE.`,
      );
    }
    if (code === 'ENOENT') {
      throw new UserError(
        `The folder ${dirname(part)} does not exist; create it or choose another place with -o FILE.`,
      );
    }
    if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
      throw new UserError(`Cannot write in ${dirname(part)} (${code}); choose a writable place with -o FILE.`);
    }
    throw error;
  }
}

/**
 * Streams the node's bytes into the .part; returns how many were written and, for a raw copy, their digest.
 * Each chunk is written before the next is asked for: that bounds memory, and it is what lets the
 * snapshot stream hand out views of a few reused buffers (`reuseBuffers`) instead of a new buffer per chunk, whose
 * memory would only come back at the next garbage collection. The stream keeps receiving meanwhile.
 */
async function receive(
  client: TalosClient,
  node: string,
  opts: AcquireOptions,
  handle: FileHandle,
): Promise<{ bytes: number; digest: FileDigest | null }> {
  // An API snapshot proves itself: its sha256 trailer is checked on the file read back from disk. A raw copy has no
  // trailer, so its bytes are hashed as they arrive and the file read back must hash the same.
  const digest = opts.raw ? new ArrivalDigest() : null;
  let bytes = 0;
  const head = new HeadCheck(node, opts.raw);
  const write = async (chunk: Buffer): Promise<void> => {
    // awaited by the verification, which reports a failure to load
    if (bytes === 0) loadInspect().catch(() => undefined);
    // stop reading as soon as the bytes are known not to be a bbolt database (a gzip bomb was written out whole)
    head.add(chunk);
    digest?.update(chunk);
    await writeAll(handle, chunk);
    bytes += chunk.length;
    opts.onProgress?.(bytes);
  };
  if (opts.raw) {
    // The tar extractor may hold on to chunks, so the copy stream hands out buffers of its own.
    await extractSingleFile(client.copy(node, ETCD_DB_PATH, { signal: opts.signal }), basename(ETCD_DB_PATH), write);
  } else {
    for await (const chunk of client.etcdSnapshot(node, { signal: opts.signal, reuseBuffers: true }))
      await write(chunk);
  }
  opts.signal?.throwIfAborted();
  head.end();
  return { bytes, digest: digest?.digest() ?? null };
}

/** Page sizes bbolt may use: meta page 1 sits at one of them when meta page 0 is damaged. */
const META_1_OFFSETS = [4096, 8192, 16384, 32768, 65536];
const HEAD_CHECK_BYTES = 65536 + 24;

/**
 * Decides from the first bytes whether a snapshot stream is a bbolt database (meta magic on page 0, or on page 1 at
 * any page size bbolt uses) and refuses the rest at once when it is not: what is not bbolt is never uploaded, so
 * nothing past its head needs to be written or read.
 */
class HeadCheck {
  private head: Buffer[] = [];
  private held = 0;
  private decided = false;
  constructor(
    private readonly node: string,
    private readonly raw: boolean,
  ) {}

  add(chunk: Buffer): void {
    if (this.decided) return;
    this.head.push(Buffer.from(chunk.subarray(0, HEAD_CHECK_BYTES - this.held)));
    this.held += Math.min(chunk.length, HEAD_CHECK_BYTES - this.held);
    if (this.held >= HEAD_CHECK_BYTES) this.decide();
  }

  end(): void {
    if (!this.decided && this.held > 0) this.decide();
  }

  private decide(): void {
    this.decided = true;
    const head = Buffer.concat(this.head);
    this.head = [];
    if (hasBoltMagic(head, 0) || META_1_OFFSETS.some((at) => hasBoltMagic(head, at))) return;
    const { kind } = detectKind(head, Math.max(head.length, 1));
    const what = kind === 'unknown' || kind === 'bbolt' ? 'not a bbolt database' : `${kind} data, not a bbolt database`;
    throw new UserError(
      `The ${this.raw ? 'raw copy' : 'snapshot'} from ${this.node} is ${what}: it was refused after its first ${head.length} bytes and nothing was kept. Check the node's etcd data, or take the snapshot from another node.`,
    );
  }
}

/**
 * sha256 of a stream of bytes and its trailer check, exactly as trailer.ts's digest of the written file computes
 * them: the last TRAILER_SIZE bytes are held back until more arrive, since only the end tells whether they are the
 * trailer (sha256 of everything before them) or data.
 */
export class ArrivalDigest {
  private readonly hash = createHash('sha256');
  private readonly tail = Buffer.alloc(TRAILER_SIZE);
  private tailLength = 0;
  /** bytes seen so far */
  size = 0;

  update(chunk: Buffer): void {
    this.size += chunk.length;
    if (chunk.length >= TRAILER_SIZE) {
      if (this.tailLength > 0) this.hash.update(this.tail.subarray(0, this.tailLength));
      this.hash.update(chunk.subarray(0, chunk.length - TRAILER_SIZE));
      chunk.copy(this.tail, 0, chunk.length - TRAILER_SIZE);
      this.tailLength = TRAILER_SIZE;
      return;
    }
    // A short chunk: hash what it pushes out of the held-back tail, then append it.
    const spill = Math.max(0, this.tailLength + chunk.length - TRAILER_SIZE);
    if (spill > 0) {
      this.hash.update(this.tail.subarray(0, spill));
      this.tail.copyWithin(0, spill, this.tailLength);
      this.tailLength -= spill;
    }
    chunk.copy(this.tail, this.tailLength);
    this.tailLength += chunk.length;
  }

  /** The digest of everything seen; call once, at the end. */
  digest(): FileDigest {
    const tail = this.tail.subarray(0, this.tailLength);
    if (!hasTrailer(this.size)) {
      this.hash.update(tail);
      return { sha256: this.hash.digest('hex'), trailer: 'absent', trailerExpected: null, trailerComputed: null };
    }
    const body = this.hash.copy().digest();
    this.hash.update(tail);
    return {
      sha256: this.hash.digest('hex'),
      trailer: body.equals(tail) ? 'verified' : 'mismatch',
      trailerExpected: tail.toString('hex'),
      trailerComputed: body.toString('hex'),
    };
  }
}

/**
 * Verifies the written, synced file by reading it back (SAFETY rule 2: written, fsync'd, re-read): `inspectSnapshot`
 * walks its structure, computes the status fields, hashes the whole file from disk and checks an API snapshot's
 * trailer. The size must be that of the bytes received, and a raw copy's sha256 that of the bytes hashed on arrival:
 * the re-read is what catches a disk that damaged the file, since a damaged page the walk never reaches would still
 * fail etcd's own hash check at restore, after the wipe.
 */
async function verifyReceived(
  part: string,
  received: { bytes: number; digest: FileDigest | null },
  signal: AbortSignal | undefined,
): Promise<SnapshotReport> {
  const { digest } = received;
  const { inspectSnapshot } = await loadInspect();
  const report = await inspectSnapshot(part, signal ? { signal } : {});
  if (report.size !== received.bytes || (digest && report.sha256 !== digest.sha256)) {
    const hashes = digest ? `, sha256 ${report.sha256} instead of ${digest.sha256}` : '';
    throw new UserError(
      `${part} does not hold the bytes that were received (${report.size} of ${received.bytes} bytes${hashes}): the disk or the file system damaged it; nothing was kept. Check the disk and run again.`,
    );
  }
  return report;
}

async function writeAll(handle: FileHandle, chunk: Buffer): Promise<void> {
  let done = 0;
  while (done < chunk.length) {
    const { bytesWritten } = await handle.write(chunk, done, chunk.length - done);
    done += bytesWritten;
  }
}

/** Raised for a .tar.gz that does not hold exactly the one file we asked for. */
class ArchiveContentError extends Error {}

/**
 * Talos's Copy streams a .tar.gz; for a single-file root it holds one entry named after the file. Gunzip, read the
 * tar, hand that entry's bytes to `sink`. Any other entry, a missing entry, a cut archive or an error on the stream
 * (including the in-band error Talos sends after the archive) fails the whole copy.
 */
export async function extractSingleFile(
  source: AsyncIterable<Buffer>,
  name: string,
  sink: (chunk: Buffer) => Promise<void>,
): Promise<void> {
  // Loaded here: only a raw copy reads a tar, and the API snapshot's start-up need not pay for it.
  const { extract: tarExtract } = await import('tar-stream');
  const extract = tarExtract();
  const feeding = pipeline(Readable.from(source), createGunzip(), extract);
  // Whichever fails first is reported; the other must not become an unhandled rejection.
  feeding.catch(() => undefined);
  let found = 0;
  for await (const entry of extract) {
    const header = entry.header;
    if (header.type !== 'file' || header.name !== name || found > 0) {
      entry.resume();
      throw new ArchiveContentError(
        `the archive holds "${nodeText(header.name, 200)}" (${nodeText(header.type, 40)}) where only the file "${name}" was expected`,
      );
    }
    found++;
    let received = 0;
    for await (const chunk of entry as AsyncIterable<Buffer>) {
      received += chunk.length;
      await sink(chunk);
    }
    if (received !== header.size) {
      throw new ArchiveContentError(`the archive entry "${name}" ended after ${received} of ${header.size} bytes`);
    }
  }
  await feeding;
  if (found === 0) throw new ArchiveContentError(`the archive holds no file named "${name}"`);
}

/** An API snapshot must carry its valid trailer; a raw copy must be a sound bbolt database. */
function requireSound(report: SnapshotReport, node: string, raw: boolean, bytes: number): void {
  const firstProblem = report.problems[0] ?? '';
  if (raw) {
    if (report.kind === 'bbolt' && report.structure === 'ok') return;
    throw new UserError(
      `The raw database copy from ${node} is not a sound etcd database (${stripPeriod(firstProblem)}); nothing was kept. Try again, or take a consistent snapshot without --raw.`,
    );
  }
  if (report.integrity === 'absent') {
    throw new UserError(
      `The snapshot stream from ${node} ended early (${bytes} bytes, no sha256 trailer): it was cut; nothing was kept. Run the command again.`,
    );
  }
  if (report.integrity === 'mismatch') {
    throw new UserError(
      `The snapshot from ${node} does not match its own sha256 trailer: it was damaged or cut in transit; nothing was kept. Run the command again.`,
    );
  }
  if (!report.usable) {
    throw new UserError(
      `The snapshot from ${node} is not a sound etcd database (${stripPeriod(firstProblem)}); nothing was kept. Try another node, or --raw.`,
    );
  }
}

function stripPeriod(sentence: string): string {
  return sentence.replace(/\.$/, '');
}

/** link() fails with EEXIST where rename() would silently replace: a file that appeared meanwhile is kept. */
async function placeWithoutOverwriting(part: string, target: string): Promise<void> {
  try {
    await link(part, target);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new UserError(
        `${target} appeared while the snapshot was being taken and was left alone; nothing was kept. Choose another name with -o FILE.`,
      );
    }
    throw error;
  }
}

/** Writes the .sha256 completely or not at all: a failed write (a full disk) removes the file it created. */
async function writeChecksumFile(path: string, line: string): Promise<void> {
  const handle = await open(path, 'wx', 0o600);
  try {
    await handle.writeFile(line);
    await handle.sync();
    await handle.close();
  } catch (error) {
    await handle.close().catch(() => undefined);
    await unlink(path).catch(() => undefined);
    throw error;
  }
}

/** Makes the new directory entries durable (the rename/link is only safe once the folder is synced). */
async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } catch {
    // Some file systems refuse fsync on a directory; the files themselves are already synced.
  } finally {
    await handle.close();
  }
}

function acquisitionError(
  error: unknown,
  ctx: { node: string; part: string; writing: string; raw: boolean; signal?: AbortSignal | undefined },
): UserError {
  if (ctx.signal?.aborted) {
    return new UserError('Stopped by you: the partial snapshot was removed and nothing was kept.', EXIT.stoppedByUser);
  }
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new UserError(
      `Writing ${ctx.writing} failed: ${diskReason(code)} (${diskOf(ctx.writing)}), so nothing was kept. Free some space (or choose another place with -o FILE) and run again.`,
    );
  }
  if (error instanceof UserError) {
    if (/nothing was kept/.test(error.message)) return error;
    return new UserError(
      `${stripPeriod(error.message)}; the partial snapshot was removed and nothing was kept.`,
      error.exitCode,
    );
  }
  if (error instanceof ArchiveContentError) {
    return new UserError(`The raw copy from ${ctx.node} is not what was expected: ${error.message}; nothing was kept.`);
  }
  const detail = error instanceof Error ? error.message : String(error);
  if (ctx.raw && isArchiveFailure(error)) {
    return new UserError(
      `The raw copy stream from ${ctx.node} is not a complete .tar.gz (${detail}): it was cut or damaged; nothing was kept. Run the command again.`,
    );
  }
  if (code) {
    return new UserError(
      `Writing ${ctx.writing} failed: ${diskReason(code)} (${diskOf(ctx.writing)}), so nothing was kept. Check the local disk and run again.`,
    );
  }
  return new UserError(
    `Taking the snapshot from ${ctx.node} failed (${detail}); nothing was kept. Run the command again.`,
  );
}

/** zlib and tar-stream failures: a cut or damaged archive. */
function isArchiveFailure(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code ?? '';
  const message = error instanceof Error ? error.message : '';
  return code.startsWith('Z_') || /unexpected end|invalid tar|header/i.test(message);
}
