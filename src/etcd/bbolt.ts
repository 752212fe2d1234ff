/**
 * A read-only bbolt (v1.3.6 file format) reader of our own, for etcd snapshot files.
 *
 * It never holds the whole file: pages are read with positional reads into a small set of reusable buffers (one per
 * level of the tree being walked, plus one read-ahead window for leaves), so memory stays bounded whatever the file
 * size. The walk checks the structure as it goes (what bbolt's tx.Check cares about, plus key order and element
 * bounds) and hands every leaf page to a visitor without copying keys or values.
 *
 * Format facts: etcd-snapshot-facts.md §1. All integers in the file are little-endian (amd64/arm64).
 */
import { readSync } from 'node:fs';
import type { RingReader } from './piece-ring.js';

export const PAGE_HEADER_SIZE = 16;
export const ELEMENT_SIZE = 16;
const BUCKET_HEADER_SIZE = 16;

export const FLAG_BRANCH = 0x01;
export const FLAG_LEAF = 0x02;
export const FLAG_META = 0x04;
export const FLAG_FREELIST = 0x10;
export const BUCKET_LEAF_FLAG = 0x01;

const MAGIC = 0xed0cdaed;
const VERSION = 2;
/** bbolt 1.3.6 reads the first 4096 bytes and falls back to the OS page size (4096 on x86-64) when meta 0 is bad. */
const FIRST_READ = 4096;
const OS_PAGE_SIZE = 4096;
/**
 * A run (page plus overflow) larger than this is a corrupt overflow count, not something etcd writes (etcd refuses
 * requests over --max-request-bytes, 1.5 MiB by default, and warns above 10 MiB); it also keeps memory bounded.
 */
const MAX_RUN_BYTES = 64 * 1024 * 1024;
/**
 * Deeper than any bbolt tree can be: a branch page keeps at least two children (etcd-io/bbolt: node.go, minKeys; a
 * smaller node is merged on commit), so n levels need 2^(n-1) pages, and 2^63 pages cannot exist. A file that claims
 * more is damaged (or made to hurt: a 4,000-level chain overflowed the stack), and every level may hold a buffer.
 */
export const MAX_TREE_DEPTH = 64;
/**
 * The most bytes a branch page (with its overflow) can take. bbolt keys are at most 32 KiB (etcd-io/bbolt bucket.go:
 * MaxKeySize = 32768), and a node is written in pieces of at most a page unless it has no more than four elements
 * (etcd-io/bbolt node.go@03e5cc7 splitTwo: `len(n.inodes) <= MinKeysPerPage*2 || n.sizeLessThan(pageSize)` keeps
 * it whole; splitIndex puts at least two elements in a piece and more only under the page size). A branch element is 16 bytes plus its
 * key, the page header 16: a larger branch run is a claim made to fill memory along a path (a chain of 8 MiB branch
 * runs held 72 MiB before it was refused, 156 MB peak), so it is damage.
 */
const MAX_BRANCH_NODE_BYTES = PAGE_HEADER_SIZE + 4 * (ELEMENT_SIZE + 32768);
/** Bytes the walk may hold in per-level buffers at once (a run can be 64 MiB; the whole walk stays well under 100 MB). */
const MAX_HELD_BYTES = 72 * 1024 * 1024;
/** Pages per chunk of the reachability marks: chunks are made only for pages the walk touches. */
const MARK_CHUNK_PAGES = 1 << 16;

/**
 * One mark per page (1 reachable, 2 listed as free), kept in chunks made on first use: memory follows the pages the
 * walk reaches, never the page count a file declares (a 3 MB sparse file that claimed 2 G pages took 2.1 GB).
 */
export class PageMarks {
  readonly chunks = new Map<number, Uint8Array>();
  /** the chunk used last: a walk marks runs of nearby pages, so most calls skip the Map */
  private lastIndex = -1;
  private lastChunk: Uint8Array | null = null;
  get(id: number): number {
    const index = Math.floor(id / MARK_CHUNK_PAGES);
    const chunk = index === this.lastIndex ? this.lastChunk : this.chunks.get(index);
    return chunk?.[id - index * MARK_CHUNK_PAGES] ?? 0;
  }
  set(id: number, mark: number): void {
    const index = Math.floor(id / MARK_CHUNK_PAGES);
    let chunk = index === this.lastIndex ? this.lastChunk : this.chunks.get(index);
    if (!chunk) this.chunks.set(index, (chunk = new Uint8Array(MARK_CHUNK_PAGES)));
    this.lastIndex = index;
    this.lastChunk = chunk;
    chunk[id - index * MARK_CHUNK_PAGES] = mark;
  }
  /** Every (page, mark) with a mark set in `chunks` (another walk's, sent from its thread), in page order. */
  static *marked(chunks: Map<number, Uint8Array>): Generator<[number, number]> {
    for (const index of [...chunks.keys()].sort((a, b) => a - b)) {
      const chunk = chunks.get(index) as Uint8Array;
      for (let i = 0; i < chunk.length; i++) if (chunk[i]) yield [index * MARK_CHUNK_PAGES + i, chunk[i] as number];
    }
  }
}
/**
 * Leaves that follow each other on disk are read this many bytes at a time. Small enough to stay in the core's L2
 * cache (512 KiB here): the kernel's copy into it and the CRC and parsing that follow hit the cache. A 512 KiB window
 * made every read() copy go to memory: read+CRC of 1 GiB took 0.75-0.9 s of CPU against 0.37-0.43 s at 128 KiB
 * (system time 450-600 ms against 60-100 ms; perf: the time is in the kernel's _copy_to_iter).
 */
const WINDOW_BYTES = 128 * 1024;
/** Structural problems reported at most; the rest are counted. */
const MAX_PROBLEMS = 8;

const TWO_POW_32 = 4294967296;

/**
 * buf.readUInt32LE(at) without its argument checks, for the walk's per-element loops, where the element table was
 * already checked to lie inside the buffer: V8 did not inline readUInt32LE there (a separate frame in CPU profiles,
 * ~4x the cost of these four loads on the names of a 1 GiB snapshot).
 */
