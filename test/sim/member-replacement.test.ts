/**
 * Replacing one member while quorum holds, against the simulator over the wire: remove through a healthy node (etcd's
 * strict reconfiguration check included), the removed machine's etcd, the wipe and the rejoin as a learner (listed
 * first without a name), the blank replacement configured over the maintenance API, a planned swap (forfeit
 * leadership, leave), and a node that comes back by itself.
 */
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { etcdState, eventually, startBench, unary, type Bench } from './helpers.js';

let bench: Bench | undefined;
afterEach(async () => {
  await bench?.close();
  bench = undefined;
});

type Member = { id: string; hostname: string; isLearner: boolean; clientUrls: string[] };
const members = async (b: Bench, through: string): Promise<Member[]> =>
  (await unary<{ messages: { members: Member[] }[] }>(b.machine(through), 'EtcdMemberList', { queryLocal: true }))
    .messages[0]!.members;
const services = async (b: Bench, node: string) =>
  (
    await unary<{ messages: { services: { id: string; state: string; events: { events: { msg: string }[] } }[] }[] }>(
      b.machine(node),
      'ServiceList',
      {},
    )
  ).messages[0]!.services;
const etcdEvents = async (b: Bench, node: string): Promise<string[]> =>
  (await services(b, node)).find((s) => s.id === 'etcd')!.events.events.map((e) => e.msg);
const statusOf = async (b: Bench, node: string) =>
  (
    await unary<{ messages: { memberStatus: { memberId: string; leader: string; isLearner: boolean } }[] }>(
      b.machine(node),
      'EtcdStatus',
      {},
    )
  ).messages[0]!.memberStatus;

/** Polls the member list and keeps every distinct view of the joining member (by hostname or as a nameless learner). */
async function watchJoin(
  b: Bench,
  through: string,
  hostname: string,
  whileLearner?: () => Promise<void>,
): Promise<string[]> {
  const seen: string[] = [];
  await eventually(
    async () => {
      const list = await members(b, through).catch(() => []);
      const m = list.find((x) => x.hostname === hostname || (x.hostname === '' && x.isLearner));
      const view = m ? `${m.hostname || '(no name)'} learner=${m.isLearner} urls=${m.clientUrls.length}` : 'absent';
      if (seen.at(-1) !== view) {
        seen.push(view);
        if (m?.hostname === hostname && m.isLearner) await whileLearner?.();
      }
      return m;
    },
    (m) => Boolean(m && m.hostname === hostname && !m.isLearner),
    20_000,
  );
  return seen;
}

describe('member-crashloop: one member of three crash-looping, quorum holds', () => {
  it('removes it through a healthy node, wipes it, and it rejoins as a learner that is then promoted', async () => {
    bench = await startBench('member-crashloop', { speed: 20 });
    const [cp1, cp2, cp3] = bench.sim.nodes as [string, string, string];
    expect(await etcdState(bench, cp3)).toBe('Waiting');
    const before = await members(bench, cp1);
    expect(before.map((m) => m.hostname).sort()).toEqual(['cp-1', 'cp-2', 'cp-3']);
    const broken = before.find((m) => m.hostname === 'cp-3')!;
    await unary(bench.machine(cp1), 'EtcdRemoveMemberByID', { memberId: broken.id });
    expect((await members(bench, cp2)).map((m) => m.hostname).sort()).toEqual(['cp-1', 'cp-2']);
    // its data are still damaged: it keeps crash-looping until it is wiped
    expect((await etcdEvents(bench, cp3)).at(-1)).toBe(
      'Error running Containerd(etcd), going to restart forever: task "etcd" failed: exit code 2',
    );
    await unary(bench.machine(cp3), 'Reset', {
      graceful: false,
      reboot: true,
      systemPartitionsToWipe: [{ label: 'EPHEMERAL', wipe: true }],
    });
    const asLearner: string[] = [];
    const seen = await watchJoin(bench, cp1, 'cp-3', async () => {
      // a learner answers Status (isLearner) but refuses a member list through its own etcd
      asLearner.push(`isLearner=${(await statusOf(bench!, cp3)).isLearner}`);
      const refused = await members(bench!, cp3).then(
        () => 'answered',
        (e: grpc.ServiceError) => e.details,
      );
      asLearner.push(refused);
    });
    expect(asLearner).toEqual(['isLearner=true', 'etcdserver: rpc not supported for learner']);
    // etcd lists a learner without a name until its process starts, then with its name, then as a voter
    expect(seen).toContain('(no name) learner=true urls=0');
    expect(seen).toContain('cp-3 learner=true urls=1');
    expect(seen.at(-1)).toBe('cp-3 learner=false urls=1');
    const after = await members(bench, cp2);
    expect(after).toHaveLength(3);
    expect(after.find((m) => m.hostname === 'cp-3')!.id).not.toBe(broken.id);
    await eventually(
      () => etcdState(bench!, cp3),
      (s) => s === 'Running',
    );
    expect(bench.sim.destructiveCalls().removeMember[cp1]).toBe(1);
    expect(bench.sim.destructiveCalls().reset[cp3]).toBe(1);
  });

  it('refuses to remove a healthy member while another is down (etcd: unhealthy cluster) and keeps all members', async () => {
    bench = await startBench('quorum-intact');
    const [cp1] = bench.sim.nodes as [string];
    const list = await members(bench, cp1);
    const healthy = list.find((m) => m.hostname === 'cp-2')!;
    await expect(unary(bench.machine(cp1), 'EtcdRemoveMemberByID', { memberId: healthy.id })).rejects.toMatchObject({
      code: grpc.status.UNKNOWN,
      details: `failed to remove member: failed to remove member ${healthy.id}: etcdserver: unhealthy cluster`,
    });
    expect(await members(bench, cp1)).toHaveLength(3);
  });

  it('a healthy member removed while its etcd runs stops itself and is restarted forever by Talos', async () => {
    bench = await startBench('member-crashloop-5');
    const [cp1, , , , cp5] = bench.sim.nodes as [string, string, string, string, string];
    const victim = (await members(bench, cp1)).find((m) => m.hostname === 'cp-5')!;
    await unary(bench.machine(cp1), 'EtcdRemoveMemberByID', { memberId: victim.id });
    const events = await eventually(
      () => etcdEvents(bench!, cp5),
      (e) => e.includes('Runner Containerd(etcd) exited without error, going to restart it'),
    );
    expect(events.filter((e) => e.startsWith('Runner Containerd(etcd) exited')).length).toBeGreaterThan(0);
    await expect(unary(bench.machine(cp5), 'EtcdStatus', {}, { timeoutMs: 200 })).rejects.toMatchObject({
      code: grpc.status.DEADLINE_EXCEEDED,
    });
    // quorum holds on the other four (cp-4 crash-loops): 3 of 4 voters
    expect((await statusOf(bench, cp1)).leader).not.toBe('0');
  });
});

