/**
 * Evidence that `inspect` reads snapshots exactly as etcd does: every fixture here was made by a real etcd 3.4.23 and
 * is checked field for field against the real `etcdctl snapshot status -w json`, and our usable / needsSkipHashCheck
 * verdicts are checked against what `etcdctl snapshot restore` accepts, with and without --skip-hash-check.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { randomBytes } from 'node:crypto';
import { inspectSnapshot } from '../../src/etcd/inspect.js';
import type { SnapshotReport } from '../../src/etcd/types.js';
import {
  ETCD_TOOLS_PRESENT,
  EtcdProcess,
  etcdctlRestoreAccepts,
  etcdctlStatus,
  type EtcdctlStatus,
} from './etcd-fixture.js';

interface Fixture {
  file: string;
  /** distinct live keys in the cluster when it was taken (asked from etcd itself) */
  liveKeys: number;
}

const fixtures: Record<string, Fixture> = {};
let dir = '';
let etcd: EtcdProcess | null = null;
let restoreCounter = 0;

async function liveKeyCount(e: EtcdProcess): Promise<number> {
  const response = await fetch(`${e.clientUrl}/v3/kv/range`, {
    method: 'POST',
    body: JSON.stringify({ key: Buffer.from('\0').toString('base64'), range_end: 'AA==', count_only: true }),
  });
  const answer = (await response.json()) as { count?: string };
  return Number(answer.count ?? 0);
}

async function save(e: EtcdProcess, name: string): Promise<void> {
  const file = join(dir, name);
  e.etcdctl('snapshot', 'save', file);
  fixtures[name] = { file, liveKeys: await liveKeyCount(e) };
}

function expectSameStatus(report: SnapshotReport, status: EtcdctlStatus | null): void {
  expect(status).not.toBeNull();
  expect({
    hash: report.hash === null ? null : parseInt(report.hash, 16),
    revision: report.revision,
    totalKey: report.totalKeys,
    totalSize: report.totalSize,
  }).toEqual(status);
}

function restoreAccepts(file: string, skip: boolean): boolean {
  return etcdctlRestoreAccepts(file, join(dir, `restore-${restoreCounter++}`), skip);
}

/** Our verdicts and etcd's restore must agree: what we call usable restores, what we reject does not restore cleanly. */
function expectRestoreAgrees(file: string, report: SnapshotReport): void {
  const plain = restoreAccepts(file, false);
  const skipping = restoreAccepts(file, true);
  expect(plain, 'restore without --skip-hash-check').toBe(report.usable && report.integrity === 'verified');
  if (report.needsSkipHashCheck) expect(skipping, 'restore with --skip-hash-check').toBe(true);
  if (!skipping) expect(report.usable).toBe(false);
}

