/**
 * Writes etcd databases in the bbolt 1.3.6 file format (etcd-snapshot-facts.md §1–§3), so the simulator can serve
 * snapshots that real etcd tools accept: `etcdctl snapshot status` reads them, `snapshot restore` restores them and a
 * real etcd serves their keys. Everything is built in memory: simulator databases are small.
 *
 * Layout choices follow what bbolt itself produces: page 0 and 1 are meta pages (the second with txid - 1, as etcd's
 * snapshot stream writes them), the freelist is not stored (etcd on Linux never stores it), small buckets are inline,
 * large ones are B+trees of leaf and branch pages, and a value bigger than a page gets overflow pages.
 */
import { createHash } from 'node:crypto';
import { ProtoWriter } from '../talos/proto-wire.js';

export const DEFAULT_PAGE_SIZE = 4096;

const MAGIC = 0xed0cdaed;
const VERSION = 2;
const PAGE_HEADER_SIZE = 16;
const ELEMENT_SIZE = 16;
const BUCKET_HEADER_SIZE = 16;
const FLAG_BRANCH = 0x01;
const FLAG_LEAF = 0x02;
const FLAG_META = 0x04;
const BUCKET_LEAF_FLAG = 0x01;
const NO_FREELIST = 0xffffffffffffffffn;

/** One key/value pair of a bucket. Keys must be unique within a bucket; they are sorted here. */
export type BucketEntry = readonly [key: Uint8Array, value: Uint8Array];

/** Top-level buckets by name; each name maps to its pairs. */
export type BucketMap = ReadonlyMap<string, readonly BucketEntry[]>;

interface Element {
  key: Uint8Array;
  value: Uint8Array;
  flags: number;
}

/** Pages are appended in order; page ids are their index. */
class PageAllocator {
  private readonly chunks: Buffer[] = [];
  private nextId: number;

  constructor(
    readonly pageSize: number,
    firstId: number,
  ) {
    this.nextId = firstId;
  }

  get highWaterMark(): number {
    return this.nextId;
  }

  /** Places a page image (header written here) and returns its id; images larger than a page overflow. */
  place(flags: number, count: number, body: Buffer): number {
    const id = this.nextId;
    const pages = Math.max(1, Math.ceil((PAGE_HEADER_SIZE + body.length) / this.pageSize));
    const image = Buffer.alloc(pages * this.pageSize);
    writePageHeader(image, id, flags, count, pages - 1);
    body.copy(image, PAGE_HEADER_SIZE);
    this.chunks.push(image);
    this.nextId += pages;
    return id;
  }

