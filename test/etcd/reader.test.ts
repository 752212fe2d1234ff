/**
 * The reader on files of our own making (no etcd needed): meta page choice as bbolt 1.3.6 makes it, page sizes other
 * than 4096, bounded memory, structural damage of every kind reported as sentences (never a crash or a hang), kind
 * detection, the trailer and the helpers other parts use. Where etcdctl is installed, the meta-choice cases are also
 * checked against it.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, openSync, closeSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import { pack as tarPack } from 'tar-stream';
import { inspectSnapshot } from '../../src/etcd/inspect.js';
import { BoltWalker, openBolt, runWalk } from '../../src/etcd/bbolt.js';
import { LiveKeySet, StatusVisitor, crc32cCombine } from '../../src/etcd/status.js';
import type { OpenedBolt, SubtreeSplitter } from '../../src/etcd/bbolt.js';
import { checkStructure } from '../../src/etcd/inspect.js';
import { crc32c } from '@node-rs/crc32';
import { hasTrailer, sha256File, verifyTrailer } from '../../src/etcd/trailer.js';
import { readKeyBucket } from '../../src/etcd/keys.js';
import { buildEtcdDatabase, buildEtcdSnapshot, withSha256Trailer } from '../../src/etcd/writer.js';
import type { EtcdDatabaseContent, HistoryEvent } from '../../src/etcd/writer.js';
import { ETCD_TOOLS_PRESENT, etcdctlStatus } from './etcd-fixture.js';

function contentWith(puts: number, valueBytes: number): EtcdDatabaseContent {
  const history: HistoryEvent[] = [];
  for (let i = 0; i < puts; i++) {
    history.push({
      kind: 'put',
      revision: i + 2,
      key: `/registry/configmaps/cm-${String(i).padStart(5, '0')}`,
      value: Buffer.alloc(valueBytes, i % 251),
      createRevision: i + 2,
      version: 1,
    });
  }
  history.push({ kind: 'delete', revision: puts + 2, key: '/registry/configmaps/cm-00000' });
  return {
    history,
    consistentIndex: puts + 10,
    members: [{ id: '8e9e05c52164694d', name: 'cp-1', peerURLs: ['https://127.0.0.2:2380'], clientURLs: [] }],
  };
}

const SMALL = buildEtcdDatabase(contentWith(120, 200));
let dir = '';
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'talos-dr-reader-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function fileOf(name: string, bytes: Buffer): string {
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return path;
}

/** FNV-1a 64, written here independently of the reader's own. */
function fnv(bytes: Buffer): bigint {
  let h = 0xcbf29ce484222325n;
  for (const b of bytes) h = ((h ^ BigInt(b)) * 0x100000001b3n) & 0xffffffffffffffffn;
  return h;
}

/** Rewrites a meta page's txid / pgid, then its checksum: recomputed, zero (accepted by 1.3.6) or wrong. */
function editMeta(
  db: Buffer,
  index: 0 | 1,
  edit: { txid?: number; pgid?: number; checksum?: 'recompute' | 'zero' | 'wrong' },
): Buffer {
  const at = index * 4096 + 16;
  if (edit.txid !== undefined) db.writeBigUInt64LE(BigInt(edit.txid), at + 48);
  if (edit.pgid !== undefined) db.writeBigUInt64LE(BigInt(edit.pgid), at + 40);
  const sum = fnv(db.subarray(at, at + 56));
  const checksum = { recompute: sum, zero: 0n, wrong: sum ^ 1n }[edit.checksum ?? 'recompute'];
  db.writeBigUInt64LE(checksum, at + 56);
  return db;
}

/**
 * Two metas that differ only in the page count (the newer one has one more page, an empty free page at the end):
 * which one was chosen shows in totalSize.
 */