export function u32At(buf: Buffer, at: number): number {
  return (
    ((buf[at] as number) |
      ((buf[at + 1] as number) << 8) |
      ((buf[at + 2] as number) << 16) |
      ((buf[at + 3] as number) << 24)) >>>
    0
  );
}

export interface Meta {
  /** 0 or 1: which meta page this is */
  index: number;
  magic: number;
  version: number;
  pageSize: number;
  flags: number;
  /** pgid of the root bucket's page */
  root: number;
  /** pgid of the stored freelist, or null when not stored (0xFFFF…FFFF, what etcd on Linux always writes) */
  freelist: number | null;
  /** high-water mark: number of pages in use */
  pgid: number;
  txid: bigint;
  /**
   * root, freelist and pgid exactly as stored: the numbers above are exact only below 2^53, and a sentence about a
   * damaged file must name the id the file holds, not a rounded one
   */
  exact: { root: bigint; freelist: bigint; pgid: bigint };
  checksum: bigint;
  /** FNV-1a 64 over the 56 meta bytes before the checksum */
  computedChecksum: bigint;
}

/**
 * Reads a u64 as a JS number, for the walk's fast path: exact below 2^53, and never smaller than the stored value's
 * high word allows, so an id past 2^53 stays far beyond any file's page count (it cannot alias a real page). Such an
 * id is damage; sentences name it through u64Text, never through this number.
 */
function readU64(buf: Buffer, off: number): number {
  return buf.readUInt32LE(off) + buf.readUInt32LE(off + 4) * TWO_POW_32;
}

/** A u64 of the file in exact decimal (18446744073709551615, not 18446744073709552000), for sentences. */
function u64Text(buf: Buffer, off: number): string {
  return buf.readBigUInt64LE(off).toString();
}

const FNV_OFFSET = 0xcbf29ce484222325n;
const FNV_PRIME = 0x100000001b3n;
const U64_MASK = 0xffffffffffffffffn;

/** FNV-1a 64 (Go's hash/fnv New64a), as bbolt's meta.sum64 uses it. Only ever run on 56 bytes. */
export function fnv1a64(bytes: Uint8Array): bigint {
  let hash = FNV_OFFSET;
  for (const byte of bytes) {
    hash ^= BigInt(byte);
    hash = (hash * FNV_PRIME) & U64_MASK;
  }
  return hash;
}

/** Parses the meta struct of a meta page starting at `pageStart` in `buf` (which must hold 80 bytes from there). */
export function parseMeta(buf: Buffer, pageStart: number, index: number): Meta {
  const m = pageStart + PAGE_HEADER_SIZE;
  const freelistRaw = buf.readBigUInt64LE(m + 32);
  const exact = { root: buf.readBigUInt64LE(m + 16), freelist: freelistRaw, pgid: buf.readBigUInt64LE(m + 40) };
  return {
    index,
    magic: buf.readUInt32LE(m),
    version: buf.readUInt32LE(m + 4),
    pageSize: buf.readUInt32LE(m + 8),
    flags: buf.readUInt32LE(m + 12),
    root: readU64(buf, m + 16),
    freelist: freelistRaw === U64_MASK ? null : Number(freelistRaw),
    pgid: readU64(buf, m + 40),
    txid: buf.readBigUInt64LE(m + 48),
    exact,
    checksum: buf.readBigUInt64LE(m + 56),
    computedChecksum: fnv1a64(buf.subarray(m, m + 56)),
  };
}

/** bbolt 1.3.6 meta.validate(): the error it would give, or null. A zero checksum is accepted in 1.3.6. */
export function metaError(meta: Meta): string | null {
  if (meta.magic !== MAGIC) return 'invalid database';
  if (meta.version !== VERSION) return 'version mismatch';
  if (meta.checksum !== 0n && meta.checksum !== meta.computedChecksum) return 'checksum error';
  return null;
}

/** True when the bytes look like a bbolt meta page (the magic at offset 16), whatever else is wrong with them. */
export function hasBoltMagic(buf: Buffer, pageStart: number): boolean {
  return buf.length >= pageStart + 24 && buf.readUInt32LE(pageStart + PAGE_HEADER_SIZE) === MAGIC;
}

export interface OpenedBolt {
  pageSize: number;
  /** the meta bbolt would use: higher txid if it validates, else the other */
  meta: Meta;
  metas: [Meta | null, Meta | null];
}

export type OpenResult = { ok: true; db: OpenedBolt } | { ok: false; problem: string };

const META_SENTENCES: Record<string, string> = {
  'invalid database': 'neither meta page carries the bbolt magic number',
  'version mismatch': 'the meta page has an unknown bbolt format version',
  'checksum error': 'both meta pages fail their checksum',
};

/**
 * Chooses the meta page exactly as bbolt 1.3.6 opens a file read-only: page size from meta 0 if it validates (else
 * the OS page size), both metas checked, the one with the higher txid used if valid, else the other.
 */
export function openBolt(fd: number, fileSize: number): OpenResult {
  const head = Buffer.alloc(FIRST_READ);
  if (readFully(fd, head, 0, FIRST_READ, 0) < FIRST_READ) {
    return { ok: false, problem: `it is only ${fileSize} bytes, too small to hold a bbolt database header` };
  }
  const meta0 = parseMeta(head, 0, 0);
  const pageSize = metaError(meta0) === null ? meta0.pageSize : OS_PAGE_SIZE;
  if (!isPlausiblePageSize(pageSize)) {
    return { ok: false, problem: `its meta page declares an impossible page size (${pageSize} bytes)` };
  }
  if (fileSize < 2 * pageSize) {
    return { ok: false, problem: `it is only ${fileSize} bytes, smaller than its two ${pageSize}-byte meta pages` };
  }
  const page1 = Buffer.alloc(PAGE_HEADER_SIZE + 64);
  readFully(fd, page1, 0, page1.length, pageSize);
  const meta1 = parseMeta(page1, 0, 1);
  const err0 = metaError(meta0);
  const err1 = metaError(meta1);
  if (err0 !== null && err1 !== null) {
    return { ok: false, problem: META_SENTENCES[err0] ?? err0 };
  }
  const [newer, older] = meta1.txid > meta0.txid ? [meta1, meta0] : [meta0, meta1];
  const meta = metaError(newer) === null ? newer : older;
  return {
    ok: true,
    db: { pageSize, meta, metas: [err0 === null ? meta0 : null, err1 === null ? meta1 : null] },
  };
}

