/**
 * Offline verification of a snapshot file: what it is, whether its bbolt structure holds, the status fields exactly
 * as etcd prints them, and the sha256 trailer. The file is only ever opened read-only (SAFETY rule 1).
 *
 * The sha256 pass (large sequential reads) and the tree walk (positional page reads) run side by side: the walk
 * pauses every few thousand pages so the hashing keeps going.
 */
import { existsSync } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { availableParallelism, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { UserError } from '../errors.js';
import type { SnapshotReport } from './types.js';
import { BoltWalker, hasBoltMagic, openBolt, runWalk } from './bbolt.js';
import type { OpenedBolt, PendingSubtree, SubtreeResult, SubtreeSplitter, WalkResult } from './bbolt.js';
import { HEAD_BYTES, NotASnapshotError, detectKind } from './kind.js';
import type { KindVerdict } from './kind.js';
import type { KeyBucketTail, StatusFields } from './status.js';
import { TRAILER_SIZE, hasTrailer } from './trailer.js';
import { digestOpenFile, hashesInWorker } from './digest.js';
import type { FollowedDigest } from './digest.js';
import { PieceRing, RingReader } from './piece-ring.js';
import type { FileDigest } from './trailer.js';

export interface InspectOptions {
  signal?: AbortSignal;
  /** bytes hashed so far and the file size */
  onProgress?(bytes: number, total: number): void;
  /** where the sha256 pass runs; default: its own thread for large files (see digest.ts) */
  hashInWorker?: boolean;
  /**
   * Refuse a file that is not a bbolt database (compressed, encrypted, an archive, empty or unknown data, or meta
   * pages that cannot be opened) with NotASnapshotError, decided from its first pages before any hashing starts: nothing past its head is read (a
   * 3 GiB gzip bomb was hashed to its end before it was refused). Without it such a file gets a report, whose sha256
   * of the whole file means reading all of it.
   */
  refuseOtherFormats?: boolean;
  /**
   * The file's sha256 as it was hashed while being written (digest.ts, digestWhileWritten: the import's plain
   * snapshot, read back from disk as zstd wrote it): used when it covers the file's whole size as it is now; otherwise
   * (it failed, or the file is longer or shorter than what it hashed) the file is hashed here as usual.
   */
  hashedWhileWritten?: Promise<FollowedDigest>;
  /**
   * whether the walk takes its leaves from the hashing thread's ring (piece-ring.ts) when the hash has a thread of its
   * own; default: readOnceBesideHash's rule (one walking thread, a busy machine). Tests run both paths with it.
   */
  readOnce?: boolean;
}

/** Where bbolt may find meta page 1 when meta 0 is damaged (v1.3.7+ probes these; 1.3.6 uses 4096). */
const CANDIDATE_PAGE_SIZES = [4096, 8192, 16384, 32768, 65536];

/** What the walk found, when the file is bbolt at all. */
interface StructureVerdict {
  ok: boolean;
  problems: string[];
  status: StatusFields | null;
  totalSize: number | null;
  walk: WalkResult | null;
}

/**
 * Inspects the file at `path`. Throws UserError (one sentence) when there is no readable file there; every problem
 * with the file's content is in the report instead.
 */
export async function inspectSnapshot(path: string, opts: InspectOptions = {}): Promise<SnapshotReport> {
  await requireRegularFile(path);
  const handle = await openReadOnly(path);
  let digesting: Promise<FileDigest> | null = null;
  let ring: PieceRing | null = null;
  try {
    const { size } = await handle.stat();
    await refuseSizelessContent(handle, path, size);
    const head = await readHead(handle, size);
    const kind = detectKind(head, size, !hasBoltMagic(head, 0) && (await hasMeta1Magic(handle, size)));
    if (opts.refuseOtherFormats) refuseFromHead(kind, handle.fd, size);
    const followed = await opts.hashedWhileWritten?.catch(() => null);
    let split: false | undefined;
    if (followed?.size === size) {
      // Hashed already, as it was written: the walk alone is left, and may split (see checkStructure).
      opts.onProgress?.(size, size);
      digesting = Promise.resolve(followed.digest);
    } else {
      const hashThread = hashesInWorker(size, opts.hashInWorker);
      split = splitBesideHash(hashThread);
      // The walk takes its leaves from the hashing thread's pieces (read once) when it walks in one thread beside it
      // on a busy machine.
      const readOnce = hashThread && (opts.readOnce ?? readOnceBesideHash(hashThread, split));
      ring = kind.kind === 'bbolt' && readOnce ? PieceRing.create(size) : null;
      digesting = digestOpenFile(handle, size, {
        signal: opts.signal,
        onProgress: opts.onProgress,
        inWorker: opts.hashInWorker,
        ring,
      });
    }
    let structure: StructureVerdict;
    try {
      structure =
        kind.kind === 'bbolt'
          ? await checkStructure(handle.fd, size, { signal: opts.signal, split, ring: ring && new RingReader(ring) })
          : notBbolt(kind.problem);
    } finally {
      // However the walk ended, the hash must not wait for it to read the rest.
      ring?.releaseAll();
    }
    const digest = await digesting;
    return buildReport(path, size, kind.kind, structure, digest);
  } finally {
    // The hashing thread must not wait for a walk that is over; and it reads through the same handle: let it settle
    // before closing, whatever happened to the walk.
    ring?.releaseAll();
    await digesting?.catch(() => undefined);
    await handle.close();
  }
}

/**
 * What its first pages already show is no etcd snapshot: another format, or bbolt meta pages that cannot be opened
 * (no valid magic, an unknown version, both checksums wrong, an impossible page size). Read: the head and the two
 * meta pages; nothing else.
 */
function refuseFromHead(kind: KindVerdict, fd: number, size: number): void {
  if (kind.kind !== 'bbolt') throw new NotASnapshotError(kind);
  const opened = openBolt(fd, size);
  if (opened.ok) return;
  throw new NotASnapshotError({
    kind: 'bbolt',
    problem: `The file is not a usable etcd snapshot: its bbolt database cannot be opened (${opened.problem}); take a new snapshot or give another file.`,
  });
}

/**
 * From this size on, the `key` bucket's tree may be walked by two threads (the second half of its root's children on
 * a worker, see walk-worker.ts): below it the thread's start-up (~30 ms) costs more than it saves.
 */
export const SPLIT_MIN_BYTES = 64 * 1024 * 1024;

/**
 * A second walking thread only pays when a core is left for it. Measured on the shared 2-core machine, 1 GiB: with
 * about a core idle the split walk took 0.84-1.15 s against 1.41-1.69 s in one thread; under a load of 7-12 it was
 * slower than one thread (medians 4.1 s against 3.1 s) and cost ~0.45 s more CPU (a second start-up and JIT warm-up).
 * The 1-minute load average lags and counts work that just ended (a benchmark's own back-to-back runs kept it at
 * 1.3-1.7 on an otherwise idle 2-core machine, where splitting still won), so the walk splits unless every core is
 * already taken.
 */
function idleCore(): boolean {
  return (loadavg()[0] ?? 0) < availableParallelism();
}

/**
 * Whether inspect splits its walk while the sha256 runs on a thread of its own: undefined leaves it to checkStructure
 * (a hash in this thread leaves a core to a second walker). Beside a hashing thread a second walker makes three busy
 * threads, which only pays with a third core: on two, hash and walk already fill both, the split adds a start-up and
 * JIT warm-up (~0.1-0.2 s of CPU at 1 GiB) and takes the hash's core in turns, and the hash is the floor the whole
 * verification is held to. Its heap would also take the whole verification past 100 MB: the status walk of 1 GiB
 * peaked at 97 MB in two threads against 74 MB in one (bench/inspect.mjs), inspect at 84-87 MB without it.
 */
export function splitBesideHash(hashThread: boolean, cores = availableParallelism()): false | undefined {
  return hashThread && cores < 3 ? false : undefined;
}

/**
 * Whether the walk reads its leaves from the hashing thread's ring (piece-ring.ts) instead of the file: only when it
 * walks in one thread beside a hashing thread, and only while the machine is busy: a 1-minute load of 4 per core or
 * more (this run's own two threads keep it near 2 on an idle 2-core machine).
 *
 * The ring ties the two threads together: the hash refills a slot only once the walk has moved past it, and the
 * bytes cross from the hashing core to the walking one. On an idle machine, where each thread has a core and the
 * sha256 alone sets the time, that costs the hash its pace: 1 GiB, interleaved runs, rounds where openssl ran at its
 * own speed (0.81 s): 1.09 s with the ring against 0.96-1.02 s for the build before it (63a1f5b; 7 rounds each, every
 * run without the ring faster than every run with it); the ring's hash waited for room 0.19-0.23 s in 170 waits at a
 * load of 4. Under the load of other work, where each thread gets slices of a core, the tie pays: 2.58 s against
 * 3.95 s (20 rounds, load 7.7-14.7), 2.66 s against 3.81 s with the ring switched off (30 rounds, load 8-17), 3.75
 * against 5.84 s (9 rounds, load 12-15). Between loads of 4 and 8 the ring lost in two sets of three: 1.60 against
 * 1.26 s (15 rounds, load 4.1-8.4), 1.70 against 1.17 s (9 rounds, load 4.7-6.3); 2.17 against 2.75 s once (12
 * rounds, load 5.3-8.3). A hash that never waits (a piece with no room hashed in its own buffer, the walk reading it from the
 * file) was 1.06 s idle but lost the tie under load (3.9 s against 2.6 s): the walk, once behind, read most of the
 * file itself.
 */
export function readOnceBesideHash(
  hashThread: boolean,
  split: boolean | undefined,
  load = loadavg()[0] ?? 0,
  cores = availableParallelism(),
): boolean {
  return hashThread && split === false && load >= 4 * cores;
}

const WALK_WORKER_URL = new URL('./walk-worker.js', import.meta.url);

/** The walk worker exists only as compiled JavaScript (dist/); the test runner, on the sources, walks in one thread. */
export function walkWorkerAvailable(): boolean {
  return WALK_WORKER_URL.protocol === 'file:' && existsSync(fileURLToPath(WALK_WORKER_URL));
}

export interface StructureOptions {
  signal?: AbortSignal;
  /**
   * walk the `key` bucket in two threads; default: for files of SPLIT_MIN_BYTES and more while a core is idle (see
   * idleCore), when the worker exists
   */
  split?: boolean;
  /** the hashing thread's ring (piece-ring.ts): the walk takes what it holds from there; never with `split` */
  ring?: RingReader | null;
}

/** Reads the structure and status of a bbolt file: meta choice, the walk, the status fields. */
export async function checkStructure(
  fd: number,
  size: number,
  optsOrSignal?: AbortSignal | StructureOptions,
): Promise<StructureVerdict> {
  const opts: StructureOptions = optsOrSignal instanceof AbortSignal ? { signal: optsOrSignal } : (optsOrSignal ?? {});
  const signal = opts.signal;
  const opened = openBolt(fd, size);
  if (!opened.ok) {
    opts.ring?.close();
    return {
      ok: false,
      problems: [`The bbolt database cannot be opened: ${opened.problem}.`],
      status: null,
      totalSize: null,
      walk: null,
    };
  }
  const dataEnd = hasTrailer(size) ? size - TRAILER_SIZE : size;
  // Loaded here, not with this module: status.js brings the native CRC-32C library (its dlopen and loader were ~20 ms
  // of the ~100 ms of CPU the CLI spent before the sha256 thread started), which inspect only needs once that thread
  // is on its way; the sha256 is the floor the whole verification is held to (issue 16).
  const { StatusVisitor } = await import('./status.js');
  const visitor = new StatusVisitor();
  const ring = opts.ring ?? null;
  const split = !ring && (opts.split ?? (dataEnd >= SPLIT_MIN_BYTES && idleCore())) && walkWorkerAvailable();
  const splitter = split ? threadSplitter(fd, dataEnd, opened.db) : null;
  const walker = new BoltWalker(fd, dataEnd, opened.db, visitor, undefined, splitter, ring);
  let walk: WalkResult;
  try {
    walk = await runWalk(walker, signal);
  } finally {
    // What the walk did not read (free pages, the trailer) the hash reads without waiting for it.
    ring?.close();
  }
  const problems = walk.problems.map((p) => `The database structure is damaged: ${p}.`);
  if (walk.moreProblems > 0) problems.push(`The database structure has ${walk.moreProblems} more problems like these.`);
  problems.push(...visitor.problems.map((p) => `The database content is damaged: ${p}.`));
  const ok = problems.length === 0;
  const liveProblem = visitor.liveKeysProblem();
  if (ok && liveProblem) problems.push(`Live keys cannot be counted: ${liveProblem}.`);
  const liveNote = visitor.liveKeysNote();
  if (ok && liveNote) problems.push(`Live keys: ${liveNote}.`);
  return {
    ok,
    problems,
    status: ok ? visitor.fields() : null,
    totalSize: ok ? opened.db.meta.pgid * opened.db.pageSize : null,
    walk,
  };
}

/** Starts walk-worker.ts on the tail of a bucket and hands its result back to the walk. */
function threadSplitter(fd: number, dataEnd: number, db: OpenedBolt): SubtreeSplitter {
  return {
    start(children: number[], level: number): PendingSubtree {
      // Not --input-type (node -e … --input-type=module): a worker started from a file refuses it.
      const execArgv = process.execArgv.filter((arg) => !arg.startsWith('--input-type'));
      const worker = new Worker(WALK_WORKER_URL, { workerData: { fd, dataEnd, db, children, level }, execArgv });
      let result: SubtreeResult | null = null;
      let failure: Error | null = null;
      let settle = (): void => undefined;
      const settled = new Promise<void>((resolve) => (settle = resolve));
      worker.on('message', (message: { type: 'done'; result: SubtreeResult } | { type: 'error'; message: string }) => {
        if (message.type === 'done') result = revive(message.result);
        else failure = new Error(message.message);
        settle();
      });
      worker.on('error', (error) => {
        failure ??= error;
        settle();
      });
      worker.on('exit', () => {
        if (result === null) failure ??= new Error('the thread walking half of the database stopped unexpectedly');
        settle();
      });
      return {
        settled,
        poll() {
          if (result) return result;
          if (failure) throw failure;
          return null;
        },
        cancel() {
          void worker.terminate();
        },
      };
    },
  };
}

/** Buffers arrive from another thread as plain Uint8Arrays: give them their Buffer methods back. */
function revive(result: SubtreeResult): SubtreeResult {
  const asBuffer = (bytes: Uint8Array | null): Buffer | null =>
    bytes ? Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength) : null;
  const tail = result.tail as KeyBucketTail;
  tail.live.arena = asBuffer(tail.live.arena) ?? Buffer.alloc(0);
  return { ...result, firstKey: asBuffer(result.firstKey), lastKey: asBuffer(result.lastKey) };
}

