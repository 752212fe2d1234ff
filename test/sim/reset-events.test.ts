/**
 * What a simulated node publishes on its events stream while it runs a Reset, as machined does: the reset sequence's
 * START, each phase with its task up to stopAllServices' START, and the machine status RESETTING; then the stream
 * ends as the node goes (machine-events.ts cites upstream). `talosctl reset --wait` waits for that TaskEvent
 * (test/peers/reset-wait.test.ts runs it); these checks need no talosctl.
 */
import type * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { lengthField, varintField } from '../../src/talos/proto-wire.js';
import { bootId, eventually, startBench, unary, type Bench } from './helpers.js';

const healthy = new URL('../peers/healthy-3cp.yaml', import.meta.url).pathname;

let bench: Bench | undefined;
afterEach(async () => {
  await bench?.close();
  bench = undefined;
});

interface Message {
  data: { type_url: string; value: Buffer } | null;
  actorId: string;
}

/** An Events stream: what it has sent so far, and how it ended ('ended': by itself, as the node went away). */
function follow(
  b: Bench,
  node: string,
  tailEvents: number,
): { got: Message[]; ended: Promise<string>; cancel(): void } {
  const got: Message[] = [];
  const stream = (b.machine(node) as unknown as { Events(r: unknown): grpc.ClientReadableStream<Message> }).Events({
    tailEvents,
  });
  stream.on('data', (m: Message) => got.push(m));
  const ended = new Promise<string>((resolve) => {
    stream.on('end', () => resolve('ended'));
    stream.on('error', (e: grpc.ServiceError) => resolve(`error ${e.code}`));
  });
  return { got, ended, cancel: () => stream.cancel() };
}

/** The sequences' events in one line each: "<kind> <name> <START|STOP>" (api/machine/machine.proto@v1.13.9:196-223). */
function sequenceLines(got: Message[]): string[] {
  const lines: string[] = [];
  for (const m of got) {
    const kind = m.data?.type_url.replace('talos/runtime/machine.', '') ?? '';
    if (!['SequenceEvent', 'PhaseEvent', 'TaskEvent'].includes(kind)) continue;
    const name = lengthField(m.data!.value, 1)?.toString() ?? '';
    const action = Number(varintField(m.data!.value, 2) ?? 0n);
    const actions = kind === 'SequenceEvent' ? ['NOOP', 'START', 'STOP'] : ['START', 'STOP'];
    lines.push(`${kind} ${name} ${actions[action]}`);
  }
  return lines;
}

const stages = (got: Message[]): number[] =>
  got
    .filter((m) => m.data?.type_url === 'talos/runtime/machine.MachineStatusEvent')
    .map((m) => Number(varintField(m.data!.value, 1) ?? 0n));

const phase = (name: string, task: string): string[] => [
  `PhaseEvent ${name} START`,
  `TaskEvent ${task} START`,
  `TaskEvent ${task} STOP`,
  `PhaseEvent ${name} STOP`,
];