function twoMetaFile(newer: 0 | 1, newerChecksum: 'recompute' | 'zero' | 'wrong'): { bytes: Buffer; pages: number } {
  const base = Buffer.concat([SMALL, Buffer.alloc(4096)]);
  const pages = SMALL.length / 4096;
  const older = newer === 0 ? 1 : 0;
  editMeta(base, older, { txid: 10, pgid: pages });
  editMeta(base, newer, { txid: 11, pgid: pages + 1, checksum: newerChecksum });
  return { bytes: base, pages };
}

describe('meta page choice, as bbolt 1.3.6 makes it', () => {
  test.each([
    ['meta 1 newer and valid: meta 1', 1, 'recompute', 1],
    ['meta 0 newer and valid: meta 0', 0, 'recompute', 1],
    ['meta 1 newer but its checksum is wrong: the older meta 0', 1, 'wrong', 0],
    ['meta 0 newer but its checksum is wrong: the older meta 1', 0, 'wrong', 0],
    ['meta 1 newer with checksum 0 (accepted by 1.3.6): meta 1', 1, 'zero', 1],
  ] as const)('%s', async (_name, newer, checksum, extraPages) => {
    const { bytes, pages } = twoMetaFile(newer, checksum);
    const file = fileOf(`meta-${newer}-${checksum}.db`, bytes);
    const report = await inspectSnapshot(file);
    expect(report.structure).toBe('ok');
    expect(report.totalSize).toBe((pages + extraPages) * 4096);
    if (ETCD_TOOLS_PRESENT) expect(etcdctlStatus(file)?.totalSize).toBe(report.totalSize);
  });

  test('both metas broken: the error of meta 0, no status', async () => {
    const bytes = Buffer.from(SMALL);
    bytes.writeUInt32LE(0x12345678, 16);
    editMeta(bytes, 1, { checksum: 'wrong' });
    const report = await inspectSnapshot(fileOf('both-bad.db', bytes));
    expect(report.kind).toBe('bbolt');
    expect(report.structure).toBe('damaged');
    expect(report.problems[0]).toMatch(/cannot be opened: neither meta page carries the bbolt magic number/);
    if (ETCD_TOOLS_PRESENT) expect(etcdctlStatus(join(dir, 'both-bad.db'))).toBeNull();
  });

  test('a page size of 16 KiB is read from the meta, not assumed', async () => {
    const bytes = buildEtcdSnapshot(contentWith(200, 300), { pageSize: 16384 });
    const file = fileOf('16k.snapshot', bytes);
    const report = await inspectSnapshot(file);
    expect(report).toMatchObject({ structure: 'ok', integrity: 'verified', usable: true, revision: 202 });
    expect(report.totalSize! % 16384).toBe(0);
    expect(report.liveKeys).toBe(199);
    if (ETCD_TOOLS_PRESENT) {
      expect(etcdctlStatus(file)).toEqual({
        hash: parseInt(report.hash!, 16),
        revision: report.revision,
        totalKey: report.totalKeys,
        totalSize: report.totalSize,
      });
    }
  });
});

