/**
 * The sha256 pass on a thread of its own, so it runs beside the tree walk instead of taking turns with it. It reads
 * through the file descriptor the main thread opened read-only (threads share descriptors), so it hashes exactly
 * the file being walked. Given a ring (piece-ring.ts), it reads the file into the ring's slots, where the walk takes
 * its leaves from too, so the file is read once.
 */
import { readSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { PieceRing } from './piece-ring.js';
import type { SharedRing } from './piece-ring.js';
import { DigestState, digestFdSync } from './trailer.js';
import type { FileDigest } from './trailer.js';

const { fd, size, ring } = workerData as { fd: number; size: number; ring?: SharedRing };

/** Progress is told at most this often (in bytes), as digestFdSync does. */
const PROGRESS_BYTES = 4 * 1024 * 1024;

const progress = (bytes: number): void => parentPort?.postMessage({ type: 'progress', bytes });

/** digestFdSync, reading each piece into its slot of the ring and publishing it to the walk before hashing it. */
function digestIntoRing(shared: SharedRing): FileDigest {
  const pieces = new PieceRing(shared);
  const state = new DigestState(size);
  let told = 0;
  for (let k = 0, position = 0; position < size; k++) {
    pieces.waitForRoom(k);
    const slot = pieces.slot(k);
    const wanted = Math.min(slot.length, size - position);
    let length = 0;
    while (length < wanted) {
      const n = readSync(fd, slot, length, wanted - length, position + length);
      if (n === 0) throw new Error(`the file became shorter while it was being read (at byte ${position + length})`);
      length += n;
    }
    pieces.publish(k);
    state.update(slot.subarray(0, length), position);
    position += length;
    if (position - told >= PROGRESS_BYTES || position === size) {
      told = position;
      progress(position);
    }
  }
  return state.finish();
}

try {
  const digest = ring ? digestIntoRing(ring) : digestFdSync(fd, size, progress);
  parentPort?.postMessage({ type: 'done', digest });
} catch (error) {
  // The walk may be waiting for a piece: it reads the file itself from now on.
  if (ring) new PieceRing(ring).stop();
  parentPort?.postMessage({ type: 'error', message: error instanceof Error ? error.message : String(error) });
}
