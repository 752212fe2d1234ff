/**
 * The sha256 pass on a thread of its own, so it runs beside the tree walk instead of taking turns with it. It reads
 * through the file descriptor the main thread opened read-only (threads share descriptors), so it hashes exactly
 * the file being walked. Given a ring (piece-ring.ts), it reads the file into the ring's slots, where the walk takes
 * its leaves from too, so the file is read once.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { PieceRing } from './piece-ring.js';
import type { SharedRing } from './piece-ring.js';
import { digestFdSync } from './trailer.js';
import type { FileDigest } from './trailer.js';

const { fd, size, ring } = workerData as { fd: number; size: number; ring?: SharedRing };

const progress = (bytes: number): void => parentPort?.postMessage({ type: 'progress', bytes });

/** The hash reads each piece into its slot of the ring and publishes it to the walk before hashing it. */
function digestIntoRing(shared: SharedRing): FileDigest {
  const pieces = new PieceRing(shared);
  return digestFdSync(fd, size, progress, {
    take: (k) => {
      pieces.waitForRoom(k);
      return pieces.slot(k);
    },
    filled: (k) => pieces.publish(k),
  });
}

try {
  const digest = ring ? digestIntoRing(ring) : digestFdSync(fd, size, progress);
  parentPort?.postMessage({ type: 'done', digest });
} catch (error) {
  // The walk may be waiting for a piece: it reads the file itself from now on.
  if (ring) new PieceRing(ring).stop();
  parentPort?.postMessage({ type: 'error', message: error instanceof Error ? error.message : String(error) });
}
