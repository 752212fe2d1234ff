/**
 * `etcdctl/etcdutl snapshot status`, computed the way etcd computes it (etcd-snapshot-facts.md §3, §5):
 * - hash: CRC-32C chained over every top-level bucket name, then that bucket's keys and values, in cursor order;
 * - totalKeys: every pair in every bucket (etcd 3.4/3.5, talosctl ≤ 1.10);
 * - revision: the main revision (big-endian) of the last key of the `key` bucket, 0 when it is empty;
 * - liveKeys: etcd 3.6's total keys, the distinct live user keys after replaying the `key` bucket;
 * - totalSize: meta.pgid × pageSize (bbolt tx.Size), not the file size.
 */
import { crc32c } from '@node-rs/crc32';
import { BUCKET_LEAF_FLAG, ELEMENT_SIZE, PAGE_HEADER_SIZE, leafElement, u32At } from './bbolt.js';
import type { BucketVisitor, LeafPage, TreeVisitor } from './bbolt.js';

/** `key` bucket keys: main(8, BE) '_' sub(8, BE), plus 't' for a tombstone. */
const REVISION_KEY_SIZE = 17;
const TOMBSTONE_KEY_SIZE = 18;
const TOMBSTONE_MARK = 0x74; // 't'
/**
 * CRC input shorter than DIRECT_CRC_BYTES is gathered up to STAGING_BYTES before one native call; longer pieces (the
 * packed keys and values of a whole leaf, usually) go straight from the read window: a call costs ~0.4 µs, copying
 * every byte of the file into a staging buffer cost more (a third of the hashing time in a profile of 1 GiB).
 */
const STAGING_BYTES = 32 * 1024;
const DIRECT_CRC_BYTES = 512;

export interface StatusFields {
  /** CRC-32C as an unsigned 32-bit number */
  hash: number;
  revision: number;
  totalKeys: number;
  /** null when a `key` bucket value is not a readable mvccpb.KeyValue (etcd 3.6 fails there too) */
  liveKeys: number | null;
  /**
   * `meta/storageVersion` as etcdutl 3.6 prints it ("3.6.0"): null when the key is absent (etcd 3.4/3.5 wrote the
   * data) or not a semantic version, where etcdutl prints "" (see readStorageVersion).
   */
  storageVersion: string | null;
}

/**
 * etcd 3.6+ keeps the storage version as a semver string under `storageVersion` in the `meta` bucket, written as
 * major.minor.0 (etcd-io/etcd: server/storage/schema/bucket.go@v3.6.14:26,85; schema/version.go@v3.6.14:59-61).
 * `etcdutl snapshot status` reads it with semver.NewVersion and prints nothing when that fails
 * (schema/version.go@v3.6.14:48-55, etcdutl/snapshot/v3_snapshot.go@v3.6.14:141).
 */
const META_BUCKET = 'meta';
const STORAGE_VERSION_KEY = Buffer.from('storageVersion');
/** semver 2.0.0 as go-semver's NewVersion accepts it: X.Y.Z with optional -prerelease and +build. */
const SEMVER =
  /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$/;