function isPlausiblePageSize(size: number): boolean {
  return size >= 512 && size <= 1024 * 1024 && (size & (size - 1)) === 0;
}

/** readSync until `length` bytes or end of file; returns how many bytes were read. */
function readFully(fd: number, buf: Buffer, offset: number, length: number, position: number): number {
  let done = 0;
  while (done < length) {
    const n = readSync(fd, buf, offset + done, length - done, position + done);
    if (n === 0) break;
    done += n;
  }
  return done;
}

/** Where a leaf page lives while a visitor looks at it. Valid only during the call. */
export interface LeafPage {
  buf: Buffer;
  /** offset of the page header in buf */
  base: number;
  count: number;
  /**
   * When the keys and values are packed in element order (key0 value0 key1 value1 …, as bbolt writes them) and no
   * element is a sub-bucket: the byte range holding all of them, so one CRC call covers the page. Else -1.
   */
  packedStart: number;
  packedEnd: number;
}

function newLeafPage(): LeafPage {
  return { buf: Buffer.alloc(0), base: 0, count: 0, packedStart: -1, packedEnd: -1 };
}

/** Offsets of element i of a leaf page (`pos` counts from the element itself). */
export function leafElement(
  page: LeafPage,
  i: number,
): { flags: number; keyStart: number; keySize: number; valueSize: number } {
  const e = page.base + PAGE_HEADER_SIZE + i * ELEMENT_SIZE;
  const buf = page.buf;
  return {
    flags: buf.readUInt32LE(e),
    keyStart: e + buf.readUInt32LE(e + 4),
    keySize: buf.readUInt32LE(e + 8),
    valueSize: buf.readUInt32LE(e + 12),
  };
}

export interface BucketVisitor {
  /** Every non-empty leaf page of the bucket, in cursor order. Elements are already bounds- and order-checked. */
  leaf(page: LeafPage): void;
  /**
   * When set, the tail of this bucket's tree may be walked by another thread (see SubtreeSplitter): the visitor
   * then receives that walk's own visitor state, to fold in after its last page.
   */
  mergeTail?(tail: unknown): void;
}

/** What a walk of some subtrees of one bucket found, on another thread (walkSubtrees), to merge into this walk. */
export interface SubtreeResult {
  walk: WalkResult;
  /** 1 for each page that walk reached (PageMarks' chunks) */
  seen: Map<number, Uint8Array>;
  /** the first and last key of the bucket it saw (order across the split is checked here), null when none */
  firstKey: Buffer | null;
  lastKey: Buffer | null;
  /** its bucket visitor's state, for BucketVisitor.mergeTail */
  tail: unknown;
}

/** Hands the tail of a large bucket to another thread. */
export interface SubtreeSplitter {
  /** Starts walking `children` (page ids, in cursor order, at tree `level`); null when it cannot start. */
  start(children: number[], level: number): PendingSubtree | null;
}

export interface PendingSubtree {
  /** settles once poll() has an answer (a result or an error) */
  settled: Promise<void>;
  /** the result once the other thread is done, else null; throws what the other thread threw */
  poll(): SubtreeResult | null;
  cancel(): void;
}

export interface TreeVisitor {
  /**
   * Each top-level bucket, in cursor order, before its pages. `isBucket` is false when the root holds a plain value
   * under that name (bbolt's tx.Bucket returns nil: etcd's status fails). Return null to walk it unvisited.
   */
  bucket(buf: Buffer, nameStart: number, nameEnd: number, isBucket: boolean): BucketVisitor | null;
}

export interface WalkResult {
  /** structural problems, one phrase each (without the leading "page N"), at most MAX_PROBLEMS */
  problems: string[];
  /** how many problems beyond the listed ones */
  moreProblems: number;
  /** true when some page could not be read at all (out of range or past the end of the file) */
  unreadable: boolean;
  pagesReachable: number;
  pagesFree: number;
  /** the most bytes the page buffers ever held at once */
  maxBytesHeld: number;
  /** bytes read from the file by the walk */
  bytesRead: number;
}

class WalkStop extends Error {}

/** What a walk yields when it pauses: nothing (let other work run, go on at once) or a promise to wait for. */
export type WalkPause = Promise<void> | undefined;

/**
 * Walks the whole tree from the chosen meta: every bucket, every page, checking structure and reachability.
 * A generator so the caller can pause every so often (the walk yields every `pagesPerYield` pages) to let other
 * work (the sha256 pass, progress, Ctrl-C) run; drive it with `runWalk`.
 */
export class BoltWalker {
  private readonly pageSize: number;
  private readonly pgid: number;
  /** 1 = reachable, 2 = free (stored freelist) */
  private readonly seen = new PageMarks();
  private readonly levelBuffers: Buffer[] = [];
  /** the window leaves are served from: readWindow, or the hashing thread's ring (windowBase: where windowStart is) */
  private window: Buffer;
  private windowBase = 0;
  private windowStart = -1;
  private windowEnd = -1;
  /** the walk's own buffer for windows read from the file */
  private readWindow: Buffer;
  /** page after the last leaf run read, and how many leaves in a row followed their predecessor on disk */
  private nextLeaf = -1;
  private leafStreak = 0;
  /** the run readRun read last: buffer, offset of its header, end */
  private runBuf: Buffer = Buffer.alloc(0);
  private runBase = 0;
  private runEnd = 0;
  /** reused for every plain leaf: visitors must not keep a LeafPage beyond their call */
  private readonly scratchPage: LeafPage = newLeafPage();
  private bytesHeld = 0;
  private pagesSinceYield = 0;
  readonly result: WalkResult = {
    problems: [],
    moreProblems: 0,
    unreadable: false,
    pagesReachable: 0,
    pagesFree: 0,
    maxBytesHeld: 0,
    bytesRead: 0,
  };

