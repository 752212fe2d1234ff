import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { bootId, etcdState, eventually, startBench, unary, type Bench } from './helpers.js';

const work = mkdtempSync(join(tmpdir(), 'talos-dr-procedures-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
let bench: Bench | undefined;
afterEach(async () => {
  await bench?.close();
  bench = undefined;
});

type Resource = { resource: { spec: { yamlSpec: string; protoSpec: Buffer } } };
const cosiGet = (b: Bench, node: string, namespace: string, type: string, id: string): Promise<Resource> =>
  unary<Resource>(b.cosi(node), 'Get', { namespace, type, id }, { node });

describe('converting an init node (init-node)', () => {
  it('stages the edited configuration, reboots into controlplane, keeps its etcd data', async () => {
    bench = await startBench('init-node');
    const cp1 = bench.sim.nodes[0]!;
    const before = await cosiGet(bench, cp1, 'config', 'MachineConfigs.config.talos.dev', 'v1alpha1');
    const edited = before.resource.spec.yamlSpec.replace(/^(\s+type:) init$/m, '$1 controlplane');
    expect(edited).not.toBe(before.resource.spec.yamlSpec);
    const staged = await unary<{ messages: { mode: string; modeDetails: string }[] }>(
      bench.machine(cp1),
      'ApplyConfiguration',
      {
        data: Buffer.from(edited),
        mode: 'STAGED',
      },
    );
    expect(staged.messages[0]).toMatchObject({
      mode: 'STAGED',
      modeDetails: 'Staged configuration to be applied after the next reboot',
    });
    const persistent = await cosiGet(bench, cp1, 'config', 'MachineConfigs.config.talos.dev', 'persistent');
    expect(persistent.resource.spec.yamlSpec).toBe(edited);
    // Not active until the reboot.
    expect(
      (
        await cosiGet(bench, cp1, 'config', 'MachineTypes.config.talos.dev', 'machine-type')
      ).resource.spec.yamlSpec.trim(),
    ).toBe('init');

    const revision = bench.sim.view()[0]?.etcdRevision;
    await unary(bench.machine(cp1), 'Reboot', {});
    await eventually(
      () =>
        cosiGet(bench!, cp1, 'config', 'MachineTypes.config.talos.dev', 'machine-type').then(
          (r) => r.resource.spec.yamlSpec.trim(),
          () => 'down',
        ),
      (t) => t === 'controlplane',
    );
    expect(bench.sim.view()[0]?.etcdRevision).toBe(revision);
    await eventually(
      () => etcdState(bench!, cp1),
      (s) => s === 'Running',
    );
    // Restarted without quorum, its etcd never serves clients again: status waits until the deadline.
    await expect(unary(bench.machine(cp1), 'EtcdStatus', {}, { timeoutMs: 300 })).rejects.toMatchObject({
      code: grpc.status.DEADLINE_EXCEEDED,
    });
    expect(bench.sim.destructiveCalls()).toMatchObject({ apply: { [cp1]: 1 }, reboot: { [cp1]: 1 } });
  });
});

describe('replacing one member while quorum holds (quorum-intact)', () => {
  it("removes the dead member by id on a healthy node; unknown ids get etcd's text", async () => {
    bench = await startBench('quorum-intact');
    const [cp1, cp2] = bench.sim.nodes as [string, string];
    const list = await unary<{ messages: { members: { id: string; hostname: string }[] }[] }>(
      bench.machine(cp1),
      'EtcdMemberList',
      {
        queryLocal: true,
      },
    );
    const dead = list.messages[0]!.members.find((m) => m.hostname === 'cp-3')!;
    await unary(bench.machine(cp1), 'EtcdRemoveMemberByID', { memberId: dead.id });
    const after = await unary<{ messages: { members: { hostname: string }[] }[] }>(
      bench.machine(cp2),
      'EtcdMemberList',
      { queryLocal: true },
    );
    expect(after.messages[0]!.members.map((m) => m.hostname).sort()).toEqual(['cp-1', 'cp-2']);
    // Talos keeps etcd's NotFound and its own wrapping (internal/pkg/etcd/etcd.go: "failed to remove member %d")
    await expect(unary(bench.machine(cp1), 'EtcdRemoveMemberByID', { memberId: dead.id })).rejects.toMatchObject({
      code: grpc.status.NOT_FOUND,
      details: `failed to remove member ${dead.id}: etcdserver: member not found`,
    });
    // Still two of two: quorum holds, nothing was wiped.
    expect(
      bench.sim
        .view()
        .slice(0, 2)
        .map((n) => n.etcdRevision),
    ).toEqual([bench.sim.dataReport().lastWriteRevision, bench.sim.dataReport().lastWriteRevision]);
  });
});

describe('Talos 1.14 with a dedicated ETCD partition', () => {
  const scenario = (): string => {
    const path = join(work, 'talos114.yaml');
    writeFileSync(
      path,
      [
        'name: talos114',
        'description: One node on Talos 1.14 with a dedicated ETCD partition.',
        'expectedOutcome: nothing-to-do',
        'rightAnswer: Nothing.',
        'talosVersion: "1.14"',
        'etcdPartition: true',
        'nodes:',
        '  - { hostname: cp-1, type: controlplane, etcd: healthy }',
        '',
      ].join('\n'),
    );
    return path;
  };

  it('shows the partition in VolumeStatuses; wiping EPHEMERAL keeps etcd, wiping ETCD clears it', async () => {
    bench = await startBench(scenario());
    const cp1 = bench.sim.nodes[0]!;
    const vs = await cosiGet(bench, cp1, 'runtime', 'VolumeStatuses.block.talos.dev', 'ETCD');
    expect(vs.resource.spec.yamlSpec).toContain('type: partition');
    // PARTITION is enum 0: field 16 is absent on the wire.
    expect(vs.resource.spec.protoSpec.includes(Buffer.from([0x80, 0x01]))).toBe(false);
    const mc = await cosiGet(bench, cp1, 'config', 'MachineConfigs.config.talos.dev', 'v1alpha1');
    expect(mc.resource.spec.yamlSpec).toContain('kind: VolumeConfig\nname: ETCD');

    const firstBoot = await bootId(bench, cp1);
    await unary(bench.machine(cp1), 'Reset', {
      reboot: true,
      systemPartitionsToWipe: [{ label: 'EPHEMERAL', wipe: true }],
    });
    // Running as before the reset proves nothing until the node has rebooted: right after Reset returns it still
    // answers with its old state, and a second Reset sent then met the node going down (ECONNREFUSED), 7 times in 30
    await eventually(
      () =>
        Promise.all([bootId(bench!, cp1), etcdState(bench!, cp1)]).then(
          ([boot, etcd]) => (boot === firstBoot ? 'not rebooted yet' : etcd),
          () => 'down',
        ),
      (s) => s === 'Running',
    );
    expect(bench.sim.view()[0]?.etcdRevision).toBe(bench.sim.dataReport().lastWriteRevision);

    await unary(bench.machine(cp1), 'Reset', {
      reboot: true,
      systemPartitionsToWipe: [
        { label: 'EPHEMERAL', wipe: true },
        { label: 'ETCD', wipe: true },
      ],
    });
    await eventually(
      () => etcdState(bench!, cp1).catch(() => 'down'),
      (s) => s === 'Preparing',
    );
    expect(bench.sim.view()[0]?.etcdRevision).toBeNull();
  });
});

describe('Events', () => {
  it('sends the hello message first, then replays the etcd service events with tail -1', async () => {
    bench = await startBench('lost-quorum');
    const cp2 = bench.sim.nodes[1]!;
    await unary(bench.machine(cp2), 'Reset', {
      reboot: true,
      systemPartitionsToWipe: [{ label: 'EPHEMERAL', wipe: true }],
    });
    await eventually(
      () => etcdState(bench!, cp2).catch(() => 'down'),
      (s) => s === 'Preparing',
    );
    const events = await new Promise<{ data: { type_url: string; value: Buffer } | null }[]>((resolve, reject) => {
      const out: { data: { type_url: string; value: Buffer } | null }[] = [];
      const stream = (
        bench!.machine(cp2) as unknown as { Events(r: unknown): grpc.ClientReadableStream<(typeof out)[number]> }
      ).Events({
        tailEvents: -1,
      });
      stream.on('data', (m) => {
        out.push(m);
        if (out.some((e) => e.data?.value?.includes(Buffer.from('Running pre state')))) {
          stream.cancel();
          resolve(out);
        }
      });
      stream.on('error', (e: grpc.ServiceError) => (e.code === grpc.status.CANCELLED ? resolve(out) : reject(e)));
    });
    // google.protobuf.Any keeps its snake_case field name with proto-loader.
    expect(events[0]?.data?.type_url).toBe('');
    // service state changes, and the machine status machined publishes beside them (machine-status.ts)
    const kinds = new Set(events.slice(1).map((e) => e.data?.type_url));
    kinds.delete('talos/runtime/machine.MachineStatusEvent');
    expect([...kinds]).toEqual(['talos/runtime/machine.ServiceStateEvent']);
  });
});

/** The fields of a protobuf message: varints as numbers, length-delimited as buffers (what these tests read). */
function fields(buf: Buffer): Map<number, (number | Buffer)[]> {
  const out = new Map<number, (number | Buffer)[]>();
  let at = 0;
  const varint = (): number => {
    let value = 0;
    let shift = 0;
    for (;;) {
      const b = buf[at++]!;
      value += (b & 0x7f) * 2 ** shift;
      shift += 7;
      if (b < 0x80) return value;
    }
  };
  while (at < buf.length) {
    const key = varint();
    let value: number | Buffer;
    if ((key & 7) === 2) {
      const length = varint();
      value = buf.subarray(at, at + length);
      at += length;
    } else value = varint();
    out.set(key >> 3, [...(out.get(key >> 3) ?? []), value]);
  }
  return out;
}

describe('Events: service health', () => {
  it('a Running event carries the health the service had then; other states carry none (unknown)', async () => {
    bench = await startBench('lost-quorum');
    const worker = bench.sim.allNodes.find((n) => !bench!.sim.nodes.includes(n))!;
    await unary(bench.machine(worker), 'ServiceRestart', { id: 'kubelet' });
    await eventually(
      async () =>
        (
          await unary<{ messages: { services: { id: string; health: { healthy: boolean } }[] }[] }>(
            bench!.machine(worker),
            'ServiceList',
            {},
          )
        ).messages[0]?.services.find((s) => s.id === 'kubelet')?.health.healthy,
      (h) => h === true,
    );
    const events = await new Promise<{ data: { type_url: string; value: Buffer } | null }[]>((resolve, reject) => {
      const out: { data: { type_url: string; value: Buffer } | null }[] = [];
      const stream = (
        bench!.machine(worker) as unknown as { Events(r: unknown): grpc.ClientReadableStream<(typeof out)[number]> }
      ).Events({ tailEvents: -1 });
      stream.on('data', (m) => out.push(m));
      setTimeout(() => {
        resolve(out);
        stream.cancel();
      }, 1000);
      stream.on('error', (e: grpc.ServiceError) => (e.code === grpc.status.CANCELLED ? resolve(out) : reject(e)));
    });
    const seen = events
      .filter((e) => e.data?.type_url === 'talos/runtime/machine.ServiceStateEvent')
      .map((e) => {
        const f = fields(e.data!.value);
        const health = fields((f.get(4)?.[0] as Buffer | undefined) ?? Buffer.alloc(0));
        const flag = (n: number): boolean => health.get(n)?.[0] === 1;
        return { message: String(f.get(3)?.[0] ?? ''), unknown: flag(1), healthy: flag(2) };
      });
    const healthy = seen.filter((e) => e.message === 'Health check successful');
    expect(healthy.length).toBeGreaterThan(0);
    for (const e of healthy) expect(e).toMatchObject({ unknown: false, healthy: true });
    const starting = seen.filter((e) => e.message === 'Starting service');
    expect(starting.length).toBeGreaterThan(0);
    for (const e of starting) expect(e).toMatchObject({ unknown: true, healthy: false });
  });
});

describe('a full reset', () => {
  it('wipes the whole disk: the machine comes back blank, in maintenance mode with its own certificate', async () => {
    bench = await startBench('lost-quorum');
    const cp3 = bench.sim.nodes[2]!;
    expect(bench.sim.maintenanceFingerprints[cp3]).toBeUndefined();
    await unary(bench.machine(cp3), 'Reset', { reboot: true });
    await eventually(
      () => bench!.sim.view()[2]?.machineType,
      (t) => t === 'maintenance',
    );
    await eventually(
      () =>
        unary(bench!.maintenance(cp3), 'Version', {}).then(
          () => 'answered',
          (e: grpc.ServiceError) => e.details,
        ),
      (d) => d === 'API is not implemented in maintenance mode',
    );
    expect(bench.sim.maintenanceFingerprints[cp3]).toMatch(/^[A-Za-z0-9+/]{43}=$/);
    expect(bench.sim.view()[2]?.etcdRevision).toBeNull();
  });
});

describe('Bootstrap right after a boot', () => {
  it("is refused while CRI is not up yet, with Talos's first check", async () => {
    const path = join(work, 'slowboot.yaml');
    writeFileSync(
      path,
      [
        'name: slowboot',
        'description: A node whose CRI takes a while after a reboot.',
        'expectedOutcome: recovered',
        'rightAnswer: Wait.',
        'timing: { rebootSec: 0, bootSec: 30 }',
        'nodes:',
        '  - { hostname: cp-1, type: controlplane, etcd: wiped }',
        '',
      ].join('\n'),
    );
    bench = await startBench(path, { speed: 1 });
    const cp1 = bench.sim.nodes[0]!;
    await unary(bench.machine(cp1), 'Reboot', {});
    await eventually(
      () => bench!.sim.view()[0]?.reachable,
      (r) => r === true,
    );
    await expect(unary(bench.machine(cp1), 'Bootstrap', {})).rejects.toMatchObject({
      code: grpc.status.FAILED_PRECONDITION,
      details: 'bootstrap is not available yet',
    });
  });
});
