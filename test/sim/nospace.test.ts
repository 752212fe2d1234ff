/**
 * The NOSPACE playbook against the simulator over the wire: a database over its quota, the alarm every member
 * raised, writes refused with etcd's text, defragment one member at a time, disarm, and the alarm coming back when the
 * database is still over the quota.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { eventually, startBench, unary, type Bench } from './helpers.js';

let bench: Bench | undefined;
afterEach(async () => {
  await bench?.close();
  bench = undefined;
});

const QUOTA = 1048576;
type Status = { memberId: string; dbSize: string; dbSizeInUse: string; errors: string[]; leader: string };
type Alarms = { messages: { memberAlarms: { memberId: string; alarm: string }[] }[] };

const status = async (b: Bench, node: string): Promise<Status> =>
  (await unary<{ messages: { memberStatus: Status }[] }>(b.machine(node), 'EtcdStatus', {})).messages[0]!.memberStatus;
const alarms = async (b: Bench, node: string) =>
  (await unary<Alarms>(b.machine(node), 'EtcdAlarmList', {})).messages[0]!.memberAlarms;
const memberIds = async (b: Bench, node: string): Promise<string[]> =>
  (
    await unary<{ messages: { members: { id: string }[] }[] }>(b.machine(node), 'EtcdMemberList', { queryLocal: true })
  ).messages[0]!.members.map((m) => m.id);

describe('nospace: every member over its quota with the NOSPACE alarm', () => {
  it('lists the whole cluster’s alarms from any member, refuses writes, and shows the alarms in status', async () => {
    bench = await startBench('nospace');
    const [cp1, cp2, cp3] = bench.sim.nodes as [string, string, string];
    const ids = (await memberIds(bench, cp1)).sort();
    for (const node of [cp1, cp2, cp3]) {
      const list = await alarms(bench, node);
      expect(list.map((a) => a.alarm)).toEqual(['NOSPACE', 'NOSPACE', 'NOSPACE']);
      expect(list.map((a) => a.memberId).sort()).toEqual(ids);
      const s = await status(bench, node);
      expect(Number(s.dbSize)).toBeGreaterThan(QUOTA);
      expect(Number(s.dbSizeInUse)).toBeLessThan(QUOTA);
      expect(s.leader).not.toBe('0');
      // etcd's Status.errors: each alarm in its compact text form
      expect(s.errors.sort()).toEqual(ids.map((id) => `memberID:${id} alarm:NOSPACE `));
    }
    expect(await bench.sim.etcdWrite()).toEqual({ ok: false, error: 'etcdserver: mvcc: database space exceeded' });
    // a worker runs no etcd: Talos refuses the call there
    const worker = bench.sim.allNodes[3]!;
    await expect(unary(bench.machine(worker), 'EtcdAlarmList', {})).rejects.toMatchObject({
      code: grpc.status.UNIMPLEMENTED,
      details: 'etcd alarm list is only available on control plane nodes',
    });
  });

  it('disarming before a defragment does not last: the next write over the quota raises the alarm again', async () => {
    bench = await startBench('nospace');
    const cp1 = bench.sim.nodes[0]!;
    const disarmed = await unary<Alarms>(bench.machine(cp1), 'EtcdAlarmDisarm', {});
    expect(disarmed.messages[0]!.memberAlarms).toHaveLength(3);
    // the apiservers keep writing (every 5 simulated seconds); the first write through a member over the quota
    // raises NOSPACE for that member again, and from then on every write is refused (no second alarm is raised)
    const back = await eventually(
      () => alarms(bench!, cp1),
      (list) => list.length > 0,
    );
    expect(back.every((a) => a.alarm === 'NOSPACE')).toBe(true);
    expect(await bench.sim.etcdWrite()).toEqual({ ok: false, error: 'etcdserver: mvcc: database space exceeded' });
  });

  it('defragments one member at a time (its size falls to the in-use size), then a disarm clears the alarms for good', async () => {
    bench = await startBench('nospace');
    const nodes = bench.sim.nodes;
    const before = await status(bench, nodes[0]!);
    for (const node of nodes) {
      await unary(bench.machine(node), 'EtcdDefragment', {}, { timeoutMs: 10_000 });
      const after = await status(bench, node);
      expect(after.dbSize).toBe(after.dbSizeInUse);
      expect(Number(after.dbSize)).toBeLessThan(QUOTA);
    }
    // defragmenting cp-1 did not touch the others' files until their own turn; the data stayed
    expect((await status(bench, nodes[0]!)).dbSizeInUse).toBe(before.dbSizeInUse);
    const disarmed = await unary<Alarms>(bench.machine(nodes[1]!), 'EtcdAlarmDisarm', {});
    expect(disarmed.messages[0]!.memberAlarms.map((a) => a.alarm)).toEqual(['NOSPACE', 'NOSPACE', 'NOSPACE']);
    expect(await bench.sim.etcdWrite()).toEqual({ ok: true });
    // several rounds of apiserver writes later, still no alarm
    await new Promise((r) => setTimeout(r, 60));
    for (const node of nodes) expect(await alarms(bench, node)).toEqual([]);
    expect((await status(bench, nodes[2]!)).errors).toEqual([]);
    const calls = bench.sim.destructiveCalls();
    expect(Object.values(calls.defragment)).toEqual([1, 1, 1, 0]);
    expect(calls.alarmDisarm[nodes[1]!]).toBe(1);
  });

  it('a member being defragmented answers nothing until it is done; the others answer meanwhile', async () => {
    bench = await startBench('nospace', { speed: 20 });
    const [cp1, cp2] = bench.sim.nodes as [string, string];
    const defrag = unary(bench.machine(cp1), 'EtcdDefragment', {}, { timeoutMs: 10_000 });
    await new Promise((r) => setTimeout(r, 10));
    await expect(unary(bench.machine(cp1), 'EtcdStatus', {}, { timeoutMs: 20 })).rejects.toMatchObject({
      code: grpc.status.DEADLINE_EXCEEDED,
    });
    expect(Number((await status(bench, cp2)).dbSize)).toBeGreaterThan(QUOTA);
    await defrag;
    expect(Number((await status(bench, cp1)).dbSize)).toBeLessThan(QUOTA);
  });
});

describe('a CORRUPT alarm', () => {
  it('is listed like NOSPACE and makes etcd refuse every request with its own text', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'talos-dr-corrupt-')), 'corrupt.yaml');
    writeFileSync(
      path,
      [
        'name: corrupt',
        'description: cp-2 found its data differ from the others and raised CORRUPT.',
        'expectedOutcome: recovered',
        'procedure: replace-member',
        'rightAnswer: replace cp-2.',
        'nodes:',
        '  - { hostname: cp-1, type: controlplane }',
        '  - { hostname: cp-2, type: controlplane }',
        '  - { hostname: cp-3, type: controlplane }',
        'alarms:',
        '  - { node: cp-2, alarm: CORRUPT }',
        '',
      ].join('\n'),
    );
    bench = await startBench(path);
    const [cp1, cp2] = bench.sim.nodes as [string, string];
    const cp2Id = (
      await unary<{ messages: { members: { id: string; hostname: string }[] }[] }>(
        bench.machine(cp1),
        'EtcdMemberList',
        { queryLocal: true },
      )
    ).messages[0]!.members.find((m) => m.hostname === 'cp-2')!.id;
    expect(await alarms(bench, cp1)).toEqual([{ memberId: cp2Id, alarm: 'CORRUPT' }]);
    expect((await status(bench, cp2)).errors).toEqual([`memberID:${cp2Id} alarm:CORRUPT `]);
    expect(await bench.sim.etcdWrite()).toEqual({ ok: false, error: 'etcdserver: corrupt cluster' });
    // Talos's health check reads a key, which etcd refuses too: etcd is Running but unhealthy everywhere
    const health = (
      await unary<{ messages: { services: { id: string; health: { healthy: boolean; lastMessage: string } }[] }[] }>(
        bench.machine(cp1),
        'ServiceList',
        {},
      )
    ).messages[0]!.services.find((s) => s.id === 'etcd')!.health;
    expect(health).toMatchObject({ healthy: false, lastMessage: 'etcdserver: corrupt cluster' });
  });
});
