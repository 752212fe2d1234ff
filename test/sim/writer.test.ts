import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32c } from '@node-rs/crc32';
import { afterAll, describe, expect, it } from 'vitest';
import {
  buildEtcdDatabase,
  buildEtcdSnapshot,
  etcdBuckets,
  type EtcdDatabaseContent,
  type HistoryEvent,
} from '../../src/etcd/writer.js';
import {
  etcdctlGetPrefix,
  etcdctlRestore,
  etcdctlStatus,
  etcdToolsMissing,
  freePort,
  haveEtcd,
  haveEtcdctl,
  startEtcd,
} from './etcd-tools.js';

const work = mkdtempSync(join(tmpdir(), 'talos-dr-writer-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Kubernetes-like keys; one value spans several pages (overflow); one key is deleted afterwards (tombstone). */
function content(keys: number): EtcdDatabaseContent {
  const history: HistoryEvent[] = [];
  for (let i = 0; i < keys; i++) {
    const value = Buffer.alloc(i === 3 ? 9000 : 120, `pod-${i}-`);
    history.push({
      kind: 'put',
      revision: i + 2,
      key: `/registry/pods/default/web-${String(i).padStart(5, '0')}`,
      value,
      createRevision: i + 2,
      version: 1,
    });
  }
  history.push({ kind: 'delete', revision: keys + 2, key: '/registry/pods/default/web-00001' });
  return {
    history,
    consistentIndex: 4242,
    members: [
      {
        id: '8e9e05c52164694d',
        name: 'cp-1',
        peerURLs: ['http://127.0.0.1:2380'],
        clientURLs: ['http://127.0.0.1:2379'],
      },
    ],
  };
}

/** etcd's snapshot hash computed from the content alone (facts §3 step 4), independent of page layout. */
function expectedStatus(c: EtcdDatabaseContent): { hash: number; revision: number; totalKey: number } {
  let hash = 0;
  let totalKey = 0;
  const buckets = [...etcdBuckets(c)].sort(([a], [b]) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  for (const [name, entries] of buckets) {
    hash = crc32c(Buffer.from(name), hash);
    const sorted = [...entries].sort(([a], [b]) => Buffer.compare(a, b));
    for (const [k, v] of sorted) {
      hash = crc32c(Buffer.from(v), crc32c(Buffer.from(k), hash));
      totalKey++;
    }
  }
  const last = c.history[c.history.length - 1];
  return { hash, revision: last?.revision ?? 0, totalKey };
}

describe('bbolt writer', () => {
  it('writes the API snapshot form: database plus its sha256, size ≡ 32 mod 512', () => {
    const snapshot = buildEtcdSnapshot(content(5));
    expect(snapshot.length % 512).toBe(32);
    expect(buildEtcdDatabase(content(5)).length % 4096).toBe(0);
  });

  it.skipIf(!haveEtcdctl)(
    'etcdctl snapshot status accepts small (inline) and large (B+tree, overflow) databases',
    async () => {
      for (const keys of [2, 40, 1500]) {
        const c = content(keys);
        const dbPath = join(work, `db-${keys}`);
        const snapPath = join(work, `snap-${keys}`);
        const db = buildEtcdDatabase(c);
        writeFileSync(dbPath, db);
        writeFileSync(snapPath, buildEtcdSnapshot(c));
        const want = expectedStatus(c);
        expect(await etcdctlStatus(dbPath)).toEqual({ ...want, totalSize: db.length });
        expect(await etcdctlStatus(snapPath)).toEqual({ ...want, totalSize: db.length });
      }
    },
  );

  it.skipIf(!haveEtcdctl || !haveEtcd)('a real etcd restored from the snapshot serves every live key', async () => {
    const c = content(300);
    const snapPath = join(work, 'restore.snapshot');
    writeFileSync(snapPath, buildEtcdSnapshot(c));
    const peerUrl = `http://127.0.0.1:${await freePort()}`;
    const dataDir = join(work, 'restored');
    const restored = await etcdctlRestore(snapPath, dataDir, peerUrl);
    expect(restored.output).not.toMatch(/Error/);
    expect(restored.ok).toBe(true);
    const etcd = await startEtcd(dataDir, peerUrl, await freePort());
    try {
      const keys = await etcdctlGetPrefix(etcd.clientUrl, '/registry/');
      expect(keys.size).toBe(299);
      expect(keys.has('/registry/pods/default/web-00001')).toBe(false);
      expect(keys.get('/registry/pods/default/web-00003')?.length).toBe(9000);
    } finally {
      await etcd.stop();
    }
  });

  it.skipIf(!haveEtcdctl)(
    "etcdctl refuses a raw database without --skip-hash-check, with etcd's own text",
    async () => {
      const dbPath = join(work, 'raw-db');
      writeFileSync(dbPath, buildEtcdDatabase(content(3)));
      const peerUrl = `http://127.0.0.1:${await freePort()}`;
      const refused = await etcdctlRestore(dbPath, join(work, 'raw-no-skip'), peerUrl);
      expect(refused.ok).toBe(false);
      expect(refused.output).toContain('snapshot missing hash but --skip-hash-check=false');
      const accepted = await etcdctlRestore(dbPath, join(work, 'raw-skip'), peerUrl, { skipHashCheck: true });
      expect(accepted.ok).toBe(true);
    },
  );

  it.runIf(!haveEtcdctl)('says why the real-etcd checks are skipped', () => {
    console.warn(etcdToolsMissing);
  });
});
