// Generates a large etcd API snapshot (bbolt 1.3.6 database + sha256 trailer) with Kubernetes-like content, streaming
// to disk so the generator's memory stays small whatever the size.
//
// The page layout is exactly that of src/etcd/writer.ts (writeBbolt): the same grouping of elements into pages, the same
// inline-bucket rule, the same order of placement (buckets in map order, each tree's leaves then its branch levels, the
// root last). writer.ts builds everything in one Buffer, which cannot hold 4 GiB; this streams the one big bucket
// ("key") and takes every small bucket from writer.ts's own etcdBuckets(). `--check` proves the equivalence: at a small
// size it builds the same content with buildEtcdSnapshot() and compares the bytes.
//
// Usage: node bench/gen-snapshot.mjs --size-mb N --out FILE [--seed S] [--check]
// Prints one JSON line: {file, bytes, revisions, keys, seconds}.
import { createHash } from 'node:crypto';
import { closeSync, openSync, readFileSync, readSync, writeSync, fsyncSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { root } from './lib.mjs';

const writer = await import(pathToFileURL(join(root, 'dist/src/etcd/writer.js')).href);
const { revisionKey, encodeKeyValue, etcdBuckets, buildEtcdSnapshot, DEFAULT_PAGE_SIZE } = writer;

const PAGE = DEFAULT_PAGE_SIZE;
const PAGE_HEADER = 16;
const ELEMENT = 16;
const FLAG_BRANCH = 0x01;
const FLAG_LEAF = 0x02;
const FLAG_META = 0x04;
const BUCKET_LEAF_FLAG = 0x01;

// ---- Kubernetes-like content -------------------------------------------------------------------------------------

/** xorshift32: deterministic, fast. */
function rng(seed) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 4294967296;
  };
}

// Resource kinds, their share of the writes, value sizes (serialized protobuf objects, "k8s\0" prefixed as the API
// server stores them) and how many objects exist. Leases and events dominate the write traffic of a real cluster;
// big ConfigMaps and CRDs make overflow pages.
const KINDS = [
  { res: 'leases', ns: true, weight: 30, min: 280, max: 520, objects: 400 },
  { res: 'events', ns: true, weight: 25, min: 700, max: 1400, objects: 20000, deleteShare: 0.3 },
  { res: 'pods', ns: true, weight: 12, min: 3000, max: 12000, objects: 3000, deleteShare: 0.05 },
  { res: 'configmaps', ns: true, weight: 5, min: 500, max: 60000, objects: 800 },
  { res: 'secrets', ns: true, weight: 4, min: 1000, max: 5000, objects: 900 },
  { res: 'endpointslices', ns: true, weight: 8, min: 800, max: 3000, objects: 600 },
  { res: 'replicasets', ns: true, weight: 4, min: 2000, max: 4500, objects: 1200 },
  { res: 'deployments', ns: true, weight: 3, min: 3000, max: 7000, objects: 400 },
  { res: 'services/specs', ns: true, weight: 2, min: 600, max: 1500, objects: 400 },
  { res: 'apiextensions.k8s.io/customresourcedefinitions', ns: false, weight: 1, min: 8000, max: 200000, objects: 120 },
  { res: 'minions', ns: false, weight: 6, min: 4000, max: 9000, objects: 6 },
];
const NAMESPACES = ['default', 'kube-system', 'kube-node-lease', 'monitoring', 'ingress', 'payments', 'web', 'batch'];
const TOTAL_WEIGHT = KINDS.reduce((s, k) => s + k.weight, 0);

function keyName(kind, i) {
  const base = `${kind.res.split('/').pop().replace(/s$/, '')}-${(i * 2654435761) >>> 0}`.slice(0, 40);
  return kind.ns
    ? `/registry/${kind.res}/${NAMESPACES[i % NAMESPACES.length]}/${base}`
    : `/registry/${kind.res}/${base}`;
}

/** Yields history events (revision order, one change per revision), without end. */
function* history(seed) {
  const rand = rng(seed);
  const pool = Buffer.alloc(1 << 22);
  for (let i = 0; i < pool.length; i++) pool[i] = 32 + Math.floor(rand() * 95); // protobuf-ish: mostly printable text
  const state = new Map(); // key -> {create, version}
  let revision = 2;
  for (;;) {
    let pick = rand() * TOTAL_WEIGHT;
    let kind = KINDS[0];
    for (const k of KINDS) {
      pick -= k.weight;
      if (pick < 0) {
        kind = k;
        break;
      }
    }
    const key = keyName(kind, Math.floor(rand() * kind.objects));
    const live = state.get(key);
    if (live && kind.deleteShare && rand() < kind.deleteShare) {
      state.delete(key);
      yield { kind: 'delete', revision, key };
    } else {
      const size = Math.floor(kind.min + (kind.max - kind.min) * rand() ** 2);
      const at = Math.floor(rand() * (pool.length - size - 4));
      const value = Buffer.concat([Buffer.from('k8s\0'), pool.subarray(at, at + size - 4)]);
      const next = live ? { create: live.create, version: live.version + 1 } : { create: revision, version: 1 };
      state.set(key, next);
      yield { kind: 'put', revision, key, value, createRevision: next.create, version: next.version };
    }
    revision++;
  }
}

