/**
 * The sha256 pass on a thread of its own, so it runs beside the tree walk instead of taking turns with it. It reads
 * through the file descriptor the main thread opened read-only (threads share descriptors), so it hashes exactly
 * the file being walked.
 */
import { read } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { digestReader } from './trailer.js';

const { fd, size } = workerData as { fd: number; size: number };

function readAt(buf: Buffer, offset: number, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) =>
    read(fd, buf, offset, length, position, (error, bytesRead) => (error ? reject(error) : resolve(bytesRead))),
  );
}

digestReader(readAt, size, { onProgress: (bytes) => parentPort?.postMessage({ type: 'progress', bytes }) }).then(
  (digest) => parentPort?.postMessage({ type: 'done', digest }),
  (error: unknown) =>
    parentPort?.postMessage({ type: 'error', message: error instanceof Error ? error.message : String(error) }),
);
