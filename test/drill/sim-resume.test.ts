/**
 * A drill's simulator saved in the middle of the cluster's own work (the drill saves sim-state.json after every step
 * and destructive call) must carry on from there once resumed, as the real cluster would while the wizard was dead.
 * Two holes made the crash-resume drill "killed mid-verify" fail (every control-plane node left in Preparing):
 * - a state saved while a restore from the uploaded snapshot ran held neither the Bootstrap request nor the data, so
 *   the resumed node waited in Preparing to join a cluster that did not exist;
 * - a state saved while a rejoined member was a learner kept it a learner for good (its promotion, Talos's retry
 *   loop: siderolabs/talos internal/app/machined/pkg/system/services/etcd.go@v1.14.0-rc.1:622-666, is a timer), and
 *   the learner held etcd's one learner slot, so the next joiner waited in Preparing.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { afterAll, describe, expect, it } from 'vitest';
import { startSimulator } from '../../src/sim/index.js';
import type { SimCluster } from '../../src/sim/types.js';
import { talosProtos } from '../../src/talos/proto.js';
import { collect, concatBytes, eventually, startBench, unary, upload } from '../sim/helpers.js';

const work = mkdtempSync(join(tmpdir(), 'talos-dr-sim-resume-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

type Machine = (address: string) => grpc.Client;
type Member = { id: string; hostname: string; isLearner: boolean };

const membersThrough = async (machine: Machine, through: string): Promise<Member[]> =>
  (await unary<{ messages: { members: Member[] }[] }>(machine(through), 'EtcdMemberList', { queryLocal: true }))
    .messages[0]!.members;

async function etcdStateOf(machine: Machine, node: string): Promise<string> {
  const res = await unary<{ messages: { services: { id: string; state: string }[] }[] }>(
    machine(node),
    'ServiceList',
    {},
  ).catch(() => null);
  return res?.messages[0]?.services.find((s) => s.id === 'etcd')?.state ?? 'no answer';
}

/** A saved state started again, with Machine API clients made from the first run's client certificate. */
async function resume(
  statePath: string,
  creds: grpc.ChannelCredentials,
  speed: number,
): Promise<{ sim: SimCluster; machine: Machine; stop: () => Promise<void> }> {
  const sim = await startSimulator({
    scenario: 'ignored',
    dir: mkdtempSync(join(work, 'resumed-')),
    port: 0,
    speed,
    restoreFrom: statePath,
  });
  const Service = talosProtos().machine.MachineService as unknown as new (
    a: string,
    c: grpc.ChannelCredentials,
  ) => grpc.Client;
  const clients: grpc.Client[] = [];
  const machine: Machine = (address) => {
    const client = new Service(`${address}:${sim.port}`, creds);
    clients.push(client);
    return client;
  };
  return {
    sim,
    machine,
    stop: async () => {
      for (const c of clients) c.close();
      await sim.stop();
    },
  };
}

describe('a simulator state saved mid-way through the cluster’s own work', () => {
  it('saved while a Bootstrap restores the snapshot: every such state resumes to a running etcd', async () => {
    const bench = await startBench('lost-quorum');
    const [cp1, cp2] = bench.sim.nodes as [string, string];
    const snapshot = concatBytes(await collect(bench.machine(cp1), 'EtcdSnapshot', {}));
    await unary(bench.machine(cp2), 'Reset', {
      reboot: true,
      systemPartitionsToWipe: [{ label: 'EPHEMERAL', wipe: true }],
    });
    await eventually(
      () =>
        upload(bench.machine(cp2), snapshot).then(
          () => 'ok',
          () => 'retry',
        ),
      (r) => r === 'ok',
    );
    await unary(bench.machine(cp2), 'Bootstrap', { recoverEtcd: true });
    // saved again and again while the restore runs, as the drill saves after each step: one state per moment
    const saved: string[] = [];
    while ((await etcdStateOf(bench.machine, cp2)) !== 'Running' && saved.length < 500) {
      const path = join(work, `bootstrap-${saved.length}.json`);
      await bench.sim.saveState(path);
      saved.push(path);
    }
    await bench.close();
    // one state of each kind (what the node held: the request, the data, the upload; its etcd not running yet)
    const kinds = new Map<string, string>();
    for (const path of saved) {
      const node = (
        JSON.parse(readFileSync(path, 'utf8')) as {
          nodes: {
            state: { address: string; bootstrap: unknown };
            etcd: { running: boolean; data: unknown };
            upload?: string;
          }[];
        }
      ).nodes.find((n) => n.state.address === cp2)!;
      if (node.etcd.running) continue;
      const kind = `request ${node.state.bootstrap ? 'kept' : 'gone'}, data ${node.etcd.data ? 'there' : 'none'}, upload ${node.upload ? 'there' : 'gone'}`;
      if (!kinds.has(kind)) kinds.set(kind, path);
    }
    expect(kinds.size).toBeGreaterThan(0);
    const outcomes: string[] = [];
    for (const [kind, path] of kinds) {
      const resumed = await resume(path, bench.creds, 1000);
      try {
        const state = await eventually(
          () => etcdStateOf(resumed.machine, cp2),
          (s) => s === 'Running',
          8000,
        ).catch(() => etcdStateOf(resumed.machine, cp2));
        outcomes.push(`${kind}: ${state}`);
      } finally {
        await resumed.stop();
      }
    }
    expect(outcomes.filter((o) => !o.endsWith(': Running'))).toEqual([]);
  }, 60_000);

  it('saved while a rejoined member is a learner: the resumed learner is promoted', async () => {
    // speed 20: the 15 simulated seconds before a promotion last 750 ms, long enough to save the learner state
    const bench = await startBench('member-crashloop', { speed: 20 });
    const [cp1, , cp3] = bench.sim.nodes as [string, string, string];
    const broken = (await membersThrough(bench.machine, cp1)).find((m) => m.hostname === 'cp-3')!;
    await unary(bench.machine(cp1), 'EtcdRemoveMemberByID', { memberId: broken.id });
    await unary(bench.machine(cp3), 'Reset', {
      graceful: false,
      reboot: true,
      systemPartitionsToWipe: [{ label: 'EPHEMERAL', wipe: true }],
    });
    // cp-3 rejoined: listed under its name, its etcd running, not promoted yet
    await eventually(
      () => membersThrough(bench.machine, cp1).catch(() => []),
      (list) => list.some((m) => m.hostname === 'cp-3' && m.isLearner),
      20_000,
    );
    const statePath = join(work, 'learner-state.json');
    await bench.sim.saveState(statePath);
    await bench.close();

    const resumed = await resume(statePath, bench.creds, 20);
    try {
      const listed = (list: Member[]) => list.map((m) => `${m.hostname}${m.isLearner ? ' (learner)' : ''}`).sort();
      expect(listed(await membersThrough(resumed.machine, cp1))).toEqual(['cp-1', 'cp-2', 'cp-3 (learner)']);
      const after = await eventually(
        () => membersThrough(resumed.machine, cp1).catch(() => []),
        (list) => list.some((m) => m.hostname === 'cp-3' && !m.isLearner),
        8000,
      ).catch(() => membersThrough(resumed.machine, cp1));
      expect(listed(after)).toEqual(['cp-1', 'cp-2', 'cp-3']);
    } finally {
      await resumed.stop();
    }
  }, 60_000);
});