/** The same [key, value] pair writer.ts's keyBucketEntries makes of an event. */
function pairOf(event) {
  const key = Buffer.from(event.key, 'utf8');
  return event.kind === 'put'
    ? [
        revisionKey(event.revision),
        encodeKeyValue({
          key,
          value: event.value,
          createRevision: event.createRevision,
          modRevision: event.revision,
          version: event.version,
        }),
      ]
    : [
        revisionKey(event.revision, 0, true),
        encodeKeyValue({ key, value: new Uint8Array(0), createRevision: 0, modRevision: 0, version: 0 }),
      ];
}

// ---- streaming bbolt writer (writer.ts's layout) -----------------------------------------------------------------

class PageSink {
  constructor(fd, firstId) {
    this.fd = fd;
    this.nextId = firstId;
    this.buf = Buffer.alloc(8 << 20);
    this.used = 0;
    this.position = firstId * PAGE;
  }
  place(flags, count, body) {
    const id = this.nextId;
    const pages = Math.max(1, Math.ceil((PAGE_HEADER + body.length) / PAGE));
    const len = pages * PAGE;
    if (this.used + len > this.buf.length) this.flush();
    const target = len > this.buf.length ? Buffer.alloc(len) : this.buf.subarray(this.used, this.used + len);
    target.fill(0);
    writePageHeader(target, id, flags, count, pages - 1);
    body.copy(target, PAGE_HEADER);
    if (len > this.buf.length) {
      writeSync(this.fd, target, 0, len, this.position);
      this.position += len;
    } else this.used += len;
    this.nextId += pages;
    return id;
  }
  flush() {
    if (this.used === 0) return;
    writeSync(this.fd, this.buf, 0, this.used, this.position);
    this.position += this.used;
    this.used = 0;
  }
}

function writePageHeader(buf, id, flags, count, overflow) {
  buf.writeBigUInt64LE(BigInt(id), 0);
  buf.writeUInt16LE(flags, 8);
  buf.writeUInt16LE(count, 10);
  buf.writeUInt32LE(overflow, 12);
}

function leafBody(elements) {
  const dataSize = elements.reduce((sum, e) => sum + e.key.length + e.value.length, 0);
  const body = Buffer.alloc(elements.length * ELEMENT + dataSize);
  let data = elements.length * ELEMENT;
  elements.forEach((e, i) => {
    const at = i * ELEMENT;
    body.writeUInt32LE(e.flags, at);
    body.writeUInt32LE(data - at, at + 4);
    body.writeUInt32LE(e.key.length, at + 8);
    body.writeUInt32LE(e.value.length, at + 12);
    body.set(e.key, data);
    body.set(e.value, data + e.key.length);
    data += e.key.length + e.value.length;
  });
  return body;
}

function branchBody(children) {
  const dataSize = children.reduce((sum, c) => sum + c.firstKey.length, 0);
  const body = Buffer.alloc(children.length * ELEMENT + dataSize);
  let data = children.length * ELEMENT;
  children.forEach((c, i) => {
    const at = i * ELEMENT;
    body.writeUInt32LE(data - at, at);
    body.writeUInt32LE(c.firstKey.length, at + 4);
    body.writeBigUInt64LE(BigInt(c.pgid), at + 8);
    body.set(c.firstKey, data);
    data += c.firstKey.length;
  });
  return body;
}

/** writer.ts's groupIntoPages, as a generator over any iterable. */
function* groups(items, sizeOf) {
  let current = [];
  let used = PAGE_HEADER;
  let any = false;
  for (const item of items) {
    const size = ELEMENT + sizeOf(item);
    if (current.length > 0 && used + size > PAGE) {
      yield current;
      any = true;
      current = [];
      used = PAGE_HEADER;
    }
    current.push(item);
    used += size;
  }
  if (current.length > 0 || !any) yield current;
}

/** writer.ts's writeTree over a stream of sorted elements: leaves first, then each branch level. */
function writeTree(sink, elements) {
  let level = [];
  for (const group of groups(elements, (e) => e.key.length + e.value.length)) {
    level.push({
      firstKey: group[0]?.key ?? new Uint8Array(0),
      pgid: sink.place(FLAG_LEAF, group.length, leafBody(group)),
    });
  }
  while (level.length > 1) {
    const next = [];
    for (const group of groups(level, (c) => c.firstKey.length)) {
      next.push({ firstKey: group[0].firstKey, pgid: sink.place(FLAG_BRANCH, group.length, branchBody(group)) });
    }
    level = next;
  }
  return level[0].pgid;
}

function bucketHeader(rootPgid) {
  const h = Buffer.alloc(16);
  h.writeBigUInt64LE(BigInt(rootPgid), 0);
  return h;
}

function inlineBucketValue(elements) {
  const body = leafBody(elements);
  if (PAGE_HEADER + body.length > PAGE / 4) return null;
  const page = Buffer.alloc(PAGE_HEADER + body.length);
  writePageHeader(page, 0, FLAG_LEAF, elements.length, 0);
  body.copy(page, PAGE_HEADER);
  return Buffer.concat([bucketHeader(0), page]);
}

