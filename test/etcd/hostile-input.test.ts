/**
 * Issue 18, items 12 and 15: files made to hurt the verifier. A page id is a u64: one past 2^53 must be named exactly
 * (a JS number rounds 2^53+1 to 2^53 and 2^64-1 to 18446744073709552000), and it is damage, never a page. A file that
 * is not bbolt is refused from its first pages: nothing past its head is read or hashed, however large it is.
 * `talos-dr inspect` from the built CLI (dist/, `npm run build` first) and inspectSnapshot itself.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { closeSync, openSync } from 'node:fs';
import { inspectSnapshot } from '../../src/etcd/inspect.js';
import { BoltWalker, openBolt, runWalk } from '../../src/etcd/bbolt.js';
import { StatusVisitor } from '../../src/etcd/status.js';
import { findPackageRoot } from '../../src/paths.js';
import { buildEtcdDatabase } from '../../src/etcd/writer.js';
import type { HistoryEvent } from '../../src/etcd/writer.js';

const cli = join(findPackageRoot(), 'dist/src/cli.js');
let dir = '';
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'talos-dr-hostile-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function fileOf(name: string, bytes: Buffer): string {
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return path;
}

/** An etcd database large enough that its key bucket has a branch page. */
function database(): Buffer {
  const history: HistoryEvent[] = [];
  for (let i = 0; i < 400; i++) {
    const key = `/registry/configmaps/cm-${String(i).padStart(5, '0')}`;
    history.push({
      kind: 'put',
      revision: i + 2,
      key,
      value: Buffer.alloc(300, i % 251),
      createRevision: i + 2,
      version: 1,
    });
  }
  return buildEtcdDatabase({ history, consistentIndex: 410, members: [] });
}

/** The first page of the given type whose header id matches its place. */
function firstPageOfType(db: Buffer, flags: number): number {
  for (let id = 2; id * 4096 < db.length; id++) {
    if (db.readBigUInt64LE(id * 4096) === BigInt(id) && db.readUInt16LE(id * 4096 + 8) === flags) return id;
  }
  throw new Error(`no page with flags ${flags}`);
}

/** Bytes read by this process (every thread) so far: the kernel's count of read() bytes, page cache hits included. */
function bytesReadByProcess(): number {
  const line = readFileSync('/proc/self/io', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('rchar:'));
  return Number(line?.split(/\s+/)[1]);
}

describe('64-bit page ids are exact', () => {
  const DB = database();
  const branch = firstPageOfType(DB, 0x01);
  const firstElement = branch * 4096 + 16;
  const secondElement = firstElement + 16;

  test.each([
    ['the first child', '18446744073709551615', firstElement],
    ['the second child', '9007199254740993', secondElement],
  ])('a branch page pointing %s at page %s: damaged, and the id named as stored', async (_which, text, element) => {
    const bytes = Buffer.from(DB);
    bytes.writeBigUInt64LE(BigInt(text), element + 8);
    const report = await inspectSnapshot(fileOf(`branch-${text}.db`, bytes));
    expect(report.structure).toBe('damaged');
    expect(report.usable).toBe(false);
    expect(report.hash).toBeNull();
    const problems = report.problems.join(' ');
    expect(problems).toContain(`a page reference points at page ${text}, outside the database's`);
  });

  test('a page whose header carries 2^64-1 as its id: damaged, that id named exactly', async () => {
    const bytes = Buffer.from(DB);
    bytes.writeBigUInt64LE(0xffffffffffffffffn, branch * 4096);
    const report = await inspectSnapshot(fileOf('header-id.db', bytes));
    expect(report.structure).toBe('damaged');
    expect(report.problems.join(' ')).toContain(`page ${branch} carries the id 18446744073709551615 in its header`);
  });

  test('a meta page whose root is 2^53+1: damaged, that id named exactly (not 9007199254740992)', async () => {
    const bytes = Buffer.from(DB);
    // both metas' root, with their checksum set to 0 (which bbolt 1.3.6 accepts)
    for (const meta of [0, 4096]) {
      bytes.writeBigUInt64LE(2n ** 53n + 1n, meta + 16 + 16);
      bytes.writeBigUInt64LE(0n, meta + 16 + 56);
    }
    const report = await inspectSnapshot(fileOf('meta-root.db', bytes));
    expect(report.structure).toBe('damaged');
    expect(report.problems.join(' ')).toContain('points at page 9007199254740993, outside the database');
  });
});

/**
 * Between a branch page and its first child, a chain of `depth` one-child branch pages of `runPages` pages each
 * (sparse: only each run's first page is written), so every level of the walk would hold a large run.
 */
function fatBranchChain(db: Buffer, depth: number, runPages: number): Buffer {
  const branch = firstPageOfType(db, 0x01);
  const element = branch * 4096 + 16;
  const firstChild = db.readBigUInt64LE(element + 8);
  const keyStart = element + db.readUInt32LE(element);
  const key = db.subarray(keyStart, keyStart + db.readUInt32LE(element + 4));
  const first = db.length / 4096;
  const pages = first + depth * runPages;
  const bytes = Buffer.alloc(pages * 4096);
  db.copy(bytes);
  for (let i = 0; i < depth; i++) {
    const id = first + i * runPages;
    const at = id * 4096;
    bytes.writeBigUInt64LE(BigInt(id), at);
    bytes.writeUInt16LE(0x01, at + 8);
    bytes.writeUInt16LE(1, at + 10);
    bytes.writeUInt32LE(runPages - 1, at + 12);
    bytes.writeUInt32LE(16, at + 16);
    bytes.writeUInt32LE(key.length, at + 20);
    bytes.writeBigUInt64LE(i + 1 < depth ? BigInt(id + runPages) : firstChild, at + 24);
    key.copy(bytes, at + 32);
  }
  bytes.writeBigUInt64LE(BigInt(first), element + 8);
  for (const meta of [0, 4096]) {
    bytes.writeBigUInt64LE(BigInt(pages), meta + 16 + 40);
    bytes.writeBigUInt64LE(0n, meta + 16 + 56);
  }
  return bytes;
}

