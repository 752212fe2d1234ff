/**
 * The sha256 pass on a thread of its own, so it runs beside the tree walk instead of taking turns with it. It reads
 * through the file descriptor the main thread opened read-only (threads share descriptors), so it hashes exactly
 * the file being walked.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { digestFdSync } from './trailer.js';

const { fd, size } = workerData as { fd: number; size: number };

try {
  const digest = digestFdSync(fd, size, (bytes) => parentPort?.postMessage({ type: 'progress', bytes }));
  parentPort?.postMessage({ type: 'done', digest });
} catch (error) {
  parentPort?.postMessage({ type: 'error', message: error instanceof Error ? error.message : String(error) });
}