function notBbolt(problem: string | null): StructureVerdict {
  return { ok: false, problems: problem ? [problem] : [], status: null, totalSize: null, walk: null };
}

function buildReport(
  file: string,
  size: number,
  kind: SnapshotReport['kind'],
  structure: StructureVerdict,
  digest: FileDigest,
): SnapshotReport {
  const problems = [...structure.problems];
  if (digest.trailer === 'mismatch') {
    problems.push(
      'The sha256 trailer does not match the contents: the file was damaged or altered after etcd wrote it; do not restore from it.',
    );
  }
  const isBbolt = kind === 'bbolt';
  const usable = isBbolt && structure.ok && digest.trailer !== 'mismatch';
  return {
    file,
    size,
    kind,
    structure: isBbolt && structure.ok ? 'ok' : 'damaged',
    hash: structure.status ? structure.status.hash.toString(16).padStart(8, '0') : null,
    revision: structure.status?.revision ?? null,
    totalKeys: structure.status?.totalKeys ?? null,
    liveKeys: structure.status?.liveKeys ?? null,
    storageVersion: structure.status?.storageVersion ?? null,
    totalSize: structure.totalSize,
    integrity: digest.trailer,
    sha256: digest.sha256,
    needsSkipHashCheck: isBbolt && structure.ok && digest.trailer === 'absent',
    usable,
    problems,
  };
}

