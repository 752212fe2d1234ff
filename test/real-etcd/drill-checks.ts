/**
 * What every autopilot drill on real etcd checks at its end (drills.test.ts, drills-restore.test.ts): the recovered
 * cluster asked with Debian's etcdctl, and no etcd process left once the simulator stops.
 */
import { expect } from 'vitest';
import { readKeyBucket } from '../../src/etcd/keys.js';
import { etcdctlJson, processesMentioning, type RealDrill } from './harness.js';

interface GetAnswer {
  header: { revision: number; member_id: number };
  kvs?: { key: string; value: string; mod_revision: number }[];
  count?: number;
}
interface MemberListAnswer {
  members: { ID: number; name: string; peerURLs: string[]; clientURLs?: string[] }[];
}

const decode = (b64: string): string => Buffer.from(b64, 'base64').toString('utf8');

/** What every recovered member answers, checked against the uploaded snapshot file with etcdctl and our reader. */
export async function expectRealClusterHolds(r: RealDrill, expectedLost: number | 'any'): Promise<void> {
  expect(r.lines.at(-1)).toBe('outcome: recovered');
  expect(r.code).toBe(0);
  expect(r.lines.at(-2)).toContain('(data checked on real etcd: the restored keys equal the snapshot)');

  const snapshotFile = r.context.snapshot?.file;
  expect(snapshotFile).toBeTruthy();
  const file = snapshotFile as string;
  // the snapshot's revision in etcd's own words, and its live keys
  const status = await etcdctlJson<{ revision: number; totalKey: number }>('snapshot', 'status', file);
  const expected = await readKeyBucket(file);
  expect(expected.size).toBeGreaterThan(50);

  const report = r.sim.dataReport();
  expect(report.etcd).toBe('real');
  expect(report.keysMatchSnapshot).toBe(true);
  expect(report.restoredRevision).toBe(status.revision);
  expect(report.lostRevisions).toBe(report.lastWriteRevision - status.revision);
  if (expectedLost !== 'any') expect(report.lostRevisions).toBe(expectedLost);

  const controlPlane = r.sim.view().filter((v) => v.machineType === 'controlplane');
  const endpoints = controlPlane.map((v) => v.etcdClientUrl as string);
  expect(endpoints.every((e) => /^http:\/\/127\.\d+\.\d+\.\d+:\d+$/.test(e))).toBe(true);

  // one cluster: every member lists every node by its hostname
  for (const endpoint of endpoints) {
    const list = await etcdctlJson<MemberListAnswer>('--endpoints', endpoint, 'member', 'list');
    expect(list.members.map((m) => m.name).sort()).toEqual(controlPlane.map((v) => v.hostname).sort());
  }
  // every member serves the snapshot's keys at the snapshot's revision, through a linearizable read (needs a leader)
  for (const endpoint of endpoints) {
    const got = await etcdctlJson<GetAnswer>(
      '--endpoints',
      endpoint,
      '--command-timeout=10s',
      'get',
      '',
      '--prefix',
      '--consistency=l',
    );
    expect(got.header.revision).toBe(status.revision);
    const keys = new Map((got.kvs ?? []).map((kv) => [decode(kv.key), decode(kv.value)]));
    expect(keys.size).toBe(expected.size);
    for (const [key, value] of expected) expect(keys.get(key)).toBe(value.toString('utf8'));
    expect(Math.max(...(got.kvs ?? []).map((kv) => kv.mod_revision))).toBeLessThanOrEqual(status.revision);
  }
}

/** Stops the simulator and proves that none of its etcd processes is left (found by their data dirs). */
export async function expectStopsEveryProcess(r: RealDrill): Promise<void> {
  expect((await processesMentioning(r.dir)).length).toBeGreaterThan(0);
  await r.sim.stop();
  expect(await processesMentioning(r.dir)).toEqual([]);
}