describe('a Reset on the events stream', () => {
  it('the wizard’s reset: the sequence up to stopAllServices, RESETTING, then the stream ends', async () => {
    bench = await startBench(healthy, { speed: 50 });
    const cp2 = bench.sim.nodes[1]!;
    const before = await bootId(bench, cp2);
    const stream = follow(bench, cp2, 0);
    await eventually(
      () => stream.got.length,
      (n) => n > 0,
    ); // the hello: subscribed
    const answer = await unary<{ messages: { actorId: string }[] }>(bench.machine(cp2), 'Reset', {
      graceful: false,
      reboot: true,
      systemPartitionsToWipe: [{ label: 'EPHEMERAL', wipe: true }],
    });
    expect(await stream.ended).toBe('ended');
    // each of the sequence's events carries the actor id Reset answered with (talosctl shows those as its progress)
    const actorId = answer.messages[0]?.actorId;
    expect(actorId).toMatch(/^[0-9a-f-]{36}$/);
    const actors = stream.got.filter((m) => sequenceLines([m]).length > 0).map((m) => m.actorId);
    expect(new Set(actors)).toEqual(new Set([actorId]));
    // v1alpha1_sequencer.go@v1.13.9:284-339 for graceful=false, reboot, EPHEMERAL named (so kexec)
    expect(sequenceLines(stream.got)).toEqual([
      'SequenceEvent reset START',
      ...phase('cleanup', 'stopAllPods'),
      ...phase('dbus', 'stopDBus'),
      ...phase('preReset', 'sendResetSignal'),
      ...phase('stopServices', 'stopServicesForUpgrade'),
      ...phase('umount', 'unmountPodMounts'),
      ...phase('unmountBind', 'unmountSystemDiskBindMounts'),
      ...phase('unmountSystem', 'unmountEphemeralPartition'),
      ...phase('volumeFinalize', 'teardownLifecycle'),
      ...phase('kexec', 'kexecPrepare'),
      'PhaseEvent stopEverything START',
      'TaskEvent stopAllServices START',
    ]);
    expect(stages(stream.got)).toContain(7); // RESETTING

    // the node boots again with its configuration: a new boot, whose events hold nothing of the reset
    await eventually(
      () => bootId(bench!, cp2).catch(() => before),
      (id) => id !== before,
      20_000,
    );
    const again = follow(bench, cp2, -1);
    await eventually(
      () => stages(again.got),
      (s) => s.includes(4), // RUNNING
      20_000,
    );
    again.cancel();
    expect(sequenceLines(again.got)).toEqual([]);
  });

  it('a whole-disk reset that powers off names no partition: no kexec, and its stream ends at stopAllServices too', async () => {
    bench = await startBench(healthy, { speed: 50 });
    const cp3 = bench.sim.nodes[2]!;
    const stream = follow(bench, cp3, 0);
    await eventually(
      () => stream.got.length,
      (n) => n > 0,
    );
    await unary(bench.machine(cp3), 'Reset', { graceful: false, reboot: false });
    expect(await stream.ended).toBe('ended');
    const lines = sequenceLines(stream.got);
    expect(lines.at(-1)).toBe('TaskEvent stopAllServices START');
    expect(lines.some((l) => l.includes('kexec'))).toBe(false);
  });

  it('a node only out of reach while the reset starts has not stopped its services: no stopAllServices yet', async () => {
    // slow enough that the node is still up (the sequence's first moments, node.ts) while it is out of reach
    bench = await startBench(healthy, { speed: 5 });
    const cp2 = bench.sim.nodes[1]!;
    const stream = follow(bench, cp2, 0);
    await eventually(
      () => stream.got.length,
      (n) => n > 0,
    );
    await unary(bench.machine(cp2), 'Reset', {
      graceful: false,
      reboot: true,
      systemPartitionsToWipe: [{ label: 'EPHEMERAL', wipe: true }],
    });
    const node = (
      bench.sim as unknown as { nodesList: { address: string; unreachableUntil: number }[] }
    ).nodesList.find((n) => n.address === cp2)!;
    node.unreachableUntil = Date.now() + 100; // a network fault (faults.ts) of 100 ms
    expect(await stream.ended).toBe('ended');
    const lines = sequenceLines(stream.got);
    expect(lines.at(-1)).toBe('PhaseEvent preReset STOP');
  });

  it('a graceful reset on a node without quorum: the sequence fails at leave, a FATAL NOOP ends it, the node runs on', async () => {
    // speed 1000: the drain's one-minute wait for a cordon that never comes (machine-events.ts) takes 60 ms
    bench = await startBench('lost-quorum', { speed: 1000 });
    const cp1 = bench.sim.nodes[0]!;
    const before = await bootId(bench, cp1);
    const stream = follow(bench, cp1, 0);
    await eventually(
      () => stream.got.length,
      (n) => n > 0,
    );
    const answer = await unary<{ messages: { actorId: string }[] }>(bench.machine(cp1), 'Reset', { graceful: true });
    const actorId = answer.messages[0]?.actorId;
    await eventually(
      () => sequenceLines(stream.got),
      (lines) => lines.includes('SequenceEvent reset NOOP'),
      20_000,
    );
    stream.cancel();
    // v1alpha1_sequencer.go@v1.13.9:292-311 (graceful, control plane: drain, cleanup, dbus, leave) up to the failed
    // leave; v1alpha1_controller.go@v1.13.9:142-157,259-268: the sequence's STOP, then the NOOP with the error
    expect(sequenceLines(stream.got)).toEqual([
      'SequenceEvent reset START',
      ...phase('drain', 'cordonAndDrainNode'),
      ...phase('cleanup', 'removeAllPods'),
      ...phase('dbus', 'stopDBus'),
      ...phase('leave', 'leaveEtcd'),
      'SequenceEvent reset STOP',
      'SequenceEvent reset NOOP',
    ]);
    const sequenceEvents = stream.got.filter((m) => sequenceLines([m]).length > 0);
    expect(new Set(sequenceEvents.map((m) => m.actorId))).toEqual(new Set([actorId]));
    // Error { code FATAL (0, so absent); message }: common.proto@v1.13.9
    const error = lengthField(sequenceEvents.at(-1)!.data!.value, 3)!;
    expect(varintField(error, 1)).toBeUndefined();
    expect(lengthField(error, 2)?.toString()).toMatch(
      /^sequence failed: error running phase 4 in reset sequence: task 1\/1: failed, failed to leave cluster: 1 error\(s\) occurred:\n\tfailed to remove member \d+: etcdserver: no leader$/,
    );
    // the node did not reset: same boot, still answering
    expect(await bootId(bench, cp1)).toBe(before);

    // nothing is left holding the node: a reset that does not leave etcd runs to stopAllServices
    const next = follow(bench, cp1, 0);
    await eventually(
      () => next.got.length,
      (n) => n > 0,
    );
    await unary(bench.machine(cp1), 'Reset', {
      graceful: false,
      reboot: true,
      systemPartitionsToWipe: [{ label: 'EPHEMERAL', wipe: true }],
    });
    expect(await next.ended).toBe('ended');
    expect(sequenceLines(next.got).at(-1)).toBe('TaskEvent stopAllServices START');
  });
});