  concat(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

function writePageHeader(buf: Buffer, id: number, flags: number, count: number, overflow: number): void {
  buf.writeBigUInt64LE(BigInt(id), 0);
  buf.writeUInt16LE(flags, 8);
  buf.writeUInt16LE(count, 10);
  buf.writeUInt32LE(overflow, 12);
}

const compareBytes = (a: Uint8Array, b: Uint8Array): number => Buffer.compare(a, b);

/** Leaf body: element table, then keys and values packed; `pos` is counted from each element's own start. */
function leafBody(elements: readonly Element[]): Buffer {
  const dataSize = elements.reduce((sum, e) => sum + e.key.length + e.value.length, 0);
  const body = Buffer.alloc(elements.length * ELEMENT_SIZE + dataSize);
  let data = elements.length * ELEMENT_SIZE;
  elements.forEach((element, i) => {
    const at = i * ELEMENT_SIZE;
    body.writeUInt32LE(element.flags, at);
    body.writeUInt32LE(data - at, at + 4);
    body.writeUInt32LE(element.key.length, at + 8);
    body.writeUInt32LE(element.value.length, at + 12);
    body.set(element.key, data);
    body.set(element.value, data + element.key.length);
    data += element.key.length + element.value.length;
  });
  return body;
}

interface ChildRef {
  firstKey: Uint8Array;
  pgid: number;
}

function branchBody(children: readonly ChildRef[]): Buffer {
  const dataSize = children.reduce((sum, c) => sum + c.firstKey.length, 0);
  const body = Buffer.alloc(children.length * ELEMENT_SIZE + dataSize);
  let data = children.length * ELEMENT_SIZE;
  children.forEach((child, i) => {
    const at = i * ELEMENT_SIZE;
    body.writeUInt32LE(data - at, at);
    body.writeUInt32LE(child.firstKey.length, at + 4);
    body.writeBigUInt64LE(BigInt(child.pgid), at + 8);
    body.set(child.firstKey, data);
    data += child.firstKey.length;
  });
  return body;
}

/**
 * Splits items into page-sized groups, in order. A group closes when the next item would overflow the page; an item
 * bigger than a page gets a group of its own (and overflow pages). bbolt keeps at least two keys per page when it can,
 * but readers (and bbolt itself) accept any split.
 */
function groupIntoPages<T>(items: readonly T[], sizeOf: (item: T) => number, pageSize: number): T[][] {
  const groups: T[][] = [];
  let current: T[] = [];
  let used = PAGE_HEADER_SIZE;
  for (const item of items) {
    const size = ELEMENT_SIZE + sizeOf(item);
    if (current.length > 0 && used + size > pageSize) {
      groups.push(current);
      current = [];
      used = PAGE_HEADER_SIZE;
    }
    current.push(item);
    used += size;
  }
  if (current.length > 0 || groups.length === 0) groups.push(current);
  return groups;
}

/** Writes a B+tree of leaves (and branches above them when needed); returns the root page id. */
function writeTree(pages: PageAllocator, elements: readonly Element[]): number {
  const leaves = groupIntoPages(elements, (e) => e.key.length + e.value.length, pages.pageSize);
  let level: ChildRef[] = leaves.map((group) => ({
    firstKey: group[0]?.key ?? new Uint8Array(0),
    pgid: pages.place(FLAG_LEAF, group.length, leafBody(group)),
  }));
  while (level.length > 1) {
    const branches = groupIntoPages(level, (c) => c.firstKey.length, pages.pageSize);
    level = branches.map((group) => ({
      firstKey: group[0]?.firstKey ?? new Uint8Array(0),
      pgid: pages.place(FLAG_BRANCH, group.length, branchBody(group)),
    }));
  }
  const root = level[0];
  if (!root) throw new Error('bbolt writer: a tree without a root page');
  return root.pgid;
}

function bucketHeader(root: number): Buffer {
  const header = Buffer.alloc(BUCKET_HEADER_SIZE);
  header.writeBigUInt64LE(BigInt(root), 0);
  header.writeBigUInt64LE(0n, 8); // sequence: etcd never uses NextSequence
  return header;
}

/** A bucket whose single leaf fits in a quarter page is stored inline in its parent, as bbolt does. */
function inlineBucketValue(elements: readonly Element[], pageSize: number): Buffer | null {
  const body = leafBody(elements);
  if (PAGE_HEADER_SIZE + body.length > pageSize / 4) return null;
  const page = Buffer.alloc(PAGE_HEADER_SIZE + body.length);
  writePageHeader(page, 0, FLAG_LEAF, elements.length, 0);
  body.copy(page, PAGE_HEADER_SIZE);
  return Buffer.concat([bucketHeader(0), page]);
}

function sortedElements(entries: readonly BucketEntry[], bucket: string): Element[] {
  const elements = entries.map(([key, value]) => ({ key, value, flags: 0 }));
  elements.sort((a, b) => compareBytes(a.key, b.key));
  for (let i = 1; i < elements.length; i++) {
    if (compareBytes(elements[i - 1]!.key, elements[i]!.key) === 0) {
      throw new Error(`bbolt writer: duplicate key in bucket "${bucket}"`);
    }
  }
  return elements;
}

/** FNV-1a 64 over the meta fields before the checksum (page bytes 16..71), bbolt's meta.sum64. */
function fnv1a64(bytes: Uint8Array): bigint {
  let hash = 0xcbf29ce484222325n;
  for (const byte of bytes) {
    hash ^= BigInt(byte);
    hash = (hash * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return hash;
}

function metaPage(pageSize: number, id: number, rootPgid: number, highWater: number, txid: number): Buffer {
  const page = Buffer.alloc(pageSize);
  writePageHeader(page, id, FLAG_META, 0, 0);
  page.writeUInt32LE(MAGIC, 16);
  page.writeUInt32LE(VERSION, 20);
  page.writeUInt32LE(pageSize, 24);
  page.writeUInt32LE(0, 28);
  page.writeBigUInt64LE(BigInt(rootPgid), 32);
  page.writeBigUInt64LE(0n, 40);
  page.writeBigUInt64LE(NO_FREELIST, 48);
  page.writeBigUInt64LE(BigInt(highWater), 56);
  page.writeBigUInt64LE(BigInt(txid), 64);
  page.writeBigUInt64LE(fnv1a64(page.subarray(16, 72)), 72);
  return page;
}

export interface WriteOptions {
  pageSize?: number;
  /** Transaction id of meta page 0; meta page 1 gets txid - 1, as in etcd's snapshot stream. */
  txid?: number;
}

/** Builds a complete bbolt database file from top-level buckets. Every page in [2, pgid) is reachable. */
export function writeBbolt(buckets: BucketMap, opts: WriteOptions = {}): Buffer {
  const pageSize = opts.pageSize ?? DEFAULT_PAGE_SIZE;
  const txid = Math.max(2, opts.txid ?? 2);
  const pages = new PageAllocator(pageSize, 2);
  const rootElements: Element[] = [];
  for (const [name, entries] of buckets) {
    const elements = sortedElements(entries, name);
    const value = inlineBucketValue(elements, pageSize) ?? bucketHeader(writeTree(pages, elements));
    rootElements.push({ key: Buffer.from(name, 'utf8'), value, flags: BUCKET_LEAF_FLAG });
  }
  rootElements.sort((a, b) => compareBytes(a.key, b.key));
  const rootPgid = writeTree(pages, rootElements);
  const highWater = pages.highWaterMark;
  return Buffer.concat([
    metaPage(pageSize, 0, rootPgid, highWater, txid),
    metaPage(pageSize, 1, rootPgid, highWater, txid - 1),
    pages.concat(),
  ]);
}

/** The API snapshot form: the database followed by its own sha256 (size ≡ 32 mod 512). */
export function withSha256Trailer(db: Buffer): Buffer {
  return Buffer.concat([db, createHash('sha256').update(db).digest()]);
}

// ---- etcd content (etcd-snapshot-facts §3): revision keys and mvccpb.KeyValue values ----

/** `main(8, BE) '_' sub(8, BE)`, plus `'t'` for a tombstone. */
export function revisionKey(main: number, sub = 0, tombstone = false): Buffer {
  const key = Buffer.alloc(tombstone ? 18 : 17);
  key.writeBigInt64BE(BigInt(main), 0);
  key[8] = 0x5f;
  key.writeBigInt64BE(BigInt(sub), 9);
  if (tombstone) key[17] = 0x74;
  return key;
}

export interface KeyValueRecord {
  key: Uint8Array;
  value: Uint8Array;
  createRevision: number;
  modRevision: number;
  version: number;
  lease?: number;
}

/** mvccpb.KeyValue {key=1, create_revision=2, mod_revision=3, version=4, value=5, lease=6}; proto3 drops zeros. */
export function encodeKeyValue(kv: KeyValueRecord): Buffer {
  return new ProtoWriter()
    .bytes(1, kv.key)
    .uint(2, kv.createRevision)
    .uint(3, kv.modRevision)
    .uint(4, kv.version)
    .bytes(5, kv.value)
    .uint(6, kv.lease ?? 0)
    .finish();
}

/** One change in etcd's history: a put (with the key's state after it) or a delete (tombstone). */
export type HistoryEvent =
  | { kind: 'put'; revision: number; key: string; value: Uint8Array; createRevision: number; version: number }
  | { kind: 'delete'; revision: number; key: string };

export interface EtcdMemberRecord {
  /** 64-bit member id as 16 lowercase hex digits (never a JS number). */
  id: string;
  name: string;
  peerURLs: string[];
  clientURLs: string[];
}

export interface EtcdDatabaseContent {
  /** Every change since the last compaction, in revision order (one change per revision). */
  history: readonly HistoryEvent[];
  /** Raft applied index the data belongs to (etcd's `meta/consistent_index`). */
  consistentIndex: number;
  members: readonly EtcdMemberRecord[];
  clusterVersion?: string;
  /** etcd 3.6+ writes its storage version into `meta/storageVersion` (e.g. "3.7.0"); absent before 3.6. */
  storageVersion?: string;
  txid?: number;
}

const u64be = (value: number): Buffer => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(value));
  return b;
};

const utf8 = (text: string): Buffer => Buffer.from(text, 'utf8');

function keyBucketEntries(history: readonly HistoryEvent[]): BucketEntry[] {
  return history.map((event) =>
    event.kind === 'put'
      ? ([
          revisionKey(event.revision),
          encodeKeyValue({
            key: utf8(event.key),
            value: event.value,
            createRevision: event.createRevision,
            modRevision: event.revision,
            version: event.version,
          }),
        ] as const)
      : ([
          revisionKey(event.revision, 0, true),
          encodeKeyValue({
            key: utf8(event.key),
            value: new Uint8Array(0),
            createRevision: 0,
            modRevision: 0,
            version: 0,
          }),
        ] as const),
  );
}

/** etcd stores a member under its id in hex without padding, as JSON (membership/store.go). */
function memberEntry(member: EtcdMemberRecord): BucketEntry {
  const idHex = BigInt(`0x${member.id}`).toString(16);
  const json = `{"id":${BigInt(`0x${member.id}`).toString()},"peerURLs":${JSON.stringify(member.peerURLs)},"name":${JSON.stringify(member.name)},"clientURLs":${JSON.stringify(member.clientURLs)}}`;
  return [utf8(idHex), utf8(json)];
}

/** The ten buckets an etcd 3.4/3.5 backend has, filled from the content. */
export function etcdBuckets(content: EtcdDatabaseContent): Map<string, BucketEntry[]> {
  return new Map<string, BucketEntry[]>([
    ['alarm', []],
    ['auth', [[utf8('authRevision'), u64be(1)]]],
    ['authRoles', []],
    ['authUsers', []],
    ['cluster', [[utf8('clusterVersion'), utf8(content.clusterVersion ?? '3.4.0')]]],
    ['key', keyBucketEntries(content.history)],
    ['lease', []],
    ['members', content.members.map(memberEntry)],
    ['members_removed', []],
    [
      'meta',
      [
        [utf8('consistent_index'), u64be(content.consistentIndex)],
        ...(content.storageVersion ? [[utf8('storageVersion'), utf8(content.storageVersion)] as BucketEntry] : []),
      ],
    ],
  ]);
}

/** A complete etcd backend database (what `member/snap/db` holds). */
export function buildEtcdDatabase(content: EtcdDatabaseContent, opts: { pageSize?: number } = {}): Buffer {
  return writeBbolt(etcdBuckets(content), {
    pageSize: opts.pageSize,
    txid: content.txid ?? content.history.length + 2,
  });
}

/** A complete etcd API snapshot (database + sha256 trailer), what EtcdSnapshot streams. */
export function buildEtcdSnapshot(content: EtcdDatabaseContent, opts: { pageSize?: number } = {}): Buffer {
  return withSha256Trailer(buildEtcdDatabase(content, opts));
}