describe('a stored freelist (etcd never writes one; plain bbolt files do)', () => {
  /** SMALL plus one freelist page listing `free`, and `extra` unreferenced pages after it. */
  function withFreelist(free: number[], extra: number): Buffer {
    const pages = SMALL.length / 4096;
    const freelistPage = Buffer.alloc(4096);
    freelistPage.writeBigUInt64LE(BigInt(pages), 0);
    freelistPage.writeUInt16LE(0x10, 8);
    freelistPage.writeUInt16LE(free.length, 10);
    free.forEach((id, i) => freelistPage.writeBigUInt64LE(BigInt(id), 16 + i * 8));
    const bytes = Buffer.concat([SMALL, freelistPage, Buffer.alloc(4096 * extra)]);
    for (const index of [0, 1] as const) {
      bytes.writeBigUInt64LE(BigInt(pages), index * 4096 + 16 + 32);
      editMeta(bytes, index, { pgid: pages + 1 + extra });
    }
    return bytes;
  }

  test('every page reachable or listed free: sound, and etcdctl agrees', async () => {
    const pages = SMALL.length / 4096;
    const file = fileOf('freelist-ok.db', withFreelist([pages + 1, pages + 2], 2));
    const report = await inspectSnapshot(file);
    expect(report.structure).toBe('ok');
    expect(report.totalSize).toBe((pages + 3) * 4096);
    if (ETCD_TOOLS_PRESENT) expect(etcdctlStatus(file)?.totalSize).toBe(report.totalSize);
  });

  test('a page in use listed as free, and a page neither reachable nor free: damaged, etcdctl fails too', async () => {
    const file = fileOf('freelist-bad.db', withFreelist([2], 1));
    const report = await inspectSnapshot(file);
    expect(report.structure).toBe('damaged');
    const text = report.problems.join(' ');
    expect(text).toMatch(/page 2 is in use but also listed as free/);
    expect(text).toMatch(/is neither reachable nor free/);
    if (ETCD_TOOLS_PRESENT) expect(etcdctlStatus(file)).toBeNull();
  });
});

describe('bounded reading', () => {
  test('an 8 MiB database is walked with well under 1 MiB of page buffers, every page read once', async () => {
    const bytes = buildEtcdDatabase(contentWith(3000, 2500));
    expect(bytes.length).toBeGreaterThan(8 * 1024 * 1024);
    const file = fileOf('large.db', bytes);
    const fd = openSync(file, 'r');
    try {
      const opened = openBolt(fd, bytes.length);
      if (!opened.ok) throw new Error(opened.problem);
      const walker = new BoltWalker(fd, bytes.length, opened.db, new StatusVisitor());
      const result = await runWalk(walker);
      expect(result.problems).toEqual([]);
      expect(result.maxBytesHeld).toBeLessThan(1024 * 1024);
      // The writer leaves no free page: all of them were reached, and no byte was read twice over.
      expect(result.pagesReachable).toBe(opened.db.meta.pgid - 2);
      expect(result.bytesRead).toBeLessThan(2 * bytes.length);
    } finally {
      closeSync(fd);
    }
  });
});

/** Page ids of the file's pages of one type (header id matching its position), in file order. */
function pagesOfType(db: Buffer, flags: number): number[] {
  const found: number[] = [];
  for (let id = 2; id * 4096 < db.length; id++) {
    const at = id * 4096;
    if (Number(db.readBigUInt64LE(at)) === id && db.readUInt16LE(at + 8) === flags) found.push(id);
  }
  return found;
}