describe.skipIf(!ETCD_TOOLS_PRESENT)('inspect against the real etcdctl 3.4', () => {
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'talos-dr-etcd-'));
    etcd = new EtcdProcess(join(dir, 'member-data'));
    await etcd.start();
    await save(etcd, 'empty.snapshot');
    // Enough pairs for branch pages, a value bigger than a page (overflow), updates and deletes (tombstones).
    for (let i = 0; i < 300; i++) await etcd.put(`/registry/pods/default/pod-${i}`, `${'v'.repeat(180)}-${i}`);
    for (let i = 0; i < 40; i++) await etcd.put(`/registry/pods/default/pod-${i}`, `updated-${i}`);
    await etcd.put('/registry/configmaps/big', Buffer.alloc(20_000, 0x42));
    await etcd.put('/registry/marker', 'UNIQUE-MARKER-VALUE-0123456789');
    for (let i = 100; i < 150; i++) await etcd.del(`/registry/pods/default/pod-${i}`);
    await save(etcd, 'writes.snapshot');
    await etcd.compact(await etcd.revision());
    await save(etcd, 'compacted.snapshot');
    etcd.etcdctl('defrag');
    await save(etcd, 'defragged.snapshot');
    // The newest revision is a delete: after compaction etcd reports an older revision than the server's.
    await etcd.put('/registry/leases/l1', 'lease');
    await etcd.del('/registry/leases/l1');
    // A snapshot commits etcd's pending write batch to the db file, so what the killed member leaves is known.
    etcd.etcdctl('snapshot', 'save', join(dir, 'commit-barrier.snapshot'));
    await etcd.stop('SIGKILL');
    copyFileSync(join(dir, 'member-data/member/snap/db'), join(dir, 'killed.db'));
    fixtures['killed.db'] = { file: join(dir, 'killed.db'), liveKeys: fixtures['defragged.snapshot']!.liveKeys };
    await etcd.start();
    await etcd.put('/registry/after-restart', 'yes');
    const liveAtStop = await liveKeyCount(etcd);
    await etcd.stop('SIGTERM');
    copyFileSync(join(dir, 'member-data/member/snap/db'), join(dir, 'stopped.db'));
    fixtures['stopped.db'] = { file: join(dir, 'stopped.db'), liveKeys: liveAtStop };
  });

  afterAll(async () => {
    await etcd?.stop('SIGKILL');
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const names = [
    'empty.snapshot',
    'writes.snapshot',
    'compacted.snapshot',
    'defragged.snapshot',
    'killed.db',
    'stopped.db',
  ];

  test.each(names)('%s: status fields equal etcdctl snapshot status, restore agrees', async (name) => {
    const fixture = fixtures[name]!;
    const report = await inspectSnapshot(fixture.file);
    expectSameStatus(report, etcdctlStatus(fixture.file));
    expect(report.kind).toBe('bbolt');
    expect(report.structure).toBe('ok');
    expect(report.liveKeys).toBe(fixture.liveKeys);
    expect(report.problems).toEqual([]);
    const isRaw = name.endsWith('.db');
    expect(report.integrity).toBe(isRaw ? 'absent' : 'verified');
    expect(report.needsSkipHashCheck).toBe(isRaw);
    expect(report.usable).toBe(true);
    expectRestoreAgrees(fixture.file, report);
  });

  test('an empty cluster: revision 0 and 3 pairs, as etcd reports it', async () => {
    const report = await inspectSnapshot(fixtures['empty.snapshot']!.file);
    expect(report.revision).toBe(0);
    expect(report.totalKeys).toBe(3);
    expect(report.liveKeys).toBe(0);
  });

  test('the hash depends on content only: compacted and defragmented snapshots hash the same', async () => {
    const compacted = await inspectSnapshot(fixtures['compacted.snapshot']!.file);
    const defragged = await inspectSnapshot(fixtures['defragged.snapshot']!.file);
    expect(defragged.totalSize).toBeLessThanOrEqual(compacted.totalSize!);
    expect(defragged.hash).toBe(compacted.hash);
  });

  /** A damaged copy of the writes snapshot, made by `damage`, checked against etcdctl status and restore. */
  async function inspectVariant(
    name: string,
    damage: (bytes: Buffer) => Buffer,
    source = 'writes.snapshot',
  ): Promise<SnapshotReport> {
    const file = join(dir, name);
    writeFileSync(file, damage(readFileSync(fixtures[source]!.file)));
    const report = await inspectSnapshot(file);
    const status = etcdctlStatus(file);
    if (report.structure === 'ok') expectSameStatus(report, status);
    else expect(status, 'etcdctl status of a file we call damaged').toBeNull();
    expectRestoreAgrees(file, report);
    return report;
  }

  test('a flipped trailer byte: same status, trailer mismatch, not usable', async () => {
    const original = await inspectSnapshot(fixtures['writes.snapshot']!.file);
    const report = await inspectVariant('trailer-flip.snapshot', (b) => flip(b, b.length - 1));
    expect(report.hash).toBe(original.hash);
    expect(report.integrity).toBe('mismatch');
    expect(report.usable).toBe(false);
    expect(report.problems.join(' ')).toMatch(/sha256 trailer does not match/);
  });

  test('flipped bytes in a value: etcd status cannot see it (new hash), only the trailer catches it', async () => {
    const original = await inspectSnapshot(fixtures['writes.snapshot']!.file);
    const report = await inspectVariant('value-flip.snapshot', (b) => flipEvery(b, 'UNIQUE-MARKER-VALUE'));
    expect(report.structure).toBe('ok');
    expect(report.hash).not.toBe(original.hash);
    expect(report.integrity).toBe('mismatch');
    expect(report.usable).toBe(false);
  });

  test('a damaged meta page 0: bbolt falls back to meta 1, the trailer still catches the change', async () => {
    const report = await inspectVariant('meta0-flip.snapshot', (b) => flip(b, 16 + 40));
    expect(report.structure).toBe('ok');
    expect(report.integrity).toBe('mismatch');
    expect(report.usable).toBe(false);
  });

  test('both meta pages damaged: cannot be opened', async () => {
    const report = await inspectVariant('metas-flip.snapshot', (b) => flip(flip(b, 16 + 40), 4096 + 16 + 40));
    expect(report.kind).toBe('bbolt');
    expect(report.structure).toBe('damaged');
    expect(report.hash).toBeNull();
    expect(report.problems[0]).toMatch(/cannot be opened: both meta pages fail their checksum/);
  });

  test('a flipped page type in the root page: damaged, no status (etcdctl panics)', async () => {
    const report = await inspectVariant('pagetype-flip.snapshot', (b) => {
      const root = b.readUInt32LE(16 + 16);
      b[root * 4096 + 8] = 0x00;
      return b;
    });
    expect(report.structure).toBe('damaged');
    expect(report.problems.join(' ')).toMatch(/invalid type/);
    expect(report.usable).toBe(false);
  });

  test('a page header whose id was damaged: damaged', async () => {
    const report = await inspectVariant('pageid-flip.snapshot', (b) => {
      const root = b.readUInt32LE(16 + 16);
      return flip(b, root * 4096);
    });
    expect(report.structure).toBe('damaged');
    expect(report.usable).toBe(false);
  });

  test('truncated at half: damaged (etcdctl dies with SIGBUS), never a crash here', async () => {
    const report = await inspectVariant('half.snapshot', (b) => b.subarray(0, Math.floor(b.length / 2)));
    expect(report.structure).toBe('damaged');
    expect(report.integrity).toBe('absent');
    expect(report.problems.join(' ')).toMatch(/cut short/);
    expect(report.needsSkipHashCheck).toBe(false);
  });

  test('truncated to a size that looks like it has a trailer: damaged and mismatch', async () => {
    const report = await inspectVariant('cut-trailer.snapshot', (b) => b.subarray(0, 10 * 4096 + 32));
    expect(report.structure).toBe('damaged');
    expect(report.integrity).toBe('mismatch');
    expect(report.usable).toBe(false);
  });

  test('a raw copy cut short: not usable, and it does not need skip-hash-check (it needs a new copy)', async () => {
    // Cut in half: cutting only the last pages can leave every reachable page in place (real etcd puts free pages
    // anywhere), and then etcdctl reads the file without complaint while we call it cut short.
    const report = await inspectVariant(
      'raw-cut.db',
      (b) => b.subarray(0, 4096 * Math.floor(b.length / 8192)),
      'stopped.db',
    );
    expect(report.structure).toBe('damaged');
    expect(report.needsSkipHashCheck).toBe(false);
    expect(report.usable).toBe(false);
  });

  test('zero length and random bytes: refused, as etcd refuses them', async () => {
    const empty = await inspectVariant('zero.snapshot', () => Buffer.alloc(0));
    expect(empty.kind).toBe('empty');
    const random = await inspectVariant('random.snapshot', () => randomBytes(64 * 1024 + 32));
    expect(random.kind).toBe('unknown');
    expect(random.integrity).toBe('mismatch');
    expect(random.usable).toBe(false);
  });

  test('a gzip-wrapped snapshot is recognised and refused', async () => {
    const report = await inspectVariant('wrapped.snapshot.gz', (b) => gzipSync(b));
    expect(report.kind).toBe('gzip');
    expect(report.usable).toBe(false);
    expect(report.problems[0]).toMatch(/gunzip/);
  });
});

function flip(bytes: Buffer, at: number): Buffer {
  bytes[at] = (bytes[at] as number) ^ 0xff;
  return bytes;
}

/** Flips a byte in every copy of `marker` (old copies linger in free pages; the live one must be hit). */
function flipEvery(bytes: Buffer, marker: string): Buffer {
  let at = bytes.indexOf(marker);
  expect(at).toBeGreaterThan(0);
  while (at >= 0) {
    flip(bytes, at + 3);
    at = bytes.indexOf(marker, at + 1);
  }
  return bytes;
}
