/**
 * What a Talos 1.14 node does that a user notices (talos-behaviour-facts §2, §4, §5): the etcd runner a Bootstrap
 * replaces, the crash loop, a snapshot from an etcd that does not serve, the texts of a restore that cannot start.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { collect, eventually, startBench, tcpConnect, unary, type Bench } from './helpers.js';

let bench: Bench | undefined;
afterEach(async () => {
  await bench?.close();
  bench = undefined;
});

interface ServiceList {
  messages: {
    services: {
      id: string;
      state: string;
      events: { events: { msg: string; state: string }[] };
      health: { healthy: boolean; lastMessage: string };
    }[];
  }[];
}

async function etcdService(b: Bench, address: string) {
  const res = await unary<ServiceList>(b.machine(address), 'ServiceList', {});
  const etcd = res.messages[0]?.services.find((s) => s.id === 'etcd');
  if (!etcd) throw new Error('no etcd service');
  return etcd;
}

describe('a Talos 1.14 node', () => {
  it('loads a new etcd runner on Bootstrap: its history starts over and "Bootstrap requested" is not in it', async () => {
    bench = await startBench('single-node');
    const solo = bench.sim.nodes[0]!;
    const before = await etcdService(bench, solo);
    expect(before.events.events[1]?.msg).toBe(
      'Waiting for volume "/var/lib" to be mounted, volume "ETCD" to be mounted, service "cri" to be "up", time sync, network, etcd spec',
    );
    await eventually(
      () =>
        unary(bench!.machine(solo), 'Bootstrap', {}).then(
          () => 'ok',
          (e: { details?: string }) => e.details,
        ),
      (r) => r === 'ok',
    );
    const after = await eventually(
      () => etcdService(bench!, solo),
      (s) => s.state === 'Running',
    );
    const messages = after.events.events.map((e) => e.msg);
    expect(messages[0]).toBe('Starting service');
    expect(messages).not.toContain('Bootstrap requested');
  });

  it('flaps a crash-looping etcd: the task starts and fails again, health "service not running"', async () => {
    bench = await startBench('etcd-down-raw-copy');
    const cp1 = bench.sim.nodes[0]!;
    const etcd = await eventually(
      () => etcdService(bench!, cp1),
      (s) => s.events.events.filter((e) => e.msg.startsWith('Error running Containerd(etcd)')).length >= 6,
    );
    expect(etcd.state).toBe('Waiting');
    expect(etcd.health).toMatchObject({ healthy: false, lastMessage: 'service not running' });
    const tail = etcd.events.events.slice(-4).map((e) => `${e.state} ${e.msg.split(' (PID')[0]}`);
    expect(tail).toEqual([
      'Running Started task etcd',
      'Waiting Error running Containerd(etcd), going to restart forever: task "etcd" failed: exit code 2',
      'Running Started task etcd',
      'Waiting Error running Containerd(etcd), going to restart forever: task "etcd" failed: exit code 2',
    ]);
  });

  it('keeps a snapshot of an etcd that does not serve open with no bytes until the caller gives up', async () => {
    bench = await startBench('single-node');
    const solo = bench.sim.nodes[0]!;
    const received: unknown[] = [];
    const outcome = await collect<{ bytes?: Buffer }>(
      bench.machine(solo),
      'EtcdSnapshot',
      {},
      { timeoutMs: 1500 },
    ).then(
      (messages) => {
        received.push(...messages);
        return 'ended';
      },
      (e: { code?: number }) => e.code,
    );
    expect(outcome).toBe(4); // DEADLINE_EXCEEDED: the caller's own deadline, not the node's
    expect(received).toEqual([]);
  });

  it('fails the pre stage with "error verifying snapshot" when no snapshot was uploaded', async () => {
    bench = await startBench('single-node');
    const solo = bench.sim.nodes[0]!;
    await eventually(
      () =>
        unary(bench!.machine(solo), 'Bootstrap', { recoverEtcd: true }).then(
          () => 'ok',
          (e: { details?: string }) => e.details,
        ),
      (r) => r === 'ok',
    );
    const etcd = await eventually(
      () => etcdService(bench!, solo),
      (s) => s.state === 'Failed',
    );
    expect(etcd.events.events.at(-1)?.msg).toBe(
      'Failed to run pre stage: error verifying snapshot: stat /var/lib/etcd.snapshot: no such file or directory',
    );
  });

  it('answers with its old state right after Reset returns, then refuses TCP connections (no gRPC status)', async () => {
    bench = await startBench('quorum-intact', { speed: 1 });
    const cp1 = bench.sim.nodes[0]!;
    await unary(bench.machine(cp1), 'Reset', {
      graceful: false,
      reboot: true,
      systemPartitionsToWipe: [{ label: 'EPHEMERAL', wipe: true }],
    });
    // the reset sequence runs after the reply: the node still shows the etcd it had
    expect((await etcdService(bench, cp1)).state).toBe('Running');
    const tcp = (): Promise<string> => tcpConnect(cp1, bench!.sim.port);
    await eventually(tcp, (r) => r === 'ECONNREFUSED', 20_000);
  });
});