/** The storage version from the raw value of `meta/storageVersion`, or null where etcdutl prints "". */
export function readStorageVersion(value: Buffer | null): string | null {
  if (value === null) return null;
  const text = value.toString('latin1');
  return SEMVER.test(text) ? text : null;
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
  private readonly live: LiveKeySet;
  private liveBroken = false;
  readonly problems: string[] = [];
  private readonly plainBucket: BucketVisitor = { leaf: (page) => this.hashLeaf(page) };
  private readonly metaBucket: BucketVisitor = {
    leaf: (page) => {
      this.hashLeaf(page);
      this.findStorageVersion(page);
    },
  };
  /** the raw value of `meta/storageVersion`, when the meta bucket holds one */
  private storageVersionValue: Buffer | null = null;
  private readonly keyBucket: BucketVisitor = {
    leaf: (page) => {
      this.hashLeaf(page);
      this.replayRevisions(page);
    },
    mergeTail: (tail) => this.mergeTail(tail as KeyBucketTail),
  };
  /** bytes fed to the CRC (a tail's CRC is combined in by its length) */
  private hashedBytes = 0;
  /** whether any revision key was seen: a tail without one leaves the revision as it was */
  private sawRevision = false;

  constructor(liveKeysBudget: LiveKeysBudget = {}) {
    this.live = new LiveKeySet(liveKeysBudget);
  }

  /** The visitor of the `key` bucket alone, for a walk of part of it on another thread (BoltWalker.walkSubtrees). */
  keyBucketVisitor(): BucketVisitor {
    return this.keyBucket;
  }

  /**
   * What a walk of the tail of the `key` bucket found, to fold into the walk of the rest (mergeTail). Its CRC starts
   * from zero and is combined in by length; its live keys remember tombstones too (see LiveKeySet.recordTombstones).
   */
  tail(): KeyBucketTail {
    this.flushStaging();
    return {
      crc: this.crc >>> 0,
      hashedBytes: this.hashedBytes,
      totalKeys: this.totalKeys,
      revision: this.sawRevision ? this.revision : null,
      liveBroken: this.liveBroken,
      problems: this.problems,
      live: this.live.export(),
    };
  }

  private mergeTail(tail: KeyBucketTail): void {
    this.flushStaging();
    this.crc = crc32cCombine(this.crc >>> 0, tail.crc, tail.hashedBytes);
    this.hashedBytes += tail.hashedBytes;
    this.totalKeys += tail.totalKeys;
    if (tail.revision !== null) {
      this.revision = tail.revision;
      this.sawRevision = true;
    }
    this.liveBroken ||= tail.liveBroken;
    for (const p of tail.problems) if (!this.problems.includes(p)) this.problems.push(p);
    this.live.merge(tail.live);
  }

  bucket(buf: Buffer, nameStart: number, nameEnd: number, isBucket: boolean): BucketVisitor | null {
    const isKeyBucket = nameEnd - nameStart === 3 && buf.toString('latin1', nameStart, nameEnd) === 'key';
    if (!isBucket) {
      this.problems.push(
        `the top-level entry "${buf.toString('latin1', nameStart, nameEnd)}" is not a bucket, so etcd cannot read its status`,
      );
      return null;
    }
    this.hashBytes(buf, nameStart, nameEnd);
    if (isKeyBucket) return this.keyBucket;
    const isMetaBucket =
      nameEnd - nameStart === META_BUCKET.length && buf.toString('latin1', nameStart, nameEnd) === META_BUCKET;
    return isMetaBucket ? this.metaBucket : this.plainBucket;
  }

  /** The meta bucket holds a handful of keys: compare each with `storageVersion` (a nested bucket has no value). */
  private findStorageVersion(page: LeafPage): void {
    for (let i = 0; i < page.count; i++) {
      const e = leafElement(page, i);
      if (e.flags & BUCKET_LEAF_FLAG || e.keySize !== STORAGE_VERSION_KEY.length) continue;
      const keyEnd = e.keyStart + e.keySize;
      if (page.buf.subarray(e.keyStart, keyEnd).equals(STORAGE_VERSION_KEY)) {
        this.storageVersionValue = Buffer.from(page.buf.subarray(keyEnd, keyEnd + e.valueSize));
      }
    }
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
    this.hashedBytes += length;
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
    const live = this.live;
    let lastKeyStart = -1;
    for (let i = 0; i < count; i++) {
      const e = base + PAGE_HEADER_SIZE + i * ELEMENT_SIZE;
      const keyStart = e + u32At(buf, e + 4);
      const keySize = u32At(buf, e + 8);
      const valueStart = keyStart + keySize;
      const valueEnd = valueStart + u32At(buf, e + 12);
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
      live.apply(buf, nameStart, nameEnd, !isTombstone);
    }
    // etcd sets the revision from every key; keys ascend, so the page's last one is what remains.
    if (lastKeyStart >= 0) {
      this.revision = buf.readInt32BE(lastKeyStart) * 4294967296 + buf.readUInt32BE(lastKeyStart + 4);
      this.sawRevision = true;
    }
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
      liveKeys: this.liveBroken || this.live.overflowed ? null : this.live.size,
      storageVersion: readStorageVersion(this.storageVersionValue),
    };
  }

  /** etcd 3.6's status errors on a value that is not a KeyValue; say so (it changes nothing for 3.4/3.5). */
  liveKeysProblem(): string | null {
    if (this.liveBroken)
      return 'a value in the key bucket is not a readable etcd KeyValue, so live keys cannot be counted';
    if (this.live.overflowed) {
      return `the key bucket names more than ${this.live.distinct} distinct keys, more than fit in the memory set aside for counting live keys`;
    }
    return null;
  }

  /**
   * Set when the live keys were counted by fingerprint for lack of room to keep every name (see LiveKeySet): the
   * count is then exact unless two different names share a 64-bit fingerprint.
   */
  liveKeysNote(): string | null {
    if (this.liveBroken || this.live.overflowed || this.live.fingerprinted === 0) return null;
    return (
      `${this.live.fingerprinted} of the ${this.live.distinct} distinct keys were told apart by a 64-bit fingerprint ` +
      'of their names rather than the names themselves (too many to keep in memory), so the live-key count is exact ' +
      'unless two names share a fingerprint (odds far below one in a million)'
    );
  }
}