describe('memory along a path of the tree does not grow with its depth', () => {
  const DB = database();

  test('a chain of 12 branch pages of 8 MiB each: damaged at the first, holding well under 1 MiB', async () => {
    const file = fileOf('fat-chain.db', fatBranchChain(DB, 12, 2048));
    const report = await inspectSnapshot(file);
    expect(report.structure).toBe('damaged');
    expect(report.problems.join(' ')).toMatch(
      /branch page \d+ runs over 2047 more pages, more than a branch page of 32 KiB keys can need/,
    );
    const fd = openSync(file, 'r');
    try {
      const opened = openBolt(fd, DB.length + 12 * 2048 * 4096);
      if (!opened.ok) throw new Error(opened.problem);
      const walk = await runWalk(new BoltWalker(fd, DB.length + 12 * 2048 * 4096, opened.db, new StatusVisitor()));
      // before, each level held its 8 MiB run until 72 MiB were taken
      expect(walk.maxBytesHeld).toBeLessThan(1024 * 1024);
    } finally {
      closeSync(fd);
    }
  });

  test('the largest branch run bbolt can write (four 32 KiB keys: 33 pages of 4 KiB), 20 levels deep, is walked', async () => {
    const report = await inspectSnapshot(fileOf('widest-branches.db', fatBranchChain(DB, 20, 33)));
    expect(report.problems).toEqual([]);
    expect(report.structure).toBe('ok');
  });
});

describe('a file that is not bbolt is refused from its first pages', () => {
  const GIB = 1024 * 1024 * 1024;

  /** A 2 GiB sparse file that starts with `head`: a few kilobytes on disk, 2 GiB to anything that reads it all. */
  function largeFile(name: string, head: Buffer): string {
    const path = fileOf(name, head);
    truncateSync(path, 2 * GIB);
    return path;
  }

  test.each([
    ['gzip', gzipSync(Buffer.alloc(1024 * 1024)), /^The file is gzip-compressed: decompress it first \(gunzip\)/],
    [
      'random data',
      Buffer.from('not a database at all, just bytes'),
      /^The file is not an etcd snapshot: it has no bbolt/,
    ],
  ])(
    '%s, 2 GiB: the one-sentence refusal, and only its head is read',
    async (name, head, sentence) => {
      const file = largeFile(`large-${name}`, head);
      const before = bytesReadByProcess();
      const refusal = await inspectSnapshot(file, { refuseOtherFormats: true }).then(
        () => null,
        (error: unknown) => error as Error & { kind?: string },
      );
      const read = bytesReadByProcess() - before;
      // the head (4 KiB) and bbolt's meta-1 probes (up to 64 KiB in); vitest's own reads stay far below this
      expect(read).toBeLessThan(64 * 1024 * 1024);
      expect(refusal?.name).toBe('NotASnapshotError');
      expect(refusal?.message).toMatch(sentence);
      expect(refusal?.message.split('\n')).toHaveLength(1);
    },
    120_000,
  );

  test('bbolt magic but meta pages of an unknown version, 2 GiB: refused from the two meta pages', async () => {
    const head = Buffer.from(database().subarray(0, 8192));
    for (const meta of [0, 4096]) head.writeUInt32LE(3, meta + 16 + 4);
    const file = largeFile('large-version.db', head);
    const before = bytesReadByProcess();
    const refusal = await inspectSnapshot(file, { refuseOtherFormats: true }).then(
      () => null,
      (error: unknown) => error as Error,
    );
    expect(bytesReadByProcess() - before).toBeLessThan(64 * 1024 * 1024);
    expect(refusal?.message).toBe(
      'The file is not a usable etcd snapshot: its bbolt database cannot be opened (the meta page has an unknown bbolt format version); take a new snapshot or give another file.',
    );
  }, 120_000);

  test('talos-dr inspect of a 2 GiB gzip file: one sentence on stderr, exit 1, also with --json', () => {
    const file = largeFile('large.gz', gzipSync(Buffer.from('x')));
    for (const args of [[file], [file, '--json']]) {
      const r = spawnSync(process.execPath, [cli, 'inspect', ...args], { encoding: 'utf8', timeout: 60_000 });
      expect(r.status).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr.trim().split('\n')).toEqual([
        'The file is gzip-compressed: decompress it first (gunzip) and inspect the result.',
      ]);
    }
  }, 120_000);

  test('without refuseOtherFormats a non-bbolt file still gets its report (kind, problem, sha256)', async () => {
    const report = await inspectSnapshot(fileOf('small.gz', gzipSync(Buffer.from('x'))));
    expect(report.kind).toBe('gzip');
    expect(report.usable).toBe(false);
    expect(report.sha256).toMatch(/^[0-9a-f]{64}$/);
  });
});