describe('structural damage is reported, never a crash or a hang', () => {
  const LARGE = buildEtcdDatabase(contentWith(400, 300));
  const branch = pagesOfType(LARGE, 0x01)[0]!;
  const leaves = pagesOfType(LARGE, 0x02);

  async function damaged(name: string, change: (db: Buffer) => void): Promise<string> {
    const bytes = Buffer.from(LARGE);
    change(bytes);
    const report = await inspectSnapshot(fileOf(name, bytes));
    expect(report.structure).toBe('damaged');
    expect(report.usable).toBe(false);
    expect(report.hash).toBeNull();
    return report.problems.join(' ');
  }

  test('the fixture has branch and leaf pages', () => {
    expect(branch).toBeGreaterThan(1);
    expect(leaves.length).toBeGreaterThan(10);
  });

  test('a branch pointing at itself: a page referenced twice (a cycle does not hang)', async () => {
    const text = await damaged('cycle.db', (db) => db.writeBigUInt64LE(BigInt(branch), branch * 4096 + 16 + 8));
    expect(text).toMatch(new RegExp(`page ${branch} is referenced twice`));
  });

  test('a child beyond the page count: out of range', async () => {
    const text = await damaged('range.db', (db) => db.writeBigUInt64LE(123456789n, branch * 4096 + 16 + 8));
    expect(text).toMatch(/points at page 123456789, outside the database/);
  });

  test('keys out of order in a leaf', async () => {
    const text = await damaged('order.db', (db) => {
      const leaf = leaves[3]! * 4096;
      const keyAt = leaf + 16 + db.readUInt32LE(leaf + 16 + 4);
      db.fill(0xff, keyAt, keyAt + 8);
    });
    expect(text).toMatch(/keys out of order/);
  });

  test('an element pointing outside its page', async () => {
    const text = await damaged('pos.db', (db) => db.writeUInt32LE(0x7fffffff, leaves[2]! * 4096 + 16 + 4));
    expect(text).toMatch(/element pointing outside the page/);
  });

  test('an impossible overflow count', async () => {
    const text = await damaged('overflow.db', (db) => db.writeUInt32LE(0xffffffff, leaves[1]! * 4096 + 12));
    expect(text).toMatch(/runs over 4294967295 more pages/);
  });

  test('a tree some 4,000 levels deep: damaged, said as such (no stack overflow)', async () => {
    // a chain of one-child branch pages between the branch and its first child: far deeper than any bbolt tree
    const depth = 4000;
    const pages = LARGE.length / 4096;
    const bytes = Buffer.concat([LARGE, Buffer.alloc(depth * 4096)]);
    const element = branch * 4096 + 16;
    const firstChild = Number(bytes.readBigUInt64LE(element + 8));
    const key = bytes.subarray(
      element + bytes.readUInt32LE(element),
      element + bytes.readUInt32LE(element) + bytes.readUInt32LE(element + 4),
    );
    for (let i = 0; i < depth; i++) {
      const id = pages + i;
      const at = id * 4096;
      bytes.writeBigUInt64LE(BigInt(id), at);
      bytes.writeUInt16LE(0x01, at + 8);
      bytes.writeUInt16LE(1, at + 10);
      bytes.writeUInt32LE(16, at + 16);
      bytes.writeUInt32LE(key.length, at + 20);
      bytes.writeBigUInt64LE(BigInt(i + 1 < depth ? id + 1 : firstChild), at + 24);
      key.copy(bytes, at + 32);
    }
    bytes.writeBigUInt64LE(BigInt(pages), element + 8);
    for (const index of [0, 1] as const) editMeta(bytes, index, { pgid: pages + depth });
    const report = await inspectSnapshot(fileOf('deep.db', bytes));
    expect(report.structure).toBe('damaged');
    expect(report.usable).toBe(false);
    expect(report.problems.join(' ')).toMatch(
      /more than 64 levels deep, which no bbolt database can be: the file is damaged/,
    );
  });

  test('a file that declares 2^31 pages (an 8 TiB sparse file): the walk stays far under 100 MB', () => {
    // the database is small; its metas claim 2 G pages and the file is stretched (sparse) to match. The page marks
    // were one byte per declared page: 2 GB for a file of a few kilobytes on disk.
    const pages = 2 ** 31;
    const bytes = Buffer.from(SMALL);
    for (const index of [0, 1] as const) editMeta(bytes, index, { pgid: pages });
    const file = fileOf('sparse.db', bytes);
    truncateSync(file, pages * 4096);
    const bbolt = pathToFileURL(join(process.cwd(), 'dist', 'src', 'etcd', 'bbolt.js')).href;
    const script = `
      import { openSync, fstatSync } from 'node:fs';
      import { BoltWalker, openBolt } from '${bbolt}';
      const fd = openSync(${JSON.stringify(file)}, 'r');
      const size = fstatSync(fd).size;
      const opened = openBolt(fd, size);
      const walker = new BoltWalker(fd, size, opened.db, { bucket: () => null });
      const walk = walker.walk();
      let step = walk.next();
      while (!step.done) step = walk.next();
      console.log(JSON.stringify({ unreadable: step.value.unreadable, free: step.value.pagesFree, rss: process.resourceUsage().maxRSS }));`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout) as { unreadable: boolean; free: number; rss: number };
    expect(out.unreadable).toBe(false);
    expect(out.free).toBeGreaterThan(pages - SMALL.length / 4096 - 1);
    expect(out.rss).toBeLessThan(100 * 1024);
  });

  test('200 random byte flips and 50 random truncations: always a report, never an exception', async () => {
    let seed = 12345;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed / 2147483648;
    };
    const base = withSha256Trailer(SMALL);
    for (let i = 0; i < 250; i++) {
      const bytes = Buffer.from(base);
      const variant =
        i < 200
          ? (bytes.writeUInt8(Math.floor(random() * 256), Math.floor(random() * bytes.length)), bytes)
          : bytes.subarray(0, Math.floor(random() * bytes.length));
      const report = await inspectSnapshot(fileOf('fuzz.snapshot', variant));
      expect(['bbolt', 'unknown', 'empty', 'gzip', 'zstd', 'age', 'tar']).toContain(report.kind);
      if (report.usable) expect(report.integrity).not.toBe('mismatch');
      if (!report.usable) expect(report.problems.length).toBeGreaterThan(0);
    }
  });
});