  constructor(
    private readonly fd: number,
    /** bytes of the file that belong to the database (file size minus a sha256 trailer) */
    private readonly dataEnd: number,
    private readonly db: OpenedBolt,
    private readonly visitor: TreeVisitor,
    private readonly pagesPerYield = 2048,
    /** when given, a bucket whose visitor can merge a tail has the second half of its root's children walked by it */
    private readonly splitter: SubtreeSplitter | null = null,
    /** the hashing thread's pieces of the file (piece-ring.ts): what it holds is taken from there, not read again */
    ring: RingReader | null = null,
  ) {
    this.pageSize = db.pageSize;
    this.pgid = db.meta.pgid;
    this.window = Buffer.alloc(0);
    this.readWindow = this.window;
    if (ring && !ring.fits(this.pageSize)) ring.close();
    this.ring = ring && ring.fits(this.pageSize) ? ring : null;
  }

  private readonly ring: RingReader | null;

  *walk(): Generator<WalkPause, WalkResult, void> {
    const meta = this.db.meta;
    if (this.pgid < 2) {
      this.problem(`the meta page says the database has ${this.pgid} pages, fewer than its own two meta pages`);
      this.result.unreadable = true;
      return this.result;
    }
    if (this.pgid * this.pageSize > this.dataEnd) {
      const need = meta.exact.pgid * BigInt(this.pageSize);
      this.problem(`the file is cut short: the database needs ${need} bytes but only ${this.dataEnd} are there`);
      this.result.unreadable = true;
      return this.result;
    }
    this.seen.set(0, 1);
    this.seen.set(1, 1);
    try {
      if (meta.freelist !== null && meta.freelist >= this.pgid) {
        this.fatal(`the meta page points its freelist at page ${meta.exact.freelist}, outside the database`);
      }
      if (meta.freelist !== null) this.markFreelist(meta.freelist);
      if (meta.root >= this.pgid) this.outsideReference(meta.exact.root.toString());
      yield* this.walkRootBucket(meta.root);
    } catch (error) {
      if (!(error instanceof WalkStop)) throw error;
    }
    if (!this.result.unreadable) this.countFreePages();
    return this.result;
  }

  private problem(sentence: string): void {
    if (this.result.problems.length < MAX_PROBLEMS) this.result.problems.push(sentence);
    else this.result.moreProblems++;
  }

  /**
   * A page id at `off` of `buf`, for the walk: any id past the database's pages is damage, named exactly. Ids below
   * the page count are below 2^53 (the file holds them all), so the number the walk goes on with is exact.
   */
  private pageRef(buf: Buffer, off: number): number {
    const id = readU64(buf, off);
    if (id >= this.pgid) this.outsideReference(u64Text(buf, off));
    return id;
  }

  private outsideReference(idText: string): never {
    this.fatal(`a page reference points at page ${idText}, outside the database's ${this.pgid} pages`);
  }

  /** A page that cannot be read ends the walk: nothing after it can be trusted. */
  private fatal(sentence: string): never {
    this.problem(sentence);
    this.result.unreadable = true;
    throw new WalkStop();
  }

  private *walkRootBucket(rootPgid: number): Generator<WalkPause, void, void> {
    yield* this.walkPages(rootPgid, 0, new BucketState(), null, true);
  }

  /**
   * The root leaf lists the top-level buckets. Each bucket is walked right here, in cursor order, so the visitor
   * sees bucket name then its pairs as etcd's hash does.
   */
  private *visitRootLeafBuckets(page: LeafPage, level: number): Generator<WalkPause, void, void> {
    for (let i = 0; i < page.count; i++) {
      const el = leafElement(page, i);
      const nameEnd = el.keyStart + el.keySize;
      const isBucket = (el.flags & BUCKET_LEAF_FLAG) !== 0 && el.valueSize >= BUCKET_HEADER_SIZE;
      const visitor = this.visitor.bucket(page.buf, el.keyStart, nameEnd, isBucket);
      if (!isBucket) continue;
      yield* this.walkBucketValue(page.buf, nameEnd, el.valueSize, level, visitor);
    }
  }

  /** A bucket's value: 16-byte header {root, sequence}, then (root 0) an inline page image. */
  private *walkBucketValue(
    buf: Buffer,
    valueStart: number,
    valueSize: number,
    level: number,
    visitor: BucketVisitor | null,
  ): Generator<WalkPause, void, void> {
    const root = this.pageRef(buf, valueStart);
    const state = new BucketState();
    if (root !== 0) {
      if (visitor?.mergeTail && this.splitter) {
        yield* this.walkSplit(root, level, state, visitor);
        return;
      }
      yield* this.walkPages(root, level, state, visitor ? (p) => visitor.leaf(p) : null, false);
      return;
    }
    const base = valueStart + BUCKET_HEADER_SIZE;
    const end = valueStart + valueSize;
    if (end - base < PAGE_HEADER_SIZE) {
      this.problem('an inline bucket is shorter than a page header');
      return;
    }
    const flags = buf.readUInt16LE(base + 8);
    if ((flags & FLAG_LEAF) === 0) {
      this.problem(`an inline bucket is not a leaf page (flags ${flags})`);
      return;
    }
    const page = this.checkLeaf(buf, base, end, 'an inline bucket', state, newLeafPage());
    // Sub-buckets of an inline bucket are inline too; walk them for their structure only.
    yield* this.walkSubBuckets(page, level);
    if (page.count > 0 && visitor) visitor.leaf(page);
  }

  /**
   * A bucket whose root is a branch page: the second half of its children goes to another thread while this one walks
   * the first half; the other's result is folded in after (pages reached, problems, key order across the split, the
   * visitor's state). Anything else is walked here as usual.
   */
  private *walkSplit(
    pgid: number,
    level: number,
    state: BucketState,
    visitor: BucketVisitor,
  ): Generator<WalkPause, void, void> {
    const onLeaf = (p: LeafPage): void => visitor.leaf(p);
    this.readRun(pgid, level, true);
    const buf = this.runBuf;
    const base = this.runBase;
    if ((buf.readUInt16LE(base + 8) & FLAG_BRANCH) === 0 || this.splitter === null) {
      yield* this.walkCurrentRun(pgid, level, state, onLeaf, false);
      return;
    }
    const count = this.checkBranch(buf, base, this.runEnd, pgid);
    const children: number[] = [];
    for (let i = 0; i < count; i++) children.push(this.pageRef(buf, base + PAGE_HEADER_SIZE + i * ELEMENT_SIZE + 8));
    const half = Math.floor(count / 2);
    const pending = half >= 1 ? this.splitter.start(children.slice(half), level + 1) : null;
    const mine = pending ? children.slice(0, half) : children;
    try {
      yield* this.walkChildren(mine, level, state, onLeaf);
      if (!pending) return;
      let tail = pending.poll();
      while (tail === null) {
        yield pending.settled;
        tail = pending.poll();
      }
      this.mergeSubtree(tail, state, visitor);
    } finally {
      pending?.cancel();
    }
  }