/** StatusVisitor.tail(): the status fields of the tail of the `key` bucket, walked on its own. */
export interface KeyBucketTail {
  crc: number;
  hashedBytes: number;
  totalKeys: number;
  revision: number | null;
  liveBroken: boolean;
  problems: string[];
  live: LiveKeysExport;
}

/** CRC-32C (reflected) polynomial. */
const CASTAGNOLI = 0x82f63b78;

/** a·b modulo the CRC polynomial (bit-reflected, as zlib's multmodp). */
function multModP(a: number, b: number): number {
  let m = 0x80000000;
  let p = 0;
  for (;;) {
    if (a & m) {
      p ^= b;
      if ((a & (m - 1)) === 0) break;
    }
    m >>>= 1;
    b = b & 1 ? (b >>> 1) ^ CASTAGNOLI : b >>> 1;
  }
  return p >>> 0;
}

/**
 * x^(2^k) modulo the polynomial, k = 0..63. zlib keeps 32 and cycles (k & 31), which holds for its own polynomial
 * only: for Castagnoli's, x^(2^32) is not x, and cycling gave wrong CRCs for parts of 2^29 bytes and more (a 4 GiB
 * snapshot walked by two threads).
 */
const X2N: number[] = [0x40000000];
for (let k = 1; k < 64; k++) X2N.push(multModP(X2N[k - 1] as number, X2N[k - 1] as number));

/**
 * The CRC-32C of A followed by B from crc(A), crc(B) and B's length (zlib's crc32_combine, for Castagnoli), so two
 * threads can each CRC a part. Lengths up to 2^53.
 */
export function crc32cCombine(crcA: number, crcB: number, lengthB: number): number {
  let p = 0x80000000; // x^0
  let n = lengthB;
  let k = 3; // bytes: x^(8·length) = x^(length·2^3)
  while (n > 0) {
    if (n % 2 === 1) p = multModP(X2N[k] as number, p);
    n = Math.floor(n / 2);
    k++;
  }
  return (multModP(p, crcA) ^ crcB) >>> 0;
}

export interface LiveKeysBudget {
  /** bytes of key names kept to tell keys apart exactly; later names are kept only as 64-bit fingerprints */
  nameBytes?: number;
  /** distinct keys tracked at most; past that the live keys are not counted (null) */
  maxKeys?: number;
  /**
   * Keep names whose last event is a tombstone even when never put here: the tail of a replay (another thread's part)
   * must be able to delete what the part before it put.
   */
  recordTombstones?: boolean;
}

/** A LiveKeySet's content, to merge into another (every name with its last state). */
export interface LiveKeysExport {
  arena: Buffer;
  offsets: Int32Array;
  lengths: Int32Array;
  live: Uint8Array;
  distinct: number;
  fingerprinted: number;
  overflowed: boolean;
}

/** 16 MiB of names: about 200 000 Kubernetes keys (~80 bytes each) told apart by their bytes. */
const DEFAULT_NAME_BYTES = 16 * 1024 * 1024;
/** About 41 MB at most: 17 bytes per key plus a table of 8 bytes per key, plus the names. */
const DEFAULT_MAX_KEYS = 1024 * 1024;
const INITIAL_KEYS = 1024;

function rotl(x: number, r: number): number {
  return (x << r) | (x >>> (32 - r));
}

/**
 * buf.readInt32LE(at) without its argument checks (the caller keeps `at + 4` within the name). Measured on the names
 * of a 1 GiB snapshot: hashing one took ~190 ns of CPU through readInt32LE, ~50 ns so (the call was not inlined).
 */
function wordAt(buf: Buffer, at: number): number {
  return (
    (buf[at] as number) |
    ((buf[at + 1] as number) << 8) |
    ((buf[at + 2] as number) << 16) |
    ((buf[at + 3] as number) << 24)
  );
}

