/**
 * The user data of an etcd database: every live key with its value at the latest revision, by replaying the `key`
 * bucket (puts set, tombstones delete) as etcd does when it rebuilds its index. The drill uses it to check what data
 * a recovery kept.
 */
import { open } from 'node:fs/promises';
import { UserError } from '../errors.js';
import { BoltWalker, ELEMENT_SIZE, PAGE_HEADER_SIZE, openBolt, runWalk } from './bbolt.js';
import type { BucketVisitor, LeafPage, TreeVisitor } from './bbolt.js';
import { keyValueRanges } from './status.js';
import { TRAILER_SIZE, hasTrailer } from './trailer.js';

const TOMBSTONE_KEY_SIZE = 18;
const TOMBSTONE_MARK = 0x74; // 't'

/** Replays the `key` bucket into a map of user key (UTF-8) → value bytes. */
class KeyBucketReplay implements TreeVisitor {
  readonly live = new Map<string, Buffer>();
  malformed = 0;

  private readonly replay: BucketVisitor = { leaf: (page) => this.apply(page) };

  bucket(buf: Buffer, nameStart: number, nameEnd: number, isBucket: boolean): BucketVisitor | null {
    return isBucket && buf.toString('latin1', nameStart, nameEnd) === 'key' ? this.replay : null;
  }

  private apply(page: LeafPage): void {
    const { buf, base, count } = page;
    for (let i = 0; i < count; i++) {
      const e = base + PAGE_HEADER_SIZE + i * ELEMENT_SIZE;
      const revStart = e + buf.readUInt32LE(e + 4);
      const revSize = buf.readUInt32LE(e + 8);
      const valueStart = revStart + revSize;
      const ranges = keyValueRanges(buf, valueStart, valueStart + buf.readUInt32LE(e + 12));
      if (ranges === null || ranges.keyStart < 0) {
        this.malformed++;
        continue;
      }
      const key = buf.toString('utf8', ranges.keyStart, ranges.keyEnd);
      if (revSize === TOMBSTONE_KEY_SIZE && buf[revStart + 17] === TOMBSTONE_MARK) {
        this.live.delete(key);
      } else {
        // Copied: the page buffer is reused for the next page.
        const value =
          ranges.valueStart < 0 ? Buffer.alloc(0) : Buffer.from(buf.subarray(ranges.valueStart, ranges.valueEnd));
        this.live.set(key, value);
      }
    }
  }
}

/**
 * All live key → value pairs of the `key` bucket at the latest revision. Throws UserError when the file is not a
 * sound etcd database (use inspectSnapshot to learn why).
 */
export async function readKeyBucket(path: string, opts: { signal?: AbortSignal } = {}): Promise<Map<string, Buffer>> {
  const handle = await open(path, 'r');
  try {
    const { size } = await handle.stat();
    const opened = openBolt(handle.fd, size);
    if (!opened.ok) throw new UserError(`${path} cannot be read as an etcd database: ${opened.problem}.`);
    const replay = new KeyBucketReplay();
    const dataEnd = hasTrailer(size) ? size - TRAILER_SIZE : size;
    const walk = await runWalk(new BoltWalker(handle.fd, dataEnd, opened.db, replay), opts.signal);
    const firstProblem = walk.problems[0];
    if (firstProblem !== undefined) throw new UserError(`${path} is a damaged etcd database: ${firstProblem}.`);
    if (replay.malformed > 0) {
      throw new UserError(`${path} holds ${replay.malformed} values in its key bucket that are not etcd key/values.`);
    }
    return replay.live;
  } finally {
    await handle.close();
  }
}