describe('what a file is', () => {
  async function kindOf(name: string, bytes: Buffer) {
    return inspectSnapshot(fileOf(name, bytes));
  }

  test.each([
    ['empty', Buffer.alloc(0), 'empty', /empty \(0 bytes\)/],
    ['29 bytes', Buffer.from('definitely not a snapshot....'), 'unknown', /only 29 bytes/],
    ['random', randomBytes(64 * 1024), 'unknown', /no bbolt database header/],
    ['zstd', Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), randomBytes(5000)]), 'zstd', /zstd -d/],
    ['age', Buffer.from('age-encryption.org/v1\n-> X25519 abc\n'), 'age', /age -d/],
    ['armored age', Buffer.from('-----BEGIN AGE ENCRYPTED FILE-----\nYWdl\n'), 'age', /age -d/],
    ['gzip', gzipSync(withSha256Trailer(SMALL)), 'gzip', /gunzip/],
  ] as const)('%s', async (name, bytes, kind, sentence) => {
    const report = await kindOf(`kind-${name}`, bytes);
    expect(report.kind).toBe(kind);
    expect(report.usable).toBe(false);
    expect(report.structure).toBe('damaged');
    expect(report.problems[0]).toMatch(sentence);
    expect(report.hash).toBeNull();
  });

  test('tar', async () => {
    const pack = tarPack();
    pack.entry({ name: 'db.snapshot', size: SMALL.length }, SMALL);
    pack.finalize();
    const parts: Buffer[] = [];
    for await (const part of pack as AsyncIterable<Buffer>) parts.push(part);
    const report = await kindOf('kind-tar', Buffer.concat(parts));
    expect(report.kind).toBe('tar');
    expect(report.problems[0]).toMatch(/tar -xf/);
  });
});

describe('trailer and helpers', () => {
  test('hasTrailer is the size rule and nothing else', () => {
    expect(hasTrailer(20512)).toBe(true);
    expect(hasTrailer(20480)).toBe(false);
    expect(hasTrailer(32)).toBe(true);
    expect(hasTrailer(31)).toBe(false);
  });

  test('verified / absent / mismatch, also when the body ends exactly on a read boundary', async () => {
    const body = randomBytes(4 * 1024 * 1024);
    const good = withSha256Trailer(body);
    expect(await verifyTrailer(fileOf('t-good', good))).toBe('verified');
    expect(await verifyTrailer(fileOf('t-none', body))).toBe('absent');
    const bad = Buffer.from(good);
    bad[100] = (bad[100] as number) ^ 1;
    expect(await verifyTrailer(fileOf('t-bad', bad))).toBe('mismatch');
    expect(await sha256File(join(dir, 't-good'))).toBe(createHash('sha256').update(good).digest('hex'));
  });

  test('readKeyBucket: every live key with its value at the latest revision', async () => {
    const base = contentWith(5, 3);
    const content = { ...base, history: [...base.history] };
    content.history.push({
      kind: 'put',
      revision: 8,
      key: '/registry/configmaps/cm-00001',
      value: Buffer.from('changed'),
      createRevision: 3,
      version: 2,
    });
    const live = await readKeyBucket(fileOf('keys.snapshot', buildEtcdSnapshot(content)));
    expect([...live.keys()].sort()).toEqual([
      '/registry/configmaps/cm-00001',
      '/registry/configmaps/cm-00002',
      '/registry/configmaps/cm-00003',
      '/registry/configmaps/cm-00004',
    ]);
    expect(live.get('/registry/configmaps/cm-00001')?.toString()).toBe('changed');
    expect(live.get('/registry/configmaps/cm-00002')).toEqual(Buffer.alloc(3, 2));
  });
});

