/**
 * The project's own client and snapshot toolkit against the simulator: what the wizard sees must be what the
 * simulator means, and what it downloads must inspect exactly as etcdctl reads it.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inspectSnapshot } from '../../src/etcd/index.js';
import { buildEtcdDatabase, buildEtcdSnapshot, type HistoryEvent } from '../../src/etcd/writer.js';
import { loadClientFromFlags, type GrpcTalosClient } from '../../src/talos/client.js';
import { etcdctlStatus, haveEtcdctl } from './etcd-tools.js';
import { startBench, type Bench } from './helpers.js';

const work = mkdtempSync(join(tmpdir(), 'talos-dr-roundtrip-'));
let bench: Bench;
let client: GrpcTalosClient;
beforeAll(async () => {
  bench = await startBench('lost-quorum');
  client = loadClientFromFlags({ talosconfig: bench.sim.talosconfigPath }, {}).client;
});
afterAll(async () => {
  client?.close();
  await bench?.close();
  rmSync(work, { recursive: true, force: true });
});

describe('the real client against the simulator', () => {
  it('sees the lost quorum: the survivor without a leader, the others not answering in time', async () => {
    const [cp1, cp2] = bench.sim.nodes as [string, string];
    const version = await client.version(bench.sim.nodes);
    expect(version.every((r) => r.ok && r.value.tag === 'v1.14.7')).toBe(true);
    const [survivor] = await client.etcdStatus([cp1], { timeoutMs: 2000 });
    expect(survivor?.ok && survivor.value.leader).toBe('0000000000000000');
    expect(survivor?.ok && survivor.value.errors).toEqual(['etcdserver: no leader']);
    const [broken] = await client.etcdStatus([cp2], { timeoutMs: 300 });
    expect(broken?.ok).toBe(false);
  });

  it('downloads a snapshot that inspect verifies and reads exactly as etcdctl does', async () => {
    const cp1 = bench.sim.nodes[0]!;
    const chunks: Buffer[] = [];
    for await (const chunk of client.etcdSnapshot(cp1)) chunks.push(chunk);
    const path = join(work, 'db.snapshot');
    writeFileSync(path, Buffer.concat(chunks));
    const report = await inspectSnapshot(path);
    expect(report).toMatchObject({
      kind: 'bbolt',
      structure: 'ok',
      integrity: 'verified',
      usable: true,
      needsSkipHashCheck: false,
    });
    expect(report.revision).toBe(bench.sim.dataReport().lastWriteRevision);
    if (haveEtcdctl) {
      const status = await etcdctlStatus(path);
      expect(report.hash).toBe(status.hash.toString(16).padStart(8, '0'));
      expect({ revision: report.revision, totalKeys: report.totalKeys, totalSize: report.totalSize }).toEqual({
        revision: status.revision,
        totalKeys: status.totalKey,
        totalSize: status.totalSize,
      });
    }
  });
});

describe.skipIf(!haveEtcdctl)("inspect reproduces etcdctl snapshot status on the writer's files", () => {
  it.each([0, 3, 60, 2500])('%i keys', async (keys) => {
    const history: HistoryEvent[] = [];
    for (let i = 0; i < keys; i++) {
      history.push({
        kind: 'put',
        revision: i + 2,
        key: `/registry/configmaps/default/c${i}`,
        value: Buffer.alloc(i % 7 === 0 ? 5000 : 90, 'v'),
        createRevision: i + 2,
        version: 1,
      });
    }
    const content = {
      history,
      consistentIndex: 77,
      members: [
        {
          id: '1a2b3c4d5e6f7081',
          name: 'cp-1',
          peerURLs: ['https://127.0.0.2:2380'],
          clientURLs: ['https://127.0.0.2:2379'],
        },
      ],
    };
    for (const [name, bytes] of [
      ['db', buildEtcdDatabase(content)],
      ['snapshot', buildEtcdSnapshot(content)],
    ] as const) {
      const path = join(work, `w-${keys}-${name}`);
      writeFileSync(path, bytes);
      const [report, status] = await Promise.all([inspectSnapshot(path), etcdctlStatus(path)]);
      expect(report.hash).toBe(status.hash.toString(16).padStart(8, '0'));
      expect([report.revision, report.totalKeys, report.totalSize]).toEqual([
        status.revision,
        status.totalKey,
        status.totalSize,
      ]);
      expect(report.integrity).toBe(name === 'db' ? 'absent' : 'verified');
    }
  });
});