describe('member-hardware: a blank machine replaced one member', () => {
  it('remove the old member, apply the backed-up config over the maintenance API: it installs and joins', async () => {
    bench = await startBench('member-hardware', { speed: 50 });
    const [cp1, , cp3] = bench.sim.nodes as [string, string, string];
    const old = (await members(bench, cp1)).find((m) => m.hostname === 'cp-3')!;
    await unary(bench.machine(cp1), 'EtcdRemoveMemberByID', { memberId: old.id });
    const written = await bench.sim.writeGiven(bench.dir);
    const config = readFileSync(written.find((p) => p.endsWith(`${cp3}.yaml`))!);
    await unary(bench.maintenance(cp3), 'ApplyConfiguration', { data: config, mode: 'AUTO' });
    await watchJoin(bench, cp1, 'cp-3');
    await eventually(
      async () => (await statusOf(bench!, cp3).catch(() => null))?.isLearner,
      (learner) => learner === false,
    );
    expect(await members(bench, cp3)).toHaveLength(3);
  });
});

describe('a planned swap of a healthy member', () => {
  it('forfeits leadership when it leads, then leaves: its etcd stops and its data go; the others keep quorum', async () => {
    bench = await startBench('member-crashloop-5');
    const [cp1, cp2] = bench.sim.nodes as [string, string];
    const leaderId = (await statusOf(bench, cp1)).leader;
    const byId = new Map((await members(bench, cp1)).map((m) => [m.id, m.hostname]));
    const leaderNode = bench.sim.view().find((v) => v.hostname === byId.get(leaderId))!.address;
    const follower = leaderNode === cp1 ? cp2 : cp1;
    expect(
      (await unary<{ messages: { member: string }[] }>(bench.machine(follower), 'EtcdForfeitLeadership', {}))
        .messages[0]!.member,
    ).toBe('');
    const moved = await unary<{ messages: { member: string }[] }>(
      bench.machine(leaderNode),
      'EtcdForfeitLeadership',
      {},
    );
    const newLeader = moved.messages[0]!.member;
    expect(newLeader).not.toBe('');
    expect(newLeader).not.toBe(byId.get(leaderId));
    expect(byId.get((await statusOf(bench, follower)).leader)).toBe(newLeader);
    await unary(bench.machine(leaderNode), 'EtcdLeaveCluster', {});
    expect(await etcdState(bench, leaderNode)).toBe('Finished');
    expect((await members(bench, follower)).map((m) => m.hostname)).not.toContain(byId.get(leaderId));
    expect(bench.sim.view().find((v) => v.address === leaderNode)!.etcdRevision).toBeNull();
  });
});

describe('member-unreachable: a node down for a while comes back by itself', () => {
  it('does not answer at first, quorum holds meanwhile, then it boots and its etcd runs with its own member id', async () => {
    // cp-3 is down for 120 s of the scenario: 3 s at speed 40. At speed 200 (0.6 s) a clean-clone run at load ~8 read
    // the members and reached cp-3 after it had already booted ('Version' answered instead of UNAVAILABLE).
    bench = await startBench('member-unreachable', { speed: 40 });
    const [cp1, , cp3] = bench.sim.nodes as [string, string, string];
    const before = await members(bench, cp1);
    await expect(unary(bench.machine(cp3), 'Version', {}, { timeoutMs: 300 })).rejects.toMatchObject({
      code: grpc.status.UNAVAILABLE,
    });
    expect((await statusOf(bench, cp1)).leader).not.toBe('0');
    await eventually(
      () => etcdState(bench!, cp3).catch(() => 'down'),
      (s) => s === 'Running',
      20_000,
    );
    const own = (await eventually(
      () => statusOf(bench!, cp3).catch(() => null),
      (s) => s !== null,
    ))!;
    expect(own.memberId).toBe(before.find((m) => m.hostname === 'cp-3')!.id);
    expect((await members(bench, cp3)).map((m) => m.id).sort()).toEqual(before.map((m) => m.id).sort());
  });
});