  /** Children of a branch page, in order (the loop of walkCurrentRun). */
  private *walkChildren(
    children: number[],
    level: number,
    state: BucketState,
    onLeaf: ((page: LeafPage) => void) | null,
  ): Generator<WalkPause, void, void> {
    for (const child of children) {
      if (++this.pagesSinceYield >= this.pagesPerYield) {
        this.pagesSinceYield = 0;
        yield;
      }
      this.readRun(child, level + 1, false);
      if (this.visitPlainLeaf(child, state, onLeaf)) continue;
      yield* this.walkCurrentRun(child, level + 1, state, onLeaf, false);
    }
  }

  /**
   * The other thread's side of walkSplit: walks `children` (at `level`, all of one bucket) and reports what it found.
   * Runs to the end without pausing. Checks are the same as in a whole walk, except those that need the rest of the
   * tree (pages reached twice across the two halves, free pages), which the merge does.
   */
  walkSubtrees(children: number[], level: number, visitor: BucketVisitor): SubtreeResult {
    const state = new BucketState();
    const onLeaf = (p: LeafPage): void => visitor.leaf(p);
    try {
      const walk = this.walkChildren(children, level - 1, state, onLeaf);
      while (!walk.next().done);
    } catch (error) {
      if (!(error instanceof WalkStop)) throw error;
    }
    return {
      walk: this.result,
      seen: this.seen.chunks,
      firstKey: state.firstKey(),
      lastKey: state.lastKeyCopy(),
      tail: null,
    };
  }

  private mergeSubtree(tail: SubtreeResult, state: BucketState, visitor: BucketVisitor): void {
    const theirs = tail.walk;
    for (const p of theirs.problems) this.problem(p);
    this.result.moreProblems += theirs.moreProblems;
    this.result.pagesReachable += theirs.pagesReachable;
    this.result.bytesRead += theirs.bytesRead;
    this.result.maxBytesHeld += theirs.maxBytesHeld;
    for (const [id, mark] of PageMarks.marked(tail.seen)) {
      if (mark !== 1 || id < 2 || id >= this.pgid) continue;
      const mine = this.seen.get(id);
      if (mine === 1) this.problem(`page ${id} is referenced twice`);
      else if (mine === 2) this.problem(`page ${id} is in use but also listed as free`);
      this.seen.set(id, 1);
    }
    if (theirs.unreadable) {
      this.result.unreadable = true;
      throw new WalkStop();
    }
    if (tail.firstKey && tail.lastKey) {
      if (!state.isFirstKeyAfterLast(tail.firstKey, 0, tail.firstKey.length)) {
        this.problem('a bucket has keys out of order where its pages meet');
      }
      state.rememberLastKey(tail.lastKey, 0, tail.lastKey.length);
    }
    visitor.mergeTail?.(tail.tail);
  }

  /**
   * Walks a bucket's B+tree from `pgid`: branch pages recurse left to right, leaf pages go to `onLeaf`.
   * `isRoot` marks the root bucket, whose leaves hold the top-level buckets (walked in place).
   */
  private *walkPages(
    pgid: number,
    level: number,
    state: BucketState,
    onLeaf: ((page: LeafPage) => void) | null,
    isRoot: boolean,
  ): Generator<WalkPause, void, void> {
    this.readRun(pgid, level, isRoot);
    yield* this.walkCurrentRun(pgid, level, state, onLeaf, isRoot);
  }

  /** The run just read by readRun: a branch (children walked here) or a leaf. */
  private *walkCurrentRun(
    pgid: number,
    level: number,
    state: BucketState,
    onLeaf: ((page: LeafPage) => void) | null,
    isRoot: boolean,
  ): Generator<WalkPause, void, void> {
    const buf = this.runBuf;
    const base = this.runBase;
    const end = this.runEnd;
    const flags = buf.readUInt16LE(base + 8);
    if (flags & FLAG_BRANCH) {
      const count = this.checkBranch(buf, base, end, pgid);
      for (let i = 0; i < count; i++) {
        if (++this.pagesSinceYield >= this.pagesPerYield) {
          this.pagesSinceYield = 0;
          yield;
        }
        const child = this.pageRef(buf, base + PAGE_HEADER_SIZE + i * ELEMENT_SIZE + 8);
        this.readRun(child, level + 1, isRoot);
        // The common case, a plain leaf, is handled without a generator of its own.
        if (!isRoot && this.visitPlainLeaf(child, state, onLeaf)) continue;
        yield* this.walkCurrentRun(child, level + 1, state, onLeaf, isRoot);
      }
      return;
    }
    if ((flags & FLAG_LEAF) === 0) {
      this.fatal(`page ${pgid} has an invalid type (flags ${flags}); it is neither a branch nor a leaf page`);
    }
    const page = this.checkLeaf(buf, base, end, pgid, state, newLeafPage());
    if (page.count === 0) return;
    if (isRoot) {
      yield* this.visitRootLeafBuckets(page, level + 1);
      return;
    }
    if (page.packedStart < 0 && this.hasSubBuckets(page)) {
      // A leaf with nested buckets must survive the walk into them: copy it out of the shared window.
      const own = this.levelBuffer(level, end - base);
      if (own !== buf) buf.copy(own, 0, base, end);
      const kept: LeafPage = { ...page, buf: own, base: 0, packedStart: -1, packedEnd: -1 };
      yield* this.walkSubBuckets(kept, level + 1);
      if (onLeaf) onLeaf(kept);
      return;
    }
    if (onLeaf) onLeaf(page);
  }

