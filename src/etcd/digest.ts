/**
 * Chooses where the sha256 pass runs. For a large file it gets a worker thread, so hashing and the tree walk use
 * both cores and the whole verification takes about as long as the slower of the two; small files (and the test
 * runner, which has no compiled worker to start) hash in this thread, where a worker's start-up would cost more than
 * it saves.
 */
import { createHash } from 'node:crypto';
import { existsSync, fstatSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { PieceRing } from './piece-ring.js';
import { TRAILER_SIZE, digestHandle, fileDigest, hasTrailer, readWholeSync } from './trailer.js';
import type { DigestOptions, FileDigest } from './trailer.js';

/** Below this a worker thread is not worth its start-up. */
export const WORKER_MIN_BYTES = 32 * 1024 * 1024;

const WORKER_URL = new URL('./digest-worker.js', import.meta.url);

export interface DigestPlacement {
  /** force the choice (tests); default: a worker for files of WORKER_MIN_BYTES and more, when one can start */
  inWorker?: boolean;
  /**
   * the hashing thread reads the file into this ring, from which the walk takes its leaves too (piece-ring.ts); only
   * used when the hash gets a thread of its own
   */
  ring?: PieceRing | null;
}

export function workerAvailable(): boolean {
  return WORKER_URL.protocol === 'file:' && existsSync(fileURLToPath(WORKER_URL));
}

/** Whether digestOpenFile hashes a file of `size` bytes on a thread of its own. */
export function hashesInWorker(size: number, inWorker?: boolean): boolean {
  return (inWorker ?? size >= WORKER_MIN_BYTES) && workerAvailable();
}

export function digestOpenFile(
  handle: FileHandle,
  size: number,
  opts: DigestOptions & DigestPlacement = {},
): Promise<FileDigest> {
  if (hashesInWorker(size, opts.inWorker)) return digestInWorker(handle.fd, size, opts, opts.ring ?? null);
  // Nothing will fill the ring: a walk waiting on it must read the file itself.
  opts.ring?.stop();
  return digestHandle(handle, size, opts);
}

type WorkerMessage =
  { type: 'progress'; bytes: number } | { type: 'done'; digest: FileDigest } | { type: 'error'; message: string };

function digestInWorker(fd: number, size: number, opts: DigestOptions, ring: PieceRing | null): Promise<FileDigest> {
  return new Promise((resolve, reject) => {
    opts.signal?.throwIfAborted();
    const worker = new Worker(WORKER_URL, { workerData: { fd, size, ring: ring?.shared } });
    let settled = false;
    const finish = (outcome: () => void): void => {
      if (settled) return;
      settled = true;
      opts.signal?.removeEventListener('abort', onAbort);
      // A walk reading from the ring must not wait for pieces that will never come.
      ring?.stop();
      // The worker must be gone before the caller closes the descriptor it reads.
      void worker.terminate().then(outcome, outcome);
    };
    const onAbort = (): void => finish(() => reject(opts.signal?.reason));
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    worker.on('message', (message: WorkerMessage) => {
      if (message.type === 'progress') opts.onProgress?.(message.bytes, size);
      else if (message.type === 'done') finish(() => resolve(message.digest));
      else finish(() => reject(new Error(message.message)));
    });
    worker.on('error', (error) => finish(() => reject(error)));
    worker.on('exit', () => finish(() => reject(new Error('the hashing thread stopped unexpectedly'))));
  });
}

/**
 * A file another process (or this one) is still writing, front to back: whoever follows it learns here when the
 * writer is done and how long the file then is, or that the writing failed or was stopped (issue 16: the import's
 * plain snapshot is hashed while zstd writes it).
 */
export class GrowingFile {
  private finalSize: number | null = null;
  private stoppedFlag = false;
  private readonly wakers = new Set<() => void>();

  /** The writer wrote its last byte: the file is `size` bytes long. */
  finish(size: number): void {
    this.finalSize ??= size;
    this.wake();
  }

  /** The writing failed or was stopped: whoever follows the file stops too. */
  stop(): void {
    this.stoppedFlag = true;
    this.wake();
  }

  /** The file's final size once the writer is done; null while it writes. */
  get size(): number | null {
    return this.finalSize;
  }

  get stopped(): boolean {
    return this.stoppedFlag;
  }

  /** Resolves on finish() or stop(), or after `ms`. */
  changed(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.wakers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wakers.add(done);
    });
  }

  private wake(): void {
    for (const done of [...this.wakers]) done();
  }
}