/** The reference: etcd 3.6's replay, a set of strings. */
function replayWithSet(events: [string, boolean][]): number {
  const set = new Set<string>();
  for (const [name, put] of events) {
    if (put) set.add(name);
    else set.delete(name);
  }
  return set.size;
}

/** Deterministic events: names of many lengths (0 to 300 bytes, every remainder mod 4), puts and tombstones. */
function liveKeyEvents(count: number, distinct: number): [string, boolean][] {
  let x = 12345;
  const next = (): number => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 4294967296;
  };
  const events: [string, boolean][] = [];
  for (let i = 0; i < count; i++) {
    const n = Math.floor(next() * distinct);
    const name = n % 97 === 0 ? `/${'k'.repeat(n % 300)}` : `/registry/pods/ns-${n % 13}/pod-${n}`;
    events.push([n === 0 ? '' : name, next() < 0.7]);
  }
  return events;
}

function countLive(set: LiveKeySet, events: [string, boolean][]): number {
  for (const [name, put] of events) {
    // Each name sits at an odd offset inside a larger buffer, as names do inside a page.
    const buf = Buffer.concat([Buffer.from('xyz'), Buffer.from(name, 'latin1'), Buffer.from('tail')]);
    set.apply(buf, 3, 3 + name.length, put);
  }
  return set.size;
}

describe("live keys (etcd 3.6's total keys) in bounded memory", () => {
  test('the compact set counts exactly what a set of strings counts, through many table and arena growths', () => {
    const events = liveKeyEvents(60000, 20000);
    const set = new LiveKeySet();
    expect(countLive(set, events)).toBe(replayWithSet(events));
    expect(set.fingerprinted).toBe(0);
    expect(set.overflowed).toBe(false);
  });

  test('past the bytes kept for names, names are told apart by fingerprint and the count still matches', () => {
    const events = liveKeyEvents(60000, 20000);
    const set = new LiveKeySet({ nameBytes: 64 * 1024 });
    expect(countLive(set, events)).toBe(replayWithSet(events));
    expect(set.fingerprinted).toBeGreaterThan(10000);
  });

  test('past the most keys it may track, it gives the count up instead of growing', () => {
    const events = liveKeyEvents(30000, 20000);
    const set = new LiveKeySet({ maxKeys: 5000 });
    countLive(set, events);
    expect(set.overflowed).toBe(true);
  });

  test('a snapshot with more distinct keys than allowed reports live keys as unknown, with a sentence', async () => {
    const bytes = buildEtcdDatabase(contentWith(300, 10));
    const file = fileOf('many-keys.db', bytes);
    const fd = openSync(file, 'r');
    try {
      const opened = openBolt(fd, bytes.length);
      if (!opened.ok) throw new Error(opened.problem);
      const visitor = new StatusVisitor({ maxKeys: 100 });
      await runWalk(new BoltWalker(fd, bytes.length, opened.db, visitor));
      expect(visitor.fields().liveKeys).toBeNull();
      expect(visitor.liveKeysProblem()).toMatch(/more than 100 distinct keys/);
      const exact = new StatusVisitor();
      await runWalk(new BoltWalker(fd, bytes.length, opened.db, exact));
      expect(exact.fields().liveKeys).toBe(299);
      expect(exact.liveKeysNote()).toBeNull();
      const byFingerprint = new StatusVisitor({ nameBytes: 1024 });
      await runWalk(new BoltWalker(fd, bytes.length, opened.db, byFingerprint));
      expect(byFingerprint.fields().liveKeys).toBe(299);
      expect(byFingerprint.liveKeysNote()).toMatch(/fingerprint/);
    } finally {
      closeSync(fd);
    }
  });
});