  /**
   * When the run just read is a leaf without nested buckets (every leaf of an etcd database), checks and visits it
   * and returns true; otherwise leaves it untouched for walkCurrentRun.
   */
  private visitPlainLeaf(pgid: number, state: BucketState, onLeaf: ((page: LeafPage) => void) | null): boolean {
    const buf = this.runBuf;
    const base = this.runBase;
    if ((buf.readUInt16LE(base + 8) & FLAG_LEAF) === 0) return false;
    const count = buf.readUInt16LE(base + 10);
    if (base + PAGE_HEADER_SIZE + count * ELEMENT_SIZE > this.runEnd) return false;
    for (let i = 0; i < count; i++) {
      if (u32At(buf, base + PAGE_HEADER_SIZE + i * ELEMENT_SIZE) & BUCKET_LEAF_FLAG) return false;
    }
    const page = this.checkLeaf(buf, base, this.runEnd, pgid, state, this.scratchPage);
    if (page.count > 0 && onLeaf) onLeaf(page);
    return true;
  }

  private hasSubBuckets(page: LeafPage): boolean {
    for (let i = 0; i < page.count; i++) {
      if (page.buf.readUInt32LE(page.base + PAGE_HEADER_SIZE + i * ELEMENT_SIZE) & BUCKET_LEAF_FLAG) return true;
    }
    return false;
  }

  /** Nested buckets (etcd has none) are walked for structure and reachability, not visited. */
  private *walkSubBuckets(page: LeafPage, level: number): Generator<WalkPause, void, void> {
    for (let i = 0; i < page.count; i++) {
      const el = leafElement(page, i);
      if ((el.flags & BUCKET_LEAF_FLAG) === 0) continue;
      if (el.valueSize < BUCKET_HEADER_SIZE) {
        this.problem('a nested bucket header is shorter than 16 bytes');
        continue;
      }
      yield* this.walkBucketValue(page.buf, el.keyStart + el.keySize, el.valueSize, level, null);
    }
  }

  /**
   * Reads page `pgid` and its overflow pages, after checking the ids are in range and never seen before.
   * `keep` (or a branch page) puts the run in the buffer of its tree level so deeper reads cannot clobber it.
   */
  private readRun(pgid: number, level: number, keep: boolean): void {
    if (level > MAX_TREE_DEPTH) {
      this.fatal(
        `the tree reaches page ${pgid} more than ${MAX_TREE_DEPTH} levels deep, which no bbolt database can be: the file is damaged`,
      );
    }
    if (pgid < 2 || pgid >= this.pgid) this.outsideReference(String(pgid));
    const position = pgid * this.pageSize;
    let first = this.readPageStart(pgid, position, level);
    let buf = first.buf;
    let base = first.base;
    if (readU64(buf, base) !== pgid) {
      this.fatal(`page ${pgid} carries the id ${u64Text(buf, base)} in its header: the page is damaged`);
    }
    const overflow = buf.readUInt32LE(base + 12);
    if (pgid + overflow >= this.pgid) {
      this.fatal(`page ${pgid} runs over ${overflow} more pages, past the database's ${this.pgid} pages`);
    }
    const runBytes = (overflow + 1) * this.pageSize;
    if (runBytes > MAX_RUN_BYTES) this.fatal(`page ${pgid} claims an impossible ${overflow} overflow pages`);
    const isBranch = (buf.readUInt16LE(base + 8) & FLAG_BRANCH) !== 0;
    if (isBranch && overflow > 0 && runBytes - this.pageSize >= MAX_BRANCH_NODE_BYTES) {
      this.fatal(
        `branch page ${pgid} runs over ${overflow} more pages, more than a branch page of 32 KiB keys can need: the page is damaged`,
      );
    }
    this.markReachable(pgid, overflow);
    if (runBytes > first.valid && first.buf === this.window && this.window !== this.readWindow) {
      // A run that goes on past the ring's window it starts in: a new window from its start may hold it whole.
      const shared = this.ring?.windowAt(position, this.dataEnd);
      if (shared) this.takeRingWindow(position, shared);
      if (shared && shared.valid >= runBytes) {
        first = { buf: this.window, base: shared.base, valid: shared.valid };
        buf = first.buf;
        base = first.base;
      }
    }
    if (runBytes > first.valid) {
      const own = this.levelBuffer(level, runBytes);
      this.readInto(own, runBytes, position);
      buf = own;
      base = 0;
    } else if (buf === this.window && (keep || isBranch)) {
      const own = this.levelBuffer(level, runBytes);
      buf.copy(own, 0, base, base + runBytes);
      buf = own;
      base = 0;
    }
    if (!isBranch) {
      // Branch pages usually sit elsewhere; only leaves tell whether the data is laid out in walk order.
      this.leafStreak = pgid === this.nextLeaf ? this.leafStreak + 1 : 0;
      this.nextLeaf = pgid + overflow + 1;
    }
    this.runBuf = buf;
    this.runBase = base;
    this.runEnd = base + runBytes;
  }

  /**
   * At least the first page of `pgid`. Leaves that follow each other on disk (a defragmented or freshly written
   * file) are read a whole window at a time and served from it; anything else is read page by page into the buffer
   * of its tree level, so a branch page or a scattered leaf never throws the window away.
   */
  private readPageStart(pgid: number, position: number, level: number): { buf: Buffer; base: number; valid: number } {
    if (position >= this.windowStart && position + this.pageSize <= this.windowEnd && this.windowHeld()) {
      const base = this.windowBase + position - this.windowStart;
      return { buf: this.window, base, valid: this.windowEnd - position };
    }
    if (pgid === this.nextLeaf && this.leafStreak >= 1) {
      const shared = this.ring?.windowAt(position, this.dataEnd);
      if (shared) {
        this.takeRingWindow(position, shared);
        return { buf: this.window, base: shared.base, valid: shared.valid };
      }
      const windowBytes = Math.max(WINDOW_BYTES, this.pageSize);
      if (this.readWindow.length < windowBytes) {
        this.bytesHeld += windowBytes - this.readWindow.length;
        this.readWindow = Buffer.allocUnsafe(windowBytes);
        this.noteHeld();
      }
      // Before the read: readInto may stop the walk, which must not leave the window on bytes it no longer holds.
      this.windowStart = this.windowEnd = -1;
      const length = Math.min(windowBytes, this.dataEnd - position);
      this.readInto(this.readWindow, length, position, true);
      this.window = this.readWindow;
      this.windowBase = 0;
      this.windowStart = position;
      this.windowEnd = position + length;
      return { buf: this.window, base: 0, valid: length };
    }
    const own = this.levelBuffer(level, this.pageSize);
    this.readInto(own, this.pageSize, position);
    return { buf: own, base: 0, valid: this.pageSize };
  }

