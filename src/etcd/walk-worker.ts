/**
 * The other half of a split status walk (BoltWalker.walkSplit): walks the tail of the `key` bucket on its own thread
 * and sends back what it found, to be merged after the main thread's half. It reads through the descriptor the main
 * thread opened read-only (threads share descriptors) and never closes it.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { BoltWalker } from './bbolt.js';
import type { OpenedBolt, TreeVisitor } from './bbolt.js';
import { StatusVisitor } from './status.js';

const { fd, dataEnd, db, children, level } = workerData as {
  fd: number;
  dataEnd: number;
  db: OpenedBolt;
  children: number[];
  level: number;
};

try {
  const visitor = new StatusVisitor({ recordTombstones: true });
  const noBuckets: TreeVisitor = { bucket: () => null };
  const walker = new BoltWalker(fd, dataEnd, db, noBuckets);
  const result = walker.walkSubtrees(children, level, visitor.keyBucketVisitor());
  result.tail = visitor.tail();
  parentPort?.postMessage({ type: 'done', result });
} catch (error) {
  parentPort?.postMessage({ type: 'error', message: error instanceof Error ? error.message : String(error) });
}
