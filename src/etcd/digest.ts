/**
 * Chooses where the sha256 pass runs. For a large file it gets a worker thread, so hashing and the tree walk use
 * both cores and the whole verification takes about as long as the slower of the two; small files (and the test
 * runner, which has no compiled worker to start) hash in this thread, where a worker's start-up would cost more than
 * it saves.
 */
import { existsSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { PieceRing } from './piece-ring.js';
import { digestHandle } from './trailer.js';
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