async function requireRegularFile(path: string): Promise<void> {
  let info;
  try {
    info = await stat(path);
  } catch (error) {
    throw fileError(path, error);
  }
  if (info.isDirectory()) throw new UserError(`${path} is a directory, not a snapshot file; give the file's path.`);
  if (!info.isFile()) throw new UserError(`${path} is not a regular file; give the path of a snapshot file.`);
}

/**
 * A file whose size reads 0 but which gives bytes when read is one of the kernel's (under /proc and /sys the size is
 * not known before reading): it is no snapshot, and "empty" would name the wrong cause.
 */
async function refuseSizelessContent(handle: FileHandle, path: string, size: number): Promise<void> {
  if (size !== 0) return;
  const { bytesRead } = await handle.read(Buffer.alloc(1), 0, 1, 0);
  if (bytesRead === 0) return;
  throw new UserError(
    `${path} is not a snapshot file: it reports a size of 0 bytes yet has content, as the kernel's files under /proc and /sys do; give the path of a snapshot file.`,
  );
}

async function openReadOnly(path: string): Promise<FileHandle> {
  try {
    return await open(path, 'r');
  } catch (error) {
    throw fileError(path, error);
  }
}

function fileError(path: string, error: unknown): UserError {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return new UserError(`There is no file at ${path}; check the path.`);
  if (code === 'EACCES' || code === 'EPERM') {
    return new UserError(`${path} cannot be read (permission denied); check its permissions or run as its owner.`);
  }
  const detail = error instanceof Error ? error.message : String(error);
  return new UserError(`${path} cannot be read (${detail}); check the path and the disk.`);
}

async function readHead(handle: FileHandle, size: number): Promise<Buffer> {
  const head = Buffer.alloc(Math.min(HEAD_BYTES, size));
  if (head.length > 0) await handle.read(head, 0, head.length, 0);
  return head;
}

/** Whether a meta page with the bbolt magic sits at page 1 for some page size (meta 0 may be the damaged one). */
async function hasMeta1Magic(handle: FileHandle, size: number): Promise<boolean> {
  const probe = Buffer.alloc(24);
  for (const pageSize of CANDIDATE_PAGE_SIZES) {
    if (pageSize + probe.length > size) break;
    await handle.read(probe, 0, probe.length, pageSize);
    if (hasBoltMagic(probe, 0)) return true;
  }
  return false;
}
