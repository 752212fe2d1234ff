import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { startSimulator } from '../../src/sim/index.js';
import { normalizeKeyPem } from '../../src/talos/pki.js';
import { talosProtos } from '../../src/talos/proto.js';
import type { SimCluster } from '../../src/sim/types.js';
import { collect, concatBytes, eventually, startBench, unary, upload } from './helpers.js';

const work = mkdtempSync(join(tmpdir(), 'talos-dr-state-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function clientFor(sim: SimCluster, address: string): grpc.Client {
  const ctx = (
    parseYaml(readFileSync(sim.talosconfigPath, 'utf8')) as {
      contexts: Record<string, { ca: string; crt: string; key: string }>;
    }
  ).contexts['talos-dr-sim']!;
  const b = (s: string): Buffer => Buffer.from(s, 'base64');
  const creds = grpc.credentials.createSsl(b(ctx.ca), Buffer.from(normalizeKeyPem(b(ctx.key).toString())), b(ctx.crt));
  return new (
    talosProtos().machine.MachineService as unknown as new (a: string, c: grpc.ChannelCredentials) => grpc.Client
  )(`${address}:${sim.port}`, creds);
}

async function etcdStateOf(client: grpc.Client): Promise<string> {
  const res = await unary<{ messages: { services: { id: string; state: string }[] }[] }>(
    client,
    'ServiceList',
    {},
  ).catch((e: Error) => e.message);
  if (typeof res === 'string') return `unreachable (${res})`;
  return res.messages[0]?.services.find((s) => s.id === 'etcd')?.state ?? 'no etcd service';
}

describe('sim-state.json', () => {
  it("continues a kubelet restart cut by the save: the restored node's kubelet comes up Running and healthy", async () => {
    // at speed 1 the restart's Stop takes 200 ms and its Start 500 ms more, so the state saved just after the
    // ServiceRestart answered holds the kubelet between the two (Waiting), as a drill killed between two restarts left it
    const bench = await startBench('lost-quorum', { speed: 1 });
    const [cp1] = bench.sim.nodes as [string];
    await unary(bench.machine(cp1), 'ServiceRestart', { id: 'kubelet' });
    const statePath = join(work, 'sim-state-kubelet.json');
    await bench.sim.saveState(statePath);
    await bench.close();
    const saved = JSON.parse(readFileSync(statePath, 'utf8')) as {
      nodes: { state: { address: string; services: Record<string, { state: string }> } }[];
    };
    expect(saved.nodes.find((n) => n.state.address === cp1)?.state.services.kubelet?.state).toBe('Waiting');

    const sim = await startSimulator({
      scenario: 'ignored',
      dir: join(work, 'resumed-kubelet'),
      port: 0,
      speed: 1000,
      restoreFrom: statePath,
    });
    const client = clientFor(sim, cp1);
    try {
      const kubelet = () =>
        unary<{ messages: { services: { id: string; state: string; health: { healthy: boolean } }[] }[] }>(
          client,
          'ServiceList',
          {},
        ).then((r) => r.messages[0]?.services.find((s) => s.id === 'kubelet'));
      // the node's machined carries on with the Start the drill's process did not outlive (talosctl services)
      const up = await eventually(kubelet, (k) => k?.state === 'Running' && k.health.healthy, 3000);
      expect(up).toMatchObject({ state: 'Running', health: { healthy: true } });
    } finally {
      client.close();
      await sim.stop();
    }
  });

  it('continues a boot cut by the save: the node mounts EPHEMERAL, starts CRI and etcd, which waits for bootstrap', async () => {
    const bench = await startBench('lost-quorum');
    const [, cp2] = bench.sim.nodes as [string, string];
    await unary(bench.machine(cp2), 'Reset', {
      reboot: true,
      systemPartitionsToWipe: [{ label: 'EPHEMERAL', wipe: true }],
    });
    await eventually(
      () => etcdStateOf(bench.machine(cp2)),
      (s) => s === 'Preparing',
    );
    const statePath = join(work, 'sim-state-boot.json');
    await bench.sim.saveState(statePath);
    await bench.close();
    // cp-2 as a drill's save caught it inside its boot, before the boot went on (seen in a crash-resume run under
    // load: the node running, its base services only, CRI waiting, EPHEMERAL not mounted, no etcd service yet)
    const saved = JSON.parse(readFileSync(statePath, 'utf8')) as {
      nodes: { state: { address: string; ephemeralMounted: boolean; services: Record<string, { state: string }> } }[];
    };
    const node = saved.nodes.find((n) => n.state.address === cp2)!.state;
    delete node.services.etcd;
    node.services.cri!.state = 'Waiting';
    node.ephemeralMounted = false;
    writeFileSync(statePath, JSON.stringify(saved));

    const sim = await startSimulator({
      scenario: 'ignored',
      dir: join(work, 'resumed-boot'),
      port: 0,
      speed: 1000,
      restoreFrom: statePath,
    });
    const client = clientFor(sim, cp2);
    try {
      const services = () =>
        unary<{ messages: { services: { id: string; state: string }[] }[] }>(client, 'ServiceList', {}).then((r) =>
          Object.fromEntries((r.messages[0]?.services ?? []).map((s) => [s.id, s.state])),
        );
      // its etcd waits for a bootstrap, as after any wipe; CRI is up (Bootstrap needs it)
      const up = await eventually(services, (s) => s.etcd === 'Preparing' && s.cri === 'Running', 3000);
      expect(up).toMatchObject({ etcd: 'Preparing', cri: 'Running' });
    } finally {
      client.close();
      await sim.stop();
    }
  });

  it('restores the cluster exactly as it was: node states, data, counters, a reset in flight', async () => {
    const bench = await startBench('lost-quorum');
    const [cp1, cp2, cp3] = bench.sim.nodes as [string, string, string];
    const snapshot = concatBytes(await collect(bench.machine(cp1), 'EtcdSnapshot', {}));
    await unary(bench.machine(cp2), 'Reset', {
      reboot: true,
      systemPartitionsToWipe: [{ label: 'EPHEMERAL', wipe: true }],
    });
    await eventually(
      () => etcdStateOf(bench.machine(cp2)),
      (s) => s === 'Preparing',
    );
    await unary(bench.machine(cp3), 'Reset', {
      reboot: true,
      systemPartitionsToWipe: [{ label: 'EPHEMERAL', wipe: true }],
    });
    const statePath = join(work, 'sim-state.json');
    await bench.sim.saveState(statePath);
    const callsBefore = bench.sim.destructiveCalls();
    const reportBefore = bench.sim.dataReport();
    await bench.close();

    const dir = join(work, 'resumed');
    const sim = await startSimulator({ scenario: 'ignored', dir, port: 0, speed: 1000, restoreFrom: statePath });
    const clients = new Map(sim.nodes.map((a) => [a, clientFor(sim, a)]));
    try {
      expect(sim.nodes).toEqual([cp1, cp2, cp3]);
      expect(sim.destructiveCalls()).toEqual(callsBefore);
      expect(sim.dataReport()).toEqual(reportBefore);
      expect(await etcdStateOf(clients.get(cp2)!)).toBe('Preparing');
      // The survivor still serves its data without a leader.
      const status = await unary<{ messages: { memberStatus: { errors: string[] } }[] }>(
        clients.get(cp1)!,
        'EtcdStatus',
        {},
      );
      expect(status.messages[0]?.memberStatus.errors).toEqual(['etcdserver: no leader']);
      expect(sim.view()[0]?.etcdRevision).toBe(reportBefore.lastWriteRevision);
      // The reset of cp-3 that was in flight completes: its etcd comes back empty and waits.
      await eventually(
        () => etcdStateOf(clients.get(cp3)!),
        (s) => s === 'Preparing',
      );
      expect(sim.view()[2]?.etcdRevision).toBeNull();

      // And the recovery continues from there.
      await unary(clients.get(cp1)!, 'Reset', {
        reboot: true,
        systemPartitionsToWipe: [{ label: 'EPHEMERAL', wipe: true }],
      });
      await eventually(
        () =>
          upload(clients.get(cp1)!, snapshot).then(
            () => 'ok',
            () => 'retry',
          ),
        (r) => r === 'ok',
      );
      await unary(clients.get(cp1)!, 'Bootstrap', { recoverEtcd: true });
      for (const client of clients.values()) {
        await eventually(
          () => etcdStateOf(client),
          (s) => s === 'Running',
        );
      }
      expect(sim.dataReport()).toMatchObject({ keysMatchSnapshot: true, lostRevisions: 0 });
      expect(sim.destructiveCalls().reset[cp1]).toBe(1);
    } finally {
      for (const c of clients.values()) c.close();
      await sim.stop();
    }
  });

  it('keeps an uploaded snapshot across a save and restore, so the bootstrap can follow', async () => {
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
    const statePath = join(work, 'uploaded-state.json');
    await bench.sim.saveState(statePath);
    await bench.close();

    const sim = await startSimulator({
      scenario: 'ignored',
      dir: join(work, 'uploaded'),
      port: 0,
      speed: 1000,
      restoreFrom: statePath,
    });
    const client = clientFor(sim, cp2);
    try {
      await unary(client, 'Bootstrap', { recoverEtcd: true });
      await eventually(
        () => etcdStateOf(client),
        (s) => s === 'Running',
      );
      expect(sim.dataReport()).toMatchObject({ keysMatchSnapshot: true, lostRevisions: 0 });
    } finally {
      client.close();
      await sim.stop();
    }
  });

  it('refuses a damaged state file with one sentence', async () => {
    const path = join(work, 'broken.json');
    writeFileSync(path, '{"format": "nope"');
    await expect(startSimulator({ scenario: 'x', dir: join(work, 'b'), port: 0, restoreFrom: path })).rejects.toThrow(
      /^Cannot read the saved simulator state .*broken\.json; it is missing or damaged, so start the drill afresh\.$/,
    );
  });
});

describe('sim-state.json keeps the issue-15 state', () => {
  type Status = { dbSize: string; dbSizeInUse: string; errors: string[] };
  const statusOf = async (client: grpc.Client): Promise<Status> =>
    (await unary<{ messages: { memberStatus: Status }[] }>(client, 'EtcdStatus', {})).messages[0]!.memberStatus;

  it('a NOSPACE cluster resumes with its alarms and each member’s size; a defragmented member stays small', async () => {
    const bench = await startBench('nospace');
    const [cp1, cp2] = bench.sim.nodes as [string, string];
    await unary(bench.machine(cp1), 'EtcdDefragment', {}, { timeoutMs: 10_000 });
    const before = [await statusOf(bench.machine(cp1)), await statusOf(bench.machine(cp2))];
    const statePath = join(work, 'nospace-state.json');
    await bench.sim.saveState(statePath);
    await bench.close();
    const dir = mkdtempSync(join(work, 'nospace-'));
    const sim = await startSimulator({ scenario: 'ignored', dir, port: 0, speed: 1000, restoreFrom: statePath });
    try {
      const after = [await statusOf(clientFor(sim, cp1)), await statusOf(clientFor(sim, cp2))];
      expect(after.map((s) => [s.dbSize, s.dbSizeInUse, s.errors.length])).toEqual(
        before.map((s) => [s.dbSize, s.dbSizeInUse, 3]),
      );
      expect(await sim.etcdWrite()).toEqual({ ok: false, error: 'etcdserver: mvcc: database space exceeded' });
      expect(sim.destructiveCalls().defragment[cp1]).toBe(1);
    } finally {
      await sim.stop();
    }
  });

  it('a node powered off by a down fault still boots by itself after a resume', async () => {
    const bench = await startBench('member-unreachable', { speed: 100 });
    const cp3 = bench.sim.nodes[2]!;
    expect(await etcdStateOf(bench.machine(cp3))).toMatch(/^unreachable/);
    const statePath = join(work, 'unreachable-state.json');
    await bench.sim.saveState(statePath);
    await bench.close();
    const dir = mkdtempSync(join(work, 'unreachable-'));
    const sim = await startSimulator({ scenario: 'ignored', dir, port: 0, speed: 100, restoreFrom: statePath });
    try {
      await eventually(
        () => etcdStateOf(clientFor(sim, cp3)),
        (s) => s === 'Running',
        20_000,
      );
    } finally {
      await sim.stop();
    }
  });
});