function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * The distinct user keys met while replaying the `key` bucket, each live or not (etcd 3.6's status keeps a set of
 * strings: add on a put, delete on a tombstone). Kept without a JS string per key, in bounded memory: names go into
 * one byte arena, found through an open-addressing table by two independent 32-bit hashes (murmur3 and xxhash32
 * rounds), so the usual name costs one hash pass and one byte compare and no garbage. When the arena is full
 * (`nameBytes`), further names are kept as their 64-bit fingerprint only (`fingerprinted` counts them); past
 * `maxKeys` distinct names the count is given up (`overflowed`) rather than letting memory grow with the file.
 */
export class LiveKeySet {
  /** live keys */
  size = 0;
  /** distinct names seen */
  distinct = 0;
  /** names kept as a fingerprint only */
  fingerprinted = 0;
  overflowed = false;
  private readonly nameBudget: number;
  private readonly maxKeys: number;
  private readonly recordTombstones: boolean;
  private arena: Buffer;
  private arenaUsed = 0;
  /** set once a name did not fit in the arena: names are then kept as fingerprints and need both hashes */
  private arenaFull = false;
  /** per entry: arena offset (-1: fingerprint only), name length, the two hashes, live flag */
  private offsets = new Int32Array(INITIAL_KEYS);
  private lengths = new Int32Array(INITIAL_KEYS);
  private hash1 = new Int32Array(INITIAL_KEYS);
  private hash2 = new Int32Array(INITIAL_KEYS);
  private live = new Uint8Array(INITIAL_KEYS);
  /** entry index + 1, 0 = empty; at most half full */
  private table = new Int32Array(INITIAL_KEYS * 2);

  constructor(budget: LiveKeysBudget = {}) {
    this.nameBudget = budget.nameBytes ?? DEFAULT_NAME_BYTES;
    this.maxKeys = budget.maxKeys ?? DEFAULT_MAX_KEYS;
    this.recordTombstones = budget.recordTombstones ?? false;
    this.arena = Buffer.allocUnsafe(Math.min(64 * 1024, this.nameBudget));
  }

  /** A put (live) or a tombstone (not live) of the name in buf[start, end). */
  apply(buf: Buffer, start: number, end: number, put: boolean): void {
    if (this.overflowed) return;
    const length = end - start;
    // FxHash-style over 4-byte words (a table index, not a fingerprint: equal hashes are compared byte by byte); the
    // second hash only once names are kept as fingerprints.
    let h1 = 0x9747b28c;
    let i = start;
    for (; i + 4 <= end; i += 4) {
      h1 = Math.imul(rotl(h1, 5) ^ wordAt(buf, i), 0x9e3779b9);
    }
    let tail = 0;
    for (let shift = 0; i < end; i++, shift += 8) tail |= (buf[i] as number) << shift;
    h1 = fmix(Math.imul(rotl(h1, 5) ^ tail, 0x9e3779b9) ^ length) | 0;
    const h2 = this.arenaFull ? this.secondHash(buf, start, end) : 0;

    const table = this.table;
    const mask = table.length - 1;
    let slot = h1 & mask;
    for (;;) {
      const at = table[slot] as number;
      if (at === 0) break;
      const e = at - 1;
      if (this.hash1[e] === h1 && this.lengths[e] === length && this.sameName(e, buf, start, h2)) {
        if (put && this.live[e] === 0) {
          this.live[e] = 1;
          this.size++;
        } else if (!put && this.live[e] === 1) {
          this.live[e] = 0;
          this.size--;
        }
        return;
      }
      slot = (slot + 1) & mask;
    }
    // A tombstone of a name never put (compacted away) changes nothing, as deleting from a set.
    if (!put && !this.recordTombstones) return;
    this.insert(slot, buf, start, length, h1, h2);
    if (!put && !this.overflowed) {
      this.live[this.distinct - 1] = 0;
      this.size--;
    }
  }

  /** An xxhash32-style hash, independent of the first: with it a name is told apart by 64 bits. */
  private secondHash(buf: Buffer, start: number, end: number): number {
    let h2 = 0x165667b1;
    let i = start;
    for (; i + 4 <= end; i += 4) {
      h2 = Math.imul(rotl((h2 + Math.imul(wordAt(buf, i), 0x85ebca77)) | 0, 13), 0x9e3779b1);
    }
    let tail = 0;
    for (let shift = 0; i < end; i++, shift += 8) tail |= (buf[i] as number) << shift;
    h2 = Math.imul(rotl((h2 + Math.imul(tail, 0x85ebca77)) | 0, 13), 0x9e3779b1);
    return fmix(h2 ^ Math.imul(end - start, 0x27d4eb2f)) | 0;
  }

