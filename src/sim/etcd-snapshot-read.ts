/**
 * How the built-in etcd model reads a snapshot it restores, as etcd does: the file's checks and texts
 * (etcd-snapshot-facts §4), then its keys and consistent index through the snapshot toolkit's bbolt walker.
 */
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { BoltWalker, leafElement, openBolt, runWalk } from '../etcd/bbolt.js';
import type { BucketVisitor, LeafPage, TreeVisitor } from '../etcd/bbolt.js';
import { keyValueRanges } from '../etcd/status.js';
import type { HistoryEvent } from '../etcd/writer.js';
import { EtcdRestoreError } from './etcd-backend.js';

/** Go's %v of a []byte: decimal bytes in brackets, what etcd prints in its sha256 mismatch error. */
const goBytes = (bytes: Uint8Array): string => `[${Array.from(bytes).join(' ')}]`;

/** etcd's restore rules (etcd-snapshot-facts §4), with its texts. Returns the database without any trailer. */
export function verifySnapshotFile(file: Buffer, path: string, skipHashCheck: boolean): Buffer {
  if (file.length < 32) throw new EtcdRestoreError(`seek ${path}: invalid argument`);
  const hasHash = file.length % 512 === 32;
  if (!hasHash && !skipHashCheck) throw new EtcdRestoreError('snapshot missing hash but --skip-hash-check=false');
  const db = hasHash ? file.subarray(0, file.length - 32) : file;
  if (hasHash && !skipHashCheck) {
    const trailer = file.subarray(file.length - 32);
    const computed = createHash('sha256').update(db).digest();
    if (!computed.equals(trailer))
      throw new EtcdRestoreError(`expected sha256 ${goBytes(trailer)}, got ${goBytes(computed)}`);
  }
  return db;
}

/** `key` bucket keys: main revision (8 bytes, big-endian) '_' sub revision (8), plus 't' for a tombstone. */
const TOMBSTONE_KEY_SIZE = 18;
const TOMBSTONE_MARK = 0x74;

/**
 * mvccpb.KeyValue's create_revision (field 2) and version (field 4). keyValueRanges (src/etcd) has already checked
 * the message and found its key and value; these two counters are all the simulator needs beyond them.
 */
function keyValueCounters(buf: Buffer, start: number, end: number): { createRevision: number; version: number } {
  const counters = { createRevision: 0, version: 0 };
  let at = start;
  const varint = (): number => {
    let value = 0;
    for (let scale = 1; at < end; scale *= 128) {
      const byte = buf[at++] as number;
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) break;
    }
    return value;
  };
  while (at < end) {
    const tag = varint();
    const wireType = tag & 7;
    if (wireType === 2) {
      const length = varint(); // read before `at` is: `at += varint()` would lose the varint's own bytes
      at += length;
    } else if (wireType === 1) {
      at += 8;
    } else if (wireType === 5) {
      at += 4;
    } else {
      const value = varint();
      if (tag >>> 3 === 2) counters.createRevision = value;
      if (tag >>> 3 === 4) counters.version = value;
    }
  }
  return counters;
}

/** Collects the `key` bucket as history (revision order) and `meta/consistent_index` while the toolkit's walker runs. */
class EtcdContentVisitor implements TreeVisitor {
  readonly history: HistoryEvent[] = [];
  consistentIndex = 0;
  malformed = 0;
  private readonly keyBucket: BucketVisitor = { leaf: (page) => this.keys(page) };
  private readonly metaBucket: BucketVisitor = { leaf: (page) => this.meta(page) };
  readonly seen = new Set<string>();

  bucket(buf: Buffer, nameStart: number, nameEnd: number, isBucket: boolean): BucketVisitor | null {
    const name = buf.toString('latin1', nameStart, nameEnd);
    if (isBucket) this.seen.add(name);
    if (!isBucket) return null;
    return name === 'key' ? this.keyBucket : name === 'meta' ? this.metaBucket : null;
  }

  private keys(page: LeafPage): void {
    for (let i = 0; i < page.count; i++) {
      const { keyStart: revStart, keySize: revSize, valueSize } = leafElement(page, i);
      const buf = page.buf;
      const kvStart = revStart + revSize;
      const kvEnd = kvStart + valueSize;
      const ranges = revSize >= 8 ? keyValueRanges(buf, kvStart, kvEnd) : null;
      if (ranges === null || ranges.keyStart < 0) {
        this.malformed++;
        continue;
      }
      const revision = Number(buf.readBigInt64BE(revStart));
      const key = buf.toString('utf8', ranges.keyStart, ranges.keyEnd);
      if (revSize === TOMBSTONE_KEY_SIZE && buf[revStart + TOMBSTONE_KEY_SIZE - 1] === TOMBSTONE_MARK) {
        this.history.push({ kind: 'delete', revision, key });
        continue;
      }
      // Copied: the walker reuses its page buffers.
      const value =
        ranges.valueStart < 0 ? Buffer.alloc(0) : Buffer.from(buf.subarray(ranges.valueStart, ranges.valueEnd));
      this.history.push({ kind: 'put', revision, key, value, ...keyValueCounters(buf, kvStart, kvEnd) });
    }
  }

  private meta(page: LeafPage): void {
    for (let i = 0; i < page.count; i++) {
      const { keyStart, keySize, valueSize } = leafElement(page, i);
      if (valueSize === 8 && page.buf.toString('latin1', keyStart, keyStart + keySize) === 'consistent_index') {
        this.consistentIndex = Number(page.buf.readBigUInt64BE(keyStart + keySize));
      }
    }
  }
}

/**
 * The etcd content of the database in the first `dataEnd` bytes of a file (a snapshot's trailer excluded), read with
 * the snapshot toolkit's bbolt walker (src/etcd/bbolt.ts), which checks the structure as it goes. Returns the reason
 * etcd would give when it cannot use the file, instead of content.
 */
export async function readEtcdContent(
  path: string,
  dataEnd: number,
): Promise<{ history: HistoryEvent[]; consistentIndex: number } | { problem: string }> {
  const handle = await open(path, 'r');
  try {
    // bbolt's own error for a file that is not a database; the walker's sentences say more for damaged ones.
    const opened = openBolt(handle.fd, dataEnd);
    if (!opened.ok) return { problem: 'invalid database' };
    const visitor = new EtcdContentVisitor();
    const walk = await runWalk(new BoltWalker(handle.fd, dataEnd, opened.db, visitor));
    const firstProblem = walk.problems[0];
    if (firstProblem !== undefined) return { problem: firstProblem };
    if (!visitor.seen.has('key') || !visitor.seen.has('meta'))
      return { problem: 'not an etcd database (no key or meta bucket)' };
    if (visitor.malformed > 0)
      return { problem: `${visitor.malformed} values in the key bucket are not etcd key/values` };
    return { history: visitor.history, consistentIndex: visitor.consistentIndex };
  } finally {
    await handle.close();
  }
}