/** A history where names put early are deleted, put again and deleted again late: the two halves must agree. */
function churnContent(keys: number): EtcdDatabaseContent {
  const base = contentWith(keys, 700);
  const history = [...base.history];
  let revision = keys + 3;
  const name = (i: number): string => `/registry/configmaps/cm-${String(i).padStart(5, '0')}`;
  for (let i = 1; i < keys; i += 3) history.push({ kind: 'delete', revision: revision++, key: name(i) });
  for (let i = 1; i < keys; i += 9) {
    history.push({
      kind: 'put',
      revision: revision++,
      key: name(i),
      value: Buffer.from('again'),
      createRevision: revision - 1,
      version: 1,
    });
  }
  for (let i = 1; i < keys; i += 27) history.push({ kind: 'delete', revision: revision++, key: name(i) });
  // Never-put names deleted (a compacted history), and a new key.
  history.push({ kind: 'delete', revision: revision++, key: '/registry/never/put' });
  history.push({
    kind: 'put',
    revision: revision++,
    key: '/registry/late',
    value: Buffer.from('x'),
    createRevision: revision - 1,
    version: 1,
  });
  return { ...base, history };
}

/** Splits in this thread (what walk-worker.ts does on its own thread, minus the transport). */
function inThreadSplitter(fd: number, dataEnd: number, db: OpenedBolt) {
  const splitter: SubtreeSplitter & { calls: number } = {
    calls: 0,
    start(children, level) {
      splitter.calls++;
      const visitor = new StatusVisitor({ recordTombstones: true });
      const walker = new BoltWalker(fd, dataEnd, db, { bucket: () => null });
      const result = walker.walkSubtrees(children, level, visitor.keyBucketVisitor());
      result.tail = visitor.tail();
      return { settled: Promise.resolve(), poll: () => result, cancel: () => undefined };
    },
  };
  return splitter;
}

async function statusOf(bytes: Buffer, split: boolean) {
  const file = fileOf(split ? 'split.db' : 'whole.db', bytes);
  const fd = openSync(file, 'r');
  try {
    const opened = openBolt(fd, bytes.length);
    if (!opened.ok) return { opened: false as const };
    const visitor = new StatusVisitor();
    const splitter = split ? inThreadSplitter(fd, bytes.length, opened.db) : null;
    const walk = await runWalk(new BoltWalker(fd, bytes.length, opened.db, visitor, undefined, splitter));
    const ok = walk.problems.length === 0 && walk.moreProblems === 0 && visitor.problems.length === 0;
    return { opened: true as const, ok, fields: visitor.fields(), walk, calls: splitter?.calls ?? 0 };
  } finally {
    closeSync(fd);
  }
}