/** The writer of a followed file failed or was stopped before its end. */
export class FollowStopped extends Error {}

/** What digestWhileWritten hashed: the file's first `size` bytes, the whole file when the writer said so. */
export interface FollowedDigest {
  size: number;
  digest: FileDigest;
}

/** How often a follower that caught up with the writer looks at the file's size again. */
const FOLLOW_POLL_MS = 2;
/** Bytes per read while following: the hashing thread's piece (128 KiB, so the hash reads it from the L2 cache). */
const FOLLOW_READ_BYTES = 128 * 1024;
/** Bytes hashed between two turns of the event loop (the child processes' ends, a stop, progress). */
const FOLLOW_YIELD_BYTES = 8 * 1024 * 1024;

/**
 * sha256 of a file while it is being written (the import's plain snapshot, written by zstd): the bytes are read back
 * from the file on disk, through `fd` (read-only), as they arrive, so when the writer is done only the last few are
 * left. It stays 32 bytes behind the end it sees until the writer says the final size: those may be etcd's sha256
 * trailer (trailer.ts), whose verdict needs the digest of everything before them (given by trailer.ts fileDigest, as
 * for a file hashed whole). Rejects with FollowStopped when `file` is stopped, and when the file turns out shorter
 * than what was read.
 */
export async function digestWhileWritten(
  fd: number,
  file: GrowingFile,
  opts: DigestOptions = {},
): Promise<FollowedDigest> {
  const hash = createHash('sha256');
  const buf = Buffer.allocUnsafe(FOLLOW_READ_BYTES);
  let position = 0;
  let sinceYield = 0;
  let told = 0;
  const hashUpTo = async (end: number): Promise<void> => {
    while (position < end) {
      const length = Math.min(buf.length, end - position);
      readWholeSync(fd, buf, length, position);
      hash.update(buf.subarray(0, length));
      position += length;
      sinceYield += length;
      if (position - told >= FOLLOW_YIELD_BYTES) {
        told = position;
        opts.onProgress?.(position, Math.max(file.size ?? 0, position));
      }
      if (sinceYield >= FOLLOW_YIELD_BYTES) {
        sinceYield = 0;
        await new Promise<void>((resolve) => setImmediate(resolve));
        opts.signal?.throwIfAborted();
        if (file.stopped) throw new FollowStopped('the writer stopped');
      }
    }
  };
  for (;;) {
    opts.signal?.throwIfAborted();
    if (file.stopped) throw new FollowStopped('the writer stopped');
    const final = file.size;
    if (final !== null) break;
    const safe = fstatSync(fd).size - TRAILER_SIZE;
    if (safe > position) await hashUpTo(safe);
    else await file.changed(FOLLOW_POLL_MS);
  }
  const size = file.size as number;
  const withTrailer = hasTrailer(size);
  const bodyEnd = withTrailer ? size - TRAILER_SIZE : size;
  if (position > bodyEnd) throw new Error(`the file became shorter while it was being read (${size} bytes)`);
  await hashUpTo(bodyEnd);
  const bodyDigest = withTrailer ? hash.copy().digest() : null;
  const trailer = Buffer.alloc(size - bodyEnd);
  readWholeSync(fd, trailer, trailer.length, bodyEnd);
  hash.update(trailer);
  opts.onProgress?.(size, size);
  return { size, digest: fileDigest(hash.digest('hex'), bodyDigest ? { bodyDigest, trailer } : null) };
}
