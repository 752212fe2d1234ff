/**
 * `etcdctl/etcdutl snapshot status`, computed the way etcd computes it (etcd-snapshot-facts.md §3, §5):
 * - hash: CRC-32C chained over every top-level bucket name, then that bucket's keys and values, in cursor order;
 * - totalKeys: every pair in every bucket (etcd 3.4/3.5, talosctl ≤ 1.10);
 * - revision: the main revision (big-endian) of the last key of the `key` bucket, 0 when it is empty;
 * - liveKeys: etcd 3.6's total keys, the distinct live user keys after replaying the `key` bucket;
 * - totalSize: meta.pgid × pageSize (bbolt tx.Size), not the file size.
 */
import { crc32c } from '@node-rs/crc32';
import { BUCKET_LEAF_FLAG, ELEMENT_SIZE, PAGE_HEADER_SIZE } from './bbolt.js';
import type { BucketVisitor, LeafPage, TreeVisitor } from './bbolt.js';

/** `key` bucket keys: main(8, BE) '_' sub(8, BE), plus 't' for a tombstone. */
const REVISION_KEY_SIZE = 17;
const TOMBSTONE_KEY_SIZE = 18;
const TOMBSTONE_MARK = 0x74; // 't'
/** CRC input is gathered up to this size; pieces at least DIRECT_CRC_BYTES long go straight in. */
const STAGING_BYTES = 256 * 1024;
const DIRECT_CRC_BYTES = 32 * 1024;

export interface StatusFields {
  /** CRC-32C as an unsigned 32-bit number */
  hash: number;
  revision: number;
  totalKeys: number;
  /** null when a `key` bucket value is not a readable mvccpb.KeyValue (etcd 3.6 fails there too) */
  liveKeys: number | null;
}

/**
 * Collects the status fields while the walker visits the tree. Content problems etcd's own status would stumble on
 * (a `key` bucket key too short to be a revision, a top-level entry that is not a bucket) are reported as sentences.
 */
export class StatusVisitor implements TreeVisitor {
  private crc = 0;
  private readonly staging = Buffer.allocUnsafe(STAGING_BYTES);
  private staged = 0;
  private totalKeys = 0;
  private revision = 0;
  private readonly live = new Set<string>();
  private liveBroken = false;
  readonly problems: string[] = [];
  private readonly plainBucket: BucketVisitor = { leaf: (page) => this.hashLeaf(page) };
  private readonly keyBucket: BucketVisitor = {
    leaf: (page) => {
      this.hashLeaf(page);
      this.replayRevisions(page);
    },
  };

  bucket(buf: Buffer, nameStart: number, nameEnd: number, isBucket: boolean): BucketVisitor | null {
    const isKeyBucket = nameEnd - nameStart === 3 && buf.toString('latin1', nameStart, nameEnd) === 'key';
    if (!isBucket) {
      this.problems.push(
        `the top-level entry "${buf.toString('latin1', nameStart, nameEnd)}" is not a bucket, so etcd cannot read its status`,
      );
      return null;
    }
    this.hashBytes(buf, nameStart, nameEnd);
    return isKeyBucket ? this.keyBucket : this.plainBucket;
  }

  /** Every key and value in element order; one CRC call when bbolt packed them contiguously (the usual case). */
  private hashLeaf(page: LeafPage): void {
    const { buf, base, count } = page;
    this.totalKeys += count;
    if (page.packedStart >= 0) {
      this.hashBytes(buf, page.packedStart, page.packedEnd);
      return;
    }
    for (let i = 0; i < count; i++) {
      const e = base + PAGE_HEADER_SIZE + i * ELEMENT_SIZE;
      const keyStart = e + buf.readUInt32LE(e + 4);
      const keyEnd = keyStart + buf.readUInt32LE(e + 8);
      this.hashBytes(buf, keyStart, keyEnd);
      // A nested bucket is yielded with a nil value by ForEach: nothing of it is hashed.
      if (buf.readUInt32LE(e) & BUCKET_LEAF_FLAG) continue;
      this.hashBytes(buf, keyEnd, keyEnd + buf.readUInt32LE(e + 12));
    }
  }

  /**
   * Feeds bytes to the CRC in order. Small pieces are gathered into a staging buffer first: a native call per page
   * costs more than the copy, and the CRC runs fastest over large pieces.
   */
  private hashBytes(buf: Buffer, start: number, end: number): void {
    const length = end - start;
    if (length <= 0) return;
    if (length >= DIRECT_CRC_BYTES) {
      this.flushStaging();
      this.crc = crc32c(buf.subarray(start, end), this.crc);
      return;
    }
    if (this.staged + length > this.staging.length) this.flushStaging();
    buf.copy(this.staging, this.staged, start, end);
    this.staged += length;
  }

  private flushStaging(): void {
    if (this.staged === 0) return;
    this.crc = crc32c(this.staging.subarray(0, this.staged), this.crc);
    this.staged = 0;
  }