  /** Whether the window still holds its bytes: one from the ring only while the walk has not given the ring up. */
  private windowHeld(): boolean {
    return this.window === this.readWindow || (this.ring?.active ?? false);
  }

  /** Serves leaves from `position` on out of the hashing thread's ring (RingReader.windowAt). */
  private takeRingWindow(position: number, shared: { base: number; valid: number }): void {
    this.window = this.ring?.ring.data as Buffer;
    this.windowBase = shared.base;
    this.windowStart = position;
    this.windowEnd = position + shared.valid;
  }

  /**
   * Reads exactly `length` bytes; the range was checked against the file size, so a short read means it shrank.
   * `window`: the read of a window of leaves, for which the ring was asked already.
   */
  private readInto(buf: Buffer, length: number, position: number, window = false): void {
    if (!window) this.ring?.fileRead();
    const n = readFully(this.fd, buf, 0, length, position);
    this.result.bytesRead += n;
    if (n < length)
      this.fatal(`the file ends inside page ${Math.floor((position + n) / this.pageSize)}: it is cut short`);
  }

  private levelBuffer(level: number, bytes: number): Buffer {
    const existing = this.levelBuffers[level];
    if (existing && existing.length >= bytes) return existing;
    const size = Math.max(bytes, this.pageSize);
    if (this.bytesHeld + size - (existing?.length ?? 0) > MAX_HELD_BYTES) {
      this.fatal(
        `the pages along one path of the tree would need more than ${MAX_HELD_BYTES / 1024 / 1024} MiB at once, which no bbolt database needs: the file is damaged`,
      );
    }
    this.bytesHeld += size - (existing?.length ?? 0);
    const fresh = Buffer.allocUnsafe(size);
    this.levelBuffers[level] = fresh;
    this.noteHeld();
    return fresh;
  }

  private noteHeld(): void {
    if (this.bytesHeld > this.result.maxBytesHeld) this.result.maxBytesHeld = this.bytesHeld;
  }

  private markReachable(pgid: number, overflow: number): void {
    for (let id = pgid; id <= pgid + overflow; id++) {
      const mark = this.seen.get(id);
      if (mark === 1) this.fatal(`page ${id} is referenced twice`);
      if (mark === 2) this.problem(`page ${id} is in use but also listed as free`);
      this.seen.set(id, 1);
    }
    this.result.pagesReachable += overflow + 1;
  }

  /** Checks a branch page's elements; returns how many children can be followed. */
  private checkBranch(buf: Buffer, base: number, end: number, pgid: number): number {
    const count = buf.readUInt16LE(base + 10);
    if (base + PAGE_HEADER_SIZE + count * ELEMENT_SIZE > end) {
      this.fatal(`page ${pgid} lists more elements than fit in it`);
    }
    if (count === 0) this.problem(`branch page ${pgid} is empty`);
    let prevStart = -1;
    let prevEnd = -1;
    for (let i = 0; i < count; i++) {
      const e = base + PAGE_HEADER_SIZE + i * ELEMENT_SIZE;
      const keyStart = e + buf.readUInt32LE(e);
      const keyEnd = keyStart + buf.readUInt32LE(e + 4);
      if (keyEnd > end) this.fatal(`page ${pgid} has an element pointing outside the page`);
      if (prevStart >= 0 && !keyAfter(buf, keyStart, keyEnd, buf, prevStart, prevEnd)) {
        this.problem(`branch page ${pgid} has its keys out of order`);
      }
      prevStart = keyStart;
      prevEnd = keyEnd;
    }
    return count;
  }

  /**
   * Checks a leaf page (or an inline bucket's page image) and describes it: element table and keys/values inside the
   * page, keys strictly ascending (within the page and after the previous page of the bucket), and whether the
   * key/value bytes are packed in element order.
   */
  private checkLeaf(
    buf: Buffer,
    base: number,
    end: number,
    /** the page's id, or what to call it in a sentence (an inline bucket); a number is named only on a problem */
    place: string | number,
    state: BucketState,
    out: LeafPage,
  ): LeafPage {
    const count = buf.readUInt16LE(base + 10);
    const table = base + PAGE_HEADER_SIZE;
    if (table + count * ELEMENT_SIZE > end) {
      this.fatal(`${placeName(place)} lists more elements than fit in it`);
    }
    let packedStart = -1;
    let expected = -1;
    let packed = true;
    let prevStart = -1;
    let prevEnd = -1;
    for (let i = 0; i < count; i++) {
      const e = table + i * ELEMENT_SIZE;
      const flags = u32At(buf, e);
      const keyStart = e + u32At(buf, e + 4);
      const keyEnd = keyStart + u32At(buf, e + 8);
      const valueEnd = keyEnd + u32At(buf, e + 12);
      if (valueEnd > end || keyStart < table + count * ELEMENT_SIZE) {
        this.fatal(`${placeName(place)} has an element pointing outside the page`);
      }
      if (i === 0) {
        packedStart = keyStart;
        if (!state.isFirstKeyAfterLast(buf, keyStart, keyEnd))
          this.problem(`${placeName(place)} has keys out of order`);
      } else {
        if (keyStart !== expected) packed = false;
        if (!keyAfter(buf, keyStart, keyEnd, buf, prevStart, prevEnd))
          this.problem(`${placeName(place)} has keys out of order`);
      }
      if (flags & BUCKET_LEAF_FLAG) packed = false;
      expected = valueEnd;
      prevStart = keyStart;
      prevEnd = keyEnd;
    }
    if (count > 0) state.rememberLastKey(buf, prevStart, prevEnd);
    out.buf = buf;
    out.base = base;
    out.count = count;
    out.packedStart = packed && count > 0 ? packedStart : -1;
    out.packedEnd = packed && count > 0 ? expected : -1;
    return out;
  }

