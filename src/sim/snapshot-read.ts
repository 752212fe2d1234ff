/**
 * Reads back the etcd content of a (small) bbolt database held in memory: what a simulated etcd needs to restore an
 * uploaded snapshot, i.e. the `key` bucket's history and `meta/consistent_index`. The offline verifier (src/etcd)
 * does the full structural check; this reader only has to be strict enough to refuse garbage the way etcd would.
 */
import type { HistoryEvent } from '../etcd/writer.js';

const MAGIC = 0xed0cdaed;
const FLAG_BRANCH = 0x01;
const FLAG_LEAF = 0x02;
const BUCKET_LEAF_FLAG = 0x01;

export interface ReadContent {
  history: HistoryEvent[];
  consistentIndex: number;
}

/** etcd's error when bbolt cannot open a file (restore then fails with it). */
export class CorruptDatabase extends Error {}

interface Pair {
  key: Buffer;
  value: Buffer;
  flags: number;
}

function validMeta(db: Buffer, offset: number): { pageSize: number; root: number; txid: bigint } | null {
  if (db.length < offset + 80 || db.readUInt32LE(offset + 16) !== MAGIC) return null;
  return {
    pageSize: db.readUInt32LE(offset + 24),
    root: Number(db.readBigUInt64LE(offset + 32)),
    txid: db.readBigUInt64LE(offset + 64),
  };
}

function pickMeta(db: Buffer): { pageSize: number; root: number } {
  const first = validMeta(db, 0);
  if (!first) throw new CorruptDatabase('invalid database');
  const second = validMeta(db, first.pageSize);
  return second && second.txid > first.txid ? second : first;
}

function pagePairs(db: Buffer, pageStart: number, pageSize: number, out: Pair[], depth = 0): void {
  if (depth > 32 || pageStart + 16 > db.length) throw new CorruptDatabase('invalid page reference');
  const flags = db.readUInt16LE(pageStart + 8);
  const count = db.readUInt16LE(pageStart + 10);
  for (let i = 0; i < count; i++) {
    const at = pageStart + 16 + i * 16;
    if (flags & FLAG_LEAF) {
      const keyStart = at + db.readUInt32LE(at + 4);
      const keySize = db.readUInt32LE(at + 8);
      const valueSize = db.readUInt32LE(at + 12);
      if (keyStart + keySize + valueSize > db.length) throw new CorruptDatabase('element beyond the end of the file');
      out.push({
        flags: db.readUInt32LE(at),
        key: db.subarray(keyStart, keyStart + keySize),
        value: db.subarray(keyStart + keySize, keyStart + keySize + valueSize),
      });
    } else if (flags & FLAG_BRANCH) {
      const child = Number(db.readBigUInt64LE(at + 8));
      pagePairs(db, child * pageSize, pageSize, out, depth + 1);
    } else {
      throw new CorruptDatabase(`page ${pageStart / pageSize}: invalid type`);
    }
  }
}

function bucketPairs(db: Buffer, bucketValue: Buffer, pageSize: number): Pair[] {
  const root = Number(bucketValue.readBigUInt64LE(0));
  const out: Pair[] = [];
  if (root === 0) {
    // Inline bucket: the page image follows the 16-byte header; copy it so offsets start at 0.
    pagePairs(Buffer.from(bucketValue.subarray(16)), 0, pageSize, out);
  } else {
    pagePairs(db, root * pageSize, pageSize, out);
  }
  return out;
}

function readVarint(buf: Buffer, at: number): [bigint, number] {
  let result = 0n;
  let shift = 0n;
  for (;;) {
    const byte = buf[at++];
    if (byte === undefined) throw new CorruptDatabase('truncated key value');
    result |= BigInt(byte & 0x7f) << shift;
    if ((byte & 0x80) === 0) return [result, at];
    shift += 7n;
  }
}

interface DecodedKeyValue {
  key: Buffer;
  value: Buffer;
  createRevision: number;
  version: number;
}

function decodeKeyValue(buf: Buffer): DecodedKeyValue {
  const kv: DecodedKeyValue = { key: Buffer.alloc(0), value: Buffer.alloc(0), createRevision: 0, version: 0 };
  let at = 0;
  while (at < buf.length) {
    const [tag, next] = readVarint(buf, at);
    at = next;
    const field = Number(tag >> 3n);
    if ((tag & 7n) === 2n) {
      const [length, start] = readVarint(buf, at);
      const bytes = buf.subarray(start, start + Number(length));
      at = start + Number(length);
      if (field === 1) kv.key = bytes;
      if (field === 5) kv.value = bytes;
    } else {
      const [value, after] = readVarint(buf, at);
      at = after;
      if (field === 2) kv.createRevision = Number(value);
      if (field === 4) kv.version = Number(value);
    }
  }
  return kv;
}

/** The etcd content of a database (no trailer). Throws CorruptDatabase on anything bbolt would refuse. */
export function readEtcdContent(db: Buffer): ReadContent {
  const { pageSize, root } = pickMeta(db);
  if (db.length < 2 * pageSize) throw new CorruptDatabase('file size too small');
  const buckets = new Map<string, Buffer>();
  const rootPairs: Pair[] = [];
  pagePairs(db, root * pageSize, pageSize, rootPairs);
  for (const pair of rootPairs) {
    if (pair.flags & BUCKET_LEAF_FLAG) buckets.set(pair.key.toString('utf8'), pair.value);
  }
  const keyBucket = buckets.get('key');
  const metaBucket = buckets.get('meta');
  if (!keyBucket || !metaBucket) throw new CorruptDatabase('not an etcd database (no key or meta bucket)');
  const history: HistoryEvent[] = bucketPairs(db, keyBucket, pageSize).map(({ key, value }) => {
    const revision = Number(key.readBigInt64BE(0));
    const kv = decodeKeyValue(value);
    const name = kv.key.toString('utf8');
    return key.length === 18 && key[17] === 0x74
      ? { kind: 'delete' as const, revision, key: name }
      : {
          kind: 'put' as const,
          revision,
          key: name,
          value: Buffer.from(kv.value),
          createRevision: kv.createRevision,
          version: kv.version,
        };
  });
  const index = bucketPairs(db, metaBucket, pageSize).find((p) => p.key.toString() === 'consistent_index');
  const consistentIndex = index && index.value.length === 8 ? Number(index.value.readBigUInt64BE(0)) : 0;
  return { history, consistentIndex };
}