  /** Revision from each key (the last one wins) and the live-key set of etcd 3.6. */
  private replayRevisions(page: LeafPage): void {
    const { buf, base, count } = page;
    let lastKeyStart = -1;
    for (let i = 0; i < count; i++) {
      const e = base + PAGE_HEADER_SIZE + i * ELEMENT_SIZE;
      const keyStart = e + buf.readUInt32LE(e + 4);
      const keySize = buf.readUInt32LE(e + 8);
      const valueStart = keyStart + keySize;
      const valueEnd = valueStart + buf.readUInt32LE(e + 12);
      if (keySize < REVISION_KEY_SIZE) {
        this.noteShortRevisionKey(keySize);
        continue;
      }
      lastKeyStart = keyStart;
      if (this.liveBroken) continue;
      let nameStart: number;
      let nameEnd: number;
      const shortLength = buf[valueStart + 1] as number;
      if (buf[valueStart] === 0x0a && shortLength < 0x80 && valueStart + 2 + shortLength <= valueEnd) {
        // The usual shape, read without allocating: tag 0x0a (field 1, bytes) and a one-byte length.
        nameStart = valueStart + 2;
        nameEnd = nameStart + shortLength;
      } else {
        const userKey = keyFieldOfKeyValue(buf, valueStart, valueEnd);
        if (userKey === null) {
          this.liveBroken = true;
          continue;
        }
        nameStart = userKey.start;
        nameEnd = userKey.end;
      }
      const isTombstone = keySize === TOMBSTONE_KEY_SIZE && buf[keyStart + REVISION_KEY_SIZE] === TOMBSTONE_MARK;
      const name = buf.toString('latin1', nameStart, nameEnd);
      if (isTombstone) this.live.delete(name);
      else this.live.add(name);
    }
    // etcd sets the revision from every key; keys ascend, so the page's last one is what remains.
    if (lastKeyStart >= 0)
      this.revision = buf.readInt32BE(lastKeyStart) * 4294967296 + buf.readUInt32BE(lastKeyStart + 4);
  }

  private noteShortRevisionKey(keySize: number): void {
    const sentence = `the key bucket holds a ${keySize}-byte key, too short to be a revision, so etcd cannot read its status`;
    if (!this.problems.includes(sentence)) this.problems.push(sentence);
  }

  fields(): StatusFields {
    this.flushStaging();
    return {
      hash: this.crc >>> 0,
      revision: this.revision,
      totalKeys: this.totalKeys,
      liveKeys: this.liveBroken ? null : this.live.size,
    };
  }

  /** etcd 3.6's status errors on a value that is not a KeyValue; say so (it changes nothing for 3.4/3.5). */
  liveKeysProblem(): string | null {
    return this.liveBroken
      ? 'a value in the key bucket is not a readable etcd KeyValue, so live keys cannot be counted'
      : null;
  }
}

/** Byte ranges of a KeyValue's fields inside the buffer; -1 when the field is absent (proto3 drops empty fields). */
export interface KeyValueRanges {
  keyStart: number;
  keyEnd: number;
  valueStart: number;
  valueEnd: number;
}

/**
 * The `key` field (1, bytes) of a protobuf mvccpb.KeyValue, located without decoding anything else.
 * Returns null when the bytes are not a well-formed message or have no key.
 */
export function keyFieldOfKeyValue(buf: Buffer, start: number, end: number): { start: number; end: number } | null {
  // Fast path: etcd marshals `key` first, as tag 0x0a and a short length.
  if (buf[start] === 0x0a && start + 1 < end) {
    const length = buf[start + 1] as number;
    if (length < 0x80 && start + 2 + length <= end) return { start: start + 2, end: start + 2 + length };
  }
  const ranges = keyValueRanges(buf, start, end);
  return ranges === null || ranges.keyStart < 0 ? null : { start: ranges.keyStart, end: ranges.keyEnd };
}

/**
 * mvccpb.KeyValue {key=1, create_revision=2, mod_revision=3, version=4, value=5, lease=6}: where `key` and `value`
 * are. Null when the bytes are not a well-formed protobuf message.
 */
export function keyValueRanges(buf: Buffer, start: number, end: number): KeyValueRanges | null {
  const ranges: KeyValueRanges = { keyStart: -1, keyEnd: -1, valueStart: -1, valueEnd: -1 };
  let at = start;
  while (at < end) {
    const tag = readVarint(buf, at, end);
    if (tag === null) return null;
    at = tag.next;
    const field = Math.floor(tag.value / 8);
    const wireType = tag.value & 7;
    if (wireType === 0) {
      const skipped = readVarint(buf, at, end);
      if (skipped === null) return null;
      at = skipped.next;
    } else if (wireType === 2) {
      const length = readVarint(buf, at, end);
      if (length === null || length.next + length.value > end) return null;
      if (field === 1) {
        ranges.keyStart = length.next;
        ranges.keyEnd = length.next + length.value;
      } else if (field === 5) {
        ranges.valueStart = length.next;
        ranges.valueEnd = length.next + length.value;
      }
      at = length.next + length.value;
    } else if (wireType === 1) {
      at += 8;
    } else if (wireType === 5) {
      at += 4;
    } else {
      return null;
    }
  }
  return at === end ? ranges : null;
}

/** A protobuf varint (up to 2^53 exactly, which covers any length or field number here). */
function readVarint(buf: Buffer, at: number, end: number): { value: number; next: number } | null {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < 10 && at < end; i++) {
    const byte = buf[at++] as number;
    value += (byte & 0x7f) * scale;
    if ((byte & 0x80) === 0) return { value, next: at };
    scale *= 128;
  }
  return null;
}