  /** A stored freelist (etcd never writes one): its pages are in use, the ids it lists are free. */
  private markFreelist(pgid: number): void {
    if (pgid < 2 || pgid >= this.pgid) {
      this.fatal(`the meta page points its freelist at page ${pgid}, outside the database`);
    }
    const head = Buffer.alloc(this.pageSize);
    this.readInto(head, this.pageSize, pgid * this.pageSize);
    if ((head.readUInt16LE(8) & FLAG_FREELIST) === 0) this.fatal(`page ${pgid} should be the freelist but is not`);
    const overflow = head.readUInt32LE(12);
    if (pgid + overflow >= this.pgid) this.fatal(`the freelist page ${pgid} runs past the database`);
    const runBytes = (overflow + 1) * this.pageSize;
    const run = Buffer.alloc(runBytes);
    this.readInto(run, runBytes, pgid * this.pageSize);
    this.markReachable(pgid, overflow);
    let count = run.readUInt16LE(10);
    let idsAt = PAGE_HEADER_SIZE;
    if (count === 0xffff) {
      count = readU64(run, PAGE_HEADER_SIZE);
      idsAt += 8;
    }
    if (idsAt + count * 8 > runBytes) this.fatal(`the freelist page ${pgid} lists more ids than fit in it`);
    for (let i = 0; i < count; i++) {
      const id = readU64(run, idsAt + i * 8);
      if (id < 2 || id >= this.pgid)
        this.problem(`the freelist lists page ${u64Text(run, idsAt + i * 8)}, outside the database`);
      else if (this.seen.get(id) === 2) this.problem(`page ${id} is listed as free twice`);
      else this.seen.set(id, 2);
    }
  }

  /** With no stored freelist, free pages are simply the unreachable ones (bbolt's freepages()). */
  private countFreePages(): void {
    const stored = this.db.meta.freelist !== null;
    const chunks = this.seen.chunks;
    const last = Math.ceil(this.pgid / MARK_CHUNK_PAGES);
    const touched = [...chunks.keys()].filter((i) => i < last).sort((a, b) => a - b);
    let from = 2;
    const untouched = (end: number) => {
      // pages no walk reached and no freelist named, counted without a mark each
      if (end <= from) return;
      this.result.pagesFree += end - from;
      if (stored) {
        for (let id = from; id < end && this.result.problems.length < MAX_PROBLEMS; id++, from++)
          this.problem(`page ${id} is neither reachable nor free`);
        this.result.moreProblems += Math.max(0, end - from);
      }
    };
    for (const index of touched) {
      const start = Math.max(2, index * MARK_CHUNK_PAGES);
      untouched(start);
      const chunk = chunks.get(index) as Uint8Array;
      const end = Math.min(this.pgid, (index + 1) * MARK_CHUNK_PAGES);
      for (let id = start; id < end; id++) {
        const mark = chunk[id % MARK_CHUNK_PAGES];
        if (mark === 1) continue;
        this.result.pagesFree++;
        if (stored && mark !== 2) this.problem(`page ${id} is neither reachable nor free`);
      }
      from = end;
    }
    untouched(this.pgid);
  }
}

/** A leaf in a sentence: "page N", or what the caller called it. */
function placeName(place: string | number): string {
  return typeof place === 'number' ? `page ${place}` : place;
}

/** True when key a is strictly greater than key b, byte-wise (bbolt's order), without slicing either buffer. */
function keyAfter(a: Buffer, aStart: number, aEnd: number, b: Buffer, bStart: number, bEnd: number): boolean {
  const aLength = aEnd - aStart;
  const bLength = bEnd - bStart;
  if (aLength > 64 || bLength > 64) {
    // b.compare(target a, …, source b range) is negative when b sorts before a.
    return b.compare(a, aStart, aEnd, bStart, bEnd) < 0;
  }
  // Short keys (etcd's revision keys are 17 bytes) compare faster here than through a native call.
  const common = aLength < bLength ? aLength : bLength;
  for (let i = 0; i < common; i++) {
    const x = a[aStart + i] as number;
    const y = b[bStart + i] as number;
    if (x !== y) return x > y;
  }
  return aLength > bLength;
}

/** The last key of the previous leaf of a bucket, to check order across pages without holding the pages. */
class BucketState {
  private lastKey: Buffer = Buffer.alloc(0);
  private lastLength = -1;
  private first: Buffer | null = null;

  isFirstKeyAfterLast(buf: Buffer, start: number, end: number): boolean {
    if (this.lastLength < 0) {
      this.first = Buffer.from(buf.subarray(start, end));
      return true;
    }
    return keyAfter(buf, start, end, this.lastKey, 0, this.lastLength);
  }

  /** the first key met (a copy), null before any */
  firstKey(): Buffer | null {
    return this.first;
  }

  lastKeyCopy(): Buffer | null {
    return this.lastLength < 0 ? null : Buffer.from(this.lastKey.subarray(0, this.lastLength));
  }

  rememberLastKey(buf: Buffer, start: number, end: number): void {
    const length = end - start;
    if (this.lastKey.length < length) this.lastKey = Buffer.allocUnsafe(Math.max(length, 64));
    const lastKey = this.lastKey;
    // Short keys (etcd's 17-byte revisions, once per leaf) are copied here: a native call costs more than the bytes.
    if (length <= 64) for (let i = 0; i < length; i++) lastKey[i] = buf[start + i] as number;
    else buf.copy(lastKey, 0, start, end);
    this.lastLength = length;
  }
}

/**
 * Drives a walk, pausing at each of its yields so timers, I/O callbacks and signals get their turn.
 * Throws the signal's reason when aborted.
 */
export async function runWalk(walker: BoltWalker, signal?: AbortSignal): Promise<WalkResult> {
  const walk = walker.walk();
  try {
    for (;;) {
      signal?.throwIfAborted();
      const step = walk.next();
      if (step.done) return step.value;
      if (step.value) await step.value;
      else await new Promise<void>((resolve) => setImmediate(resolve));
    }
  } finally {
    // Ends a walk left half way (aborted, or thrown): its finally blocks stop any thread it started.
    walk.return(undefined as never);
  }
}
