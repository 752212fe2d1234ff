/**
 * The built-in etcd model's restore: it reads the uploaded database with the snapshot toolkit's bbolt walker
 * (src/etcd/bbolt.ts) and keeps the `key` bucket's whole history (revisions, create revisions, versions, tombstones)
 * and `meta/consistent_index`, as etcd's restore does.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildEtcdDatabase, buildEtcdSnapshot, type HistoryEvent } from '../../src/etcd/writer.js';
import { EtcdRestoreError } from '../../src/sim/etcd-backend.js';
import { ModelEtcd } from '../../src/sim/model-etcd.js';

const work = mkdtempSync(join(tmpdir(), 'talos-dr-etcd-model-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** A history as a compacted real cluster leaves it: the first put kept of a key can be version 3 of it. */
function history(): HistoryEvent[] {
  const events: HistoryEvent[] = [];
  for (let i = 0; i < 400; i++) {
    events.push({
      kind: 'put',
      revision: 1000 + i,
      key: `/registry/configmaps/default/cm-${String(i % 150).padStart(4, '0')}`,
      value: Buffer.alloc(i === 7 ? 9000 : 200, `v${i}-`),
      createRevision: i < 150 ? 600 + i : 1000 + (i % 150),
      version: i < 150 ? 3 : 4 + Math.floor(i / 150),
    });
  }
  events.push({ kind: 'delete', revision: 1400, key: '/registry/configmaps/default/cm-0002' });
  events.push({
    kind: 'put',
    revision: 1401,
    key: '/registry/leases/kube-system/x',
    value: Buffer.alloc(0),
    createRevision: 1401,
    version: 1,
  });
  return events;
}

const members = [
  {
    id: '8e9e05c52164694d',
    name: 'cp-1',
    peerURLs: ['https://127.0.0.2:2380'],
    clientURLs: ['https://127.0.0.2:2379'],
  },
];
const self = { name: 'cp-1', address: '127.0.0.2' };

type SavedPut = { kind: 'put'; revision: number; key: string; value: string; createRevision: number; version: number };

describe('ModelEtcd.restore', () => {
  it('keeps every revision of the snapshot: puts with their create revision and version, tombstones, values', async () => {
    const original = history();
    const file = join(work, 'api.snapshot');
    writeFileSync(file, buildEtcdSnapshot({ history: original, consistentIndex: 777, members }));
    const etcd = new ModelEtcd(join(work, 'node-1', 'var', 'lib', 'etcd'));
    await etcd.restore(file, false, self);
    const saved = etcd.save().data;
    expect(saved?.history).toEqual(
      original.map((e) => (e.kind === 'put' ? { ...e, value: Buffer.from(e.value).toString('base64') } : e)),
    );
    expect((saved?.history[7] as SavedPut).value).toBe(Buffer.alloc(9000, 'v7-').toString('base64'));
    // etcd's restore: the consistent index it wrote plus one conf change; the member list is the new one-member cluster
    expect(etcd.status().raftAppliedIndex).toBe(778);
    expect(etcd.revision()).toBe(1401);
    expect(etcd.members().map((m) => m.name)).toEqual(['cp-1']);
    expect(etcd.liveKeys().has('/registry/configmaps/default/cm-0002')).toBe(false);
    expect(etcd.liveKeys().get('/registry/leases/kube-system/x')).toBe('');
  });

  it('restores a raw database (no trailer) with skip-hash-check', async () => {
    const file = join(work, 'db');
    writeFileSync(file, buildEtcdDatabase({ history: history(), consistentIndex: 10, members }));
    const etcd = new ModelEtcd(join(work, 'node-2', 'var', 'lib', 'etcd'));
    await etcd.restore(file, true, self);
    expect(etcd.revision()).toBe(1401);
    expect(etcd.status().raftAppliedIndex).toBe(11);
  });

  it.each([
    ['a file that is not a database', (db: Buffer) => Buffer.alloc(db.length, 7), 'invalid database'],
    ['a database cut short', (db: Buffer) => db.subarray(0, db.length - 4096), 'the file is cut short'],
  ])('refuses %s, leaving the data directory not empty', async (_what, damage, reason) => {
    const db = buildEtcdDatabase({ history: history(), consistentIndex: 10, members });
    const file = join(work, `damaged-${Math.random()}`);
    writeFileSync(file, damage(db));
    const etcd = new ModelEtcd(join(work, `node-${Math.random()}`, 'var', 'lib', 'etcd'));
    const error = await etcd.restore(file, true, self).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EtcdRestoreError);
    expect((error as Error).message).toMatch(/^cannot open database at .*member\/snap\/db \(/);
    expect((error as Error).message).toContain(reason);
    expect(etcd.hasData()).toBe(true);
  });
});