function fnv1a64(bytes) {
  let hash = 0xcbf29ce484222325n;
  for (const byte of bytes) {
    hash ^= BigInt(byte);
    hash = (hash * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return hash;
}

function metaPage(id, rootPgid, highWater, txid) {
  const page = Buffer.alloc(PAGE);
  writePageHeader(page, id, FLAG_META, 0, 0);
  page.writeUInt32LE(0xed0cdaed, 16);
  page.writeUInt32LE(2, 20);
  page.writeUInt32LE(PAGE, 24);
  page.writeBigUInt64LE(BigInt(rootPgid), 32);
  page.writeBigUInt64LE(0xffffffffffffffffn, 48);
  page.writeBigUInt64LE(BigInt(highWater), 56);
  page.writeBigUInt64LE(BigInt(txid), 64);
  page.writeBigUInt64LE(fnv1a64(page.subarray(16, 72)), 72);
  return page;
}

const MEMBERS = [1, 2, 3].map((n) => ({
  id: `8e9e05c52164694${n}`,
  name: `talos-cp-${n}`,
  peerURLs: [`https://10.5.0.${n + 1}:2380`],
  clientURLs: [`https://10.5.0.${n + 1}:2379`],
}));

/** Writes the snapshot to `file`; returns what it wrote. */
export function generateSnapshot(file, targetBytes, seed = 7) {
  const fd = openSync(file, 'w+', 0o600);
  try {
    const sink = new PageSink(fd, 2);
    let revisions = 0;
    let lastRevision = 1;
    const keyElements = (function* () {
      for (const event of history(seed)) {
        // Stops once the pages written reach the target (the branch pages and root add a little more).
        if (sink.position + sink.used >= targetBytes) return;
        revisions++;
        lastRevision = event.revision;
        const [key, value] = pairOf(event);
        yield { key, value, flags: 0 };
      }
    })();
    const small = etcdBuckets({ history: [], consistentIndex: 0, members: MEMBERS });
    const rootElements = [];
    for (const [name, entries] of small) {
      let value;
      if (name === 'key') {
        value = bucketHeader(writeTree(sink, keyElements));
      } else {
        const elements = entries
          .map(([key, v]) => ({ key, value: v, flags: 0 }))
          .sort((a, b) => Buffer.compare(a.key, b.key));
        if (name === 'meta') elements[0].value = u64be(lastRevision + 1000); // consistent_index after the history
        value = inlineBucketValue(elements) ?? bucketHeader(writeTree(sink, elements));
      }
      rootElements.push({ key: Buffer.from(name, 'utf8'), value, flags: BUCKET_LEAF_FLAG });
    }
    rootElements.sort((a, b) => Buffer.compare(a.key, b.key));
    const rootPgid = writeTree(sink, rootElements);
    sink.flush();
    const txid = Math.max(2, revisions + 2);
    writeSync(fd, metaPage(0, rootPgid, sink.nextId, txid), 0, PAGE, 0);
    writeSync(fd, metaPage(1, rootPgid, sink.nextId, txid - 1), 0, PAGE, PAGE);
    // The trailer: sha256 of the database, read back in order.
    const hash = createHash('sha256');
    const buf = Buffer.alloc(8 << 20);
    const end = sink.nextId * PAGE;
    for (let pos = 0; pos < end;) {
      const n = readSync(fd, buf, 0, Math.min(buf.length, end - pos), pos);
      hash.update(buf.subarray(0, n));
      pos += n;
    }
    writeSync(fd, hash.digest(), 0, 32, end);
    fsyncSync(fd);
    return { file, bytes: end + 32, revisions, lastRevision };
  } finally {
    closeSync(fd);
  }
}

function u64be(v) {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(v));
  return b;
}

/** Builds the same content with writer.ts in memory and compares the bytes. */
export function checkAgainstWriter(file, revisions, seed = 7) {
  const events = [];
  for (const event of history(seed)) {
    if (events.length === revisions) break;
    events.push(event);
  }
  const last = events.at(-1)?.revision ?? 1;
  const expected = buildEtcdSnapshot({ history: events, consistentIndex: last + 1000, members: MEMBERS });
  const got = readFileSync(file);
  return Buffer.compare(expected, got) === 0;
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({
    options: {
      'size-mb': { type: 'string', default: '64' },
      out: { type: 'string' },
      seed: { type: 'string', default: '7' },
      check: { type: 'boolean' },
    },
  });
  if (!values.out) {
    console.error('usage: node bench/gen-snapshot.mjs --size-mb N --out FILE [--seed S] [--check]');
    process.exit(2);
  }
  const target = Number(values['size-mb']) * 1024 * 1024;
  const t0 = Date.now();
  const got = generateSnapshot(values.out, target, Number(values.seed));
  const out = { ...got, seconds: (Date.now() - t0) / 1000 };
  if (values.check) out.identicalToWriterTs = checkAgainstWriter(values.out, got.revisions, Number(values.seed));
  console.log(JSON.stringify(out));
  if (values.check && !out.identicalToWriterTs) process.exit(1);
}