  /** Names kept in the arena are compared byte by byte; a fingerprint-only entry by its second hash. */
  private sameName(e: number, buf: Buffer, start: number, h2: number): boolean {
    const offset = this.offsets[e] as number;
    if (offset < 0) return this.hash2[e] === h2;
    const arena = this.arena;
    const length = this.lengths[e] as number;
    for (let j = 0; j < length; j++) if (arena[offset + j] !== buf[start + j]) return false;
    return true;
  }

  private insert(slot: number, buf: Buffer, start: number, length: number, h1: number, h2: number): void {
    const e = this.distinct;
    if (e >= this.maxKeys) {
      this.overflowed = true;
      this.release();
      return;
    }
    if (e >= this.offsets.length) this.growEntries();
    let offset = -1;
    if (this.arenaUsed + length <= this.arena.length || this.growArena(length)) {
      offset = this.arenaUsed;
      buf.copy(this.arena, offset, start, start + length);
      this.arenaUsed += length;
    } else {
      // From now on every name needs its second hash; this one gets it here.
      this.arenaFull = true;
      h2 = this.secondHash(buf, start, start + length);
      this.fingerprinted++;
    }
    this.offsets[e] = offset;
    this.lengths[e] = length;
    this.hash1[e] = h1;
    this.hash2[e] = h2;
    this.live[e] = 1;
    this.distinct++;
    this.size++;
    this.table[slot] = e + 1;
    if (this.distinct * 2 > this.table.length) this.growTable();
  }

  /** Doubles the arena within the budget; false when the name does not fit any more. */
  private growArena(length: number): boolean {
    const needed = this.arenaUsed + length;
    if (needed > this.nameBudget) return false;
    const size = Math.min(this.nameBudget, Math.max(needed, this.arena.length * 2));
    const arena = Buffer.allocUnsafe(size);
    this.arena.copy(arena, 0, 0, this.arenaUsed);
    this.arena = arena;
    return true;
  }

  private growEntries(): void {
    const size = Math.min(this.maxKeys, this.offsets.length * 2);
    const grow = <T extends Int32Array | Uint8Array>(old: T, fresh: T): T => {
      fresh.set(old);
      return fresh;
    };
    this.offsets = grow(this.offsets, new Int32Array(size));
    this.lengths = grow(this.lengths, new Int32Array(size));
    this.hash1 = grow(this.hash1, new Int32Array(size));
    this.hash2 = grow(this.hash2, new Int32Array(size));
    this.live = grow(this.live, new Uint8Array(size));
  }

  private growTable(): void {
    const table = new Int32Array(this.table.length * 2);
    const mask = table.length - 1;
    for (let e = 0; e < this.distinct; e++) {
      let slot = (this.hash1[e] as number) & mask;
      while (table[slot] !== 0) slot = (slot + 1) & mask;
      table[slot] = e + 1;
    }
    this.table = table;
  }

  export(): LiveKeysExport {
    return {
      arena: this.arena.subarray(0, this.arenaUsed),
      offsets: this.offsets.subarray(0, this.distinct),
      lengths: this.lengths.subarray(0, this.distinct),
      live: this.live.subarray(0, this.distinct),
      distinct: this.distinct,
      fingerprinted: this.fingerprinted,
      overflowed: this.overflowed,
    };
  }

  /**
   * Folds in the set of a later part of the replay: each of its names ends in its last state there. A name it kept
   * only as a fingerprint cannot be matched here, so then the count is given up (overflowed).
   */
  merge(later: LiveKeysExport): void {
    if (later.overflowed || later.fingerprinted > 0) {
      this.distinct = Math.max(this.distinct, later.distinct);
      this.overflowed = true;
      this.release();
      return;
    }
    for (let e = 0; e < later.distinct && !this.overflowed; e++) {
      const offset = later.offsets[e] as number;
      this.apply(later.arena, offset, offset + (later.lengths[e] as number), later.live[e] === 1);
    }
  }

  private release(): void {
    this.arena = Buffer.alloc(0);
    this.offsets = new Int32Array(0);
    this.lengths = new Int32Array(0);
    this.hash1 = new Int32Array(0);
    this.hash2 = new Int32Array(0);
    this.live = new Uint8Array(0);
    this.table = new Int32Array(0);
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