describe('the key bucket walked in two halves (the second on another thread)', () => {
  test('CRC-32C of two parts combines into the CRC of the whole', () => {
    const whole = randomBytes(100000);
    for (const cut of [0, 1, 7, 4096, 65537, 99999, 100000]) {
      const a = whole.subarray(0, cut);
      const b = whole.subarray(cut);
      expect(crc32cCombine(crc32c(a), crc32c(b), b.length)).toBe(crc32c(whole) >>> 0);
    }
  });

  test('the combination holds for parts of 2^29 bytes and more (a 4 GiB snapshot split in two)', () => {
    // crc(A ‖ zeros) computed the long way, 1 MiB at a time, against the combination by length
    const head = randomBytes(1000);
    const zeros = Buffer.alloc(1 << 20);
    for (const length of [(1 << 29) + 3 * (1 << 20), 2 ** 31 + 5 * (1 << 20)]) {
      let streamed = crc32c(head);
      let zerosCrc = 0;
      for (let done = 0; done < length; done += zeros.length) {
        streamed = crc32c(zeros, streamed);
        zerosCrc = crc32c(zeros, zerosCrc);
      }
      expect(crc32cCombine(crc32c(head), zerosCrc, length), `${length} bytes`).toBe(streamed >>> 0);
    }
  });

  test('the same hash, revision, keys, live keys and pages as one walk, with deletes across the halves', async () => {
    const bytes = buildEtcdDatabase(churnContent(4000));
    const whole = await statusOf(bytes, false);
    const split = await statusOf(bytes, true);
    if (!whole.opened || !split.opened) throw new Error('not opened');
    expect(split.calls).toBe(1);
    expect(whole.ok).toBe(true);
    expect(split.ok).toBe(true);
    expect(split.fields).toEqual(whole.fields);
    expect(split.walk.pagesReachable).toBe(whole.walk.pagesReachable);
    expect(split.walk.pagesFree).toBe(whole.walk.pagesFree);
    expect(whole.fields.liveKeys).toBe(replayWithSet(churnContent(4000).history.map((e) => [e.key, e.kind === 'put'])));
  });

  test('damage anywhere: the split walk never throws, and is sound exactly when the whole walk is', async () => {
    const base = buildEtcdDatabase(churnContent(1500));
    let seed = 777;
    const random = (): number => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed / 2147483648;
    };
    const verdicts = { sound: 0, damaged: 0, split: 0 };
    for (let i = 0; i < 60; i++) {
      const bytes = Buffer.from(base);
      for (let j = 0; j < 1 + (i % 3); j++) {
        // Page headers and element tables most of the time: that is where structure lives.
        const page = 2 + Math.floor(random() * (bytes.length / 4096 - 2));
        const at = page * 4096 + (random() < 0.7 ? Math.floor(random() * 64) : Math.floor(random() * 4096));
        bytes[at] = Math.floor(random() * 256);
      }
      const whole = await statusOf(bytes, false);
      const split = await statusOf(bytes, true);
      expect(split.opened).toBe(whole.opened);
      if (!whole.opened || !split.opened) continue;
      expect(split.ok).toBe(whole.ok);
      if (whole.ok) expect(split.fields).toEqual(whole.fields);
      verdicts[whole.ok ? 'sound' : 'damaged']++;
      verdicts.split += split.calls;
    }
    expect(verdicts.sound).toBeGreaterThan(5);
    expect(verdicts.damaged).toBeGreaterThan(5);
    expect(verdicts.split).toBeGreaterThan(30);
  });

  const distInspect = join(import.meta.dirname, '../../dist/src/etcd/inspect.js');
  test.skipIf(!existsSync(distInspect))('the real worker thread (built dist/) gives the same status', async () => {
    const bytes = withSha256Trailer(buildEtcdDatabase(churnContent(4000)));
    const file = fileOf('worker.snapshot', bytes);
    const built = (await import(pathToFileURL(distInspect).href)) as { checkStructure: typeof checkStructure };
    const fd = openSync(file, 'r');
    try {
      const threaded = await built.checkStructure(fd, bytes.length, { split: true });
      const single = await checkStructure(fd, bytes.length, { split: false });
      expect(threaded.ok).toBe(true);
      expect(threaded.status).toEqual(single.status);
      expect(threaded.walk?.pagesReachable).toBe(single.walk?.pagesReachable);
    } finally {
      closeSync(fd);
    }
  });
});
