/**
 * A Reset's events are in the node's history (machined's events ring) whether or not anyone watched as they were
 * published, and a watcher that comes later with a tail is sent them (v1alpha1_events.go@v1.13.9:104-229): the
 * simulated node records them as it runs its reset (machine-events.ts), keeps them in its saved state, and the Events
 * stream only replays them. The machine status follows them as machined's MachineStatus controller does
 * (machine_status.go@v1.13.9:404-430): RESETTING from the reset's START, REBOOTING once the sequence failed. Over the
 * real wire with raw grpc-js clients; test/peers/reset-events-history.test.ts runs real talosctl on the same.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { lengthField, varintField } from '../../src/talos/proto-wire.js';
import { bootId, eventually, startBench, unary, type Bench } from './helpers.js';

const healthy = new URL('../peers/healthy-3cp.yaml', import.meta.url).pathname;
const work = mkdtempSync(join(tmpdir(), 'talos-dr-reset-history-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

let benches: Bench[] = [];
afterEach(async () => {
  for (const b of benches) await b.close();
  benches = [];
});

async function bench(scenario: string, opts: Parameters<typeof startBench>[1]): Promise<Bench> {
  const b = await startBench(scenario, opts);
  benches.push(b);
  return b;
}

interface Message {
  data: { type_url: string; value: Buffer } | null;
  actorId: string;
}

/** An Events stream: what it has sent so far. */
function follow(
  b: Bench,
  node: string,
  request: { tailEvents?: number; tailSeconds?: number; withActorId?: string },
): { got: Message[]; cancel(): void } {
  const got: Message[] = [];
  const stream = (b.machine(node) as unknown as { Events(r: unknown): grpc.ClientReadableStream<Message> }).Events(
    request,
  );
  stream.on('data', (m: Message) => got.push(m));
  stream.on('error', () => undefined);
  return { got, cancel: () => stream.cancel() };
}

const STAGES = [
  'UNKNOWN',
  'BOOTING',
  'INSTALLING',
  'MAINTENANCE',
  'RUNNING',
  'REBOOTING',
  'SHUTTING_DOWN',
  'RESETTING',
];

/**
 * Each sequence event as "<kind> <name> <action> [<actor id>]", each machine status as "status <STAGE>"
 * (api/machine/machine.proto@v1.13.9:196-283); service events left out.
 */
function lines(got: Message[]): string[] {
  const out: string[] = [];
  for (const m of got) {
    const kind = m.data?.type_url.replace('talos/runtime/machine.', '') ?? '';
    if (kind === 'MachineStatusEvent') {
      out.push(`status ${STAGES[Number(varintField(m.data!.value, 1) ?? 0n)]}`);
      continue;
    }
    if (!['SequenceEvent', 'PhaseEvent', 'TaskEvent'].includes(kind)) continue;
    const name = lengthField(m.data!.value, 1)?.toString() ?? '';
    const action = Number(varintField(m.data!.value, 2) ?? 0n);
    const actions = kind === 'SequenceEvent' ? ['NOOP', 'START', 'STOP'] : ['START', 'STOP'];
    out.push(`${kind} ${name} ${actions[action]} [${m.actorId}]`);
  }
  return out;
}

const phase = (name: string, task: string, actor: string): string[] => [
  `PhaseEvent ${name} START [${actor}]`,
  `TaskEvent ${task} START [${actor}]`,
  `TaskEvent ${task} STOP [${actor}]`,
  `PhaseEvent ${name} STOP [${actor}]`,
];

/** The failed graceful reset's events (v1alpha1_sequencer.go@v1.13.9:292-311, v1alpha1_controller.go:142-157). */
const failedReset = (actor: string): string[] => [
  `SequenceEvent reset START [${actor}]`,
  'status RESETTING',
  ...phase('drain', 'cordonAndDrainNode', actor),
  ...phase('cleanup', 'removeAllPods', actor),
  ...phase('dbus', 'stopDBus', actor),
  ...phase('leave', 'leaveEtcd', actor),
  `SequenceEvent reset STOP [${actor}]`,
  `SequenceEvent reset NOOP [${actor}]`,
  'status REBOOTING',
];

/** A graceful Reset of lost-quorum's cp-1, which fails at its leave phase; the Reset's actor id once it has. */
async function failGracefulReset(b: Bench, cp1: string): Promise<string> {
  const answer = await unary<{ messages: { actorId: string }[] }>(b.machine(cp1), 'Reset', { graceful: true });
  const actorId = answer.messages[0]!.actorId;
  // nobody watches while it runs: a watcher that comes afterwards with a tail is what shows it happened
  await eventually(
    async () => {
      const probe = follow(b, cp1, { tailEvents: 1 });
      await new Promise((resolve) => setTimeout(resolve, 100));
      probe.cancel();
      return lines(probe.got);
    },
    (l) => l.some((line) => line.startsWith('SequenceEvent reset NOOP')),
    20_000,
  );
  return actorId;
}

/** The events a watcher with `tail` (a tail_events, or a request) is sent within `ms`. */
async function tail(
  b: Bench,
  node: string,
  request: number | Parameters<typeof follow>[2],
  ms = 300,
): Promise<string[]> {
  const stream = follow(b, node, typeof request === 'number' ? { tailEvents: request } : request);
  await new Promise((resolve) => setTimeout(resolve, ms));
  stream.cancel();
  return lines(stream.got);
}

describe("a Reset's events are the node's history", () => {
  it('a watcher that comes after Reset answered, with a tail, is sent the START and the phases, under the actor id', async () => {
    // speed 1: the node answers with its old state for 2 s after Reset answered (node.ts), room for a loaded machine
    const b = await bench(healthy, { speed: 1 });
    const cp2 = b.sim.nodes[1]!;
    const answer = await unary<{ messages: { actorId: string }[] }>(b.machine(cp2), 'Reset', {
      graceful: false,
      reboot: true,
      systemPartitionsToWipe: [{ label: 'EPHEMERAL', wipe: true }],
    });
    const actor = answer.messages[0]!.actorId;
    // v1alpha1_sequencer.go@v1.13.9:284-339 for graceful=false: the phases before the services stop
    expect(await tail(b, cp2, -1, 200)).toEqual([
      `SequenceEvent reset START [${actor}]`,
      'status RESETTING',
      ...phase('cleanup', 'stopAllPods', actor),
      ...phase('dbus', 'stopDBus', actor),
      ...phase('preReset', 'sendResetSignal', actor),
    ]);
  });

  it('after a failed graceful reset a later watcher sees the whole sequence, and the machine REBOOTING', async () => {
    const b = await bench('lost-quorum', { speed: 1000 });
    const cp1 = b.sim.nodes[0]!;
    const before = await bootId(b, cp1);
    const actor = await failGracefulReset(b, cp1);
    expect(await tail(b, cp1, -1)).toEqual(failedReset(actor));
    // machined's stage after a FATAL sequence error (machine_status.go@v1.13.9:424-430), though the node runs on
    expect(await tail(b, cp1, 1)).toEqual([`SequenceEvent reset NOOP [${actor}]`, 'status REBOOTING']);
    expect(await bootId(b, cp1)).toBe(before);
  });

  it('a tail of seconds replays them too; with the actor id, only they are sent, no status nor service event', async () => {
    const b = await bench('lost-quorum', { speed: 1000 });
    const cp1 = b.sim.nodes[0]!;
    const actor = await failGracefulReset(b, cp1);
    // tail_seconds: the events published in the last minute (Watch's TailDuration, v1alpha1_events.go@v1.13.9:148-155)
    expect(await tail(b, cp1, { tailSeconds: 60 })).toEqual(failedReset(actor));
    // with_actor_id filters what the tail chose (:193-196); the machine status is published with no actor id
    const only = follow(b, cp1, { tailEvents: -1, withActorId: actor });
    const other = follow(b, cp1, { tailEvents: -1, withActorId: '00000000-0000-0000-0000-000000000000' });
    await new Promise((resolve) => setTimeout(resolve, 300));
    only.cancel();
    other.cancel();
    expect(lines(only.got)).toEqual(failedReset(actor).filter((l) => !l.startsWith('status')));
    // all that was sent besides: the empty event that says the stream is open, which carries the id asked for
    // (sendEmptyEvent, v1alpha1_server.go@v1.13.9:1510-1517)
    expect(only.got.map((m) => m.actorId)).toEqual(Array(20).fill(actor));
    expect(other.got.filter((m) => m.data?.type_url)).toEqual([]);
  });

  it('after the reset the node boots with an empty ring: a tail replays none of the last boot’s events', async () => {
    const b = await bench(healthy, { speed: 100 });
    const cp2 = b.sim.nodes[1]!;
    const before = await bootId(b, cp2);
    // the service events of the whole ring, as "<id> <service>"
    const services = async (): Promise<string[]> => {
      const stream = follow(b, cp2, { tailEvents: -1 });
      await new Promise((resolve) => setTimeout(resolve, 200));
      stream.cancel();
      return stream.got
        .filter((m) => m.data?.type_url === 'talos/runtime/machine.ServiceStateEvent')
        .map((m) => `${(m as unknown as { id: string }).id} ${lengthField(m.data!.value, 1)?.toString()}`);
    };
    // a kubelet restart in this boot: its service events are in the ring
    await unary(b.machine(cp2), 'ServiceRestart', { id: 'kubelet' });
    const old = await eventually(services, (l) => l.filter((e) => e.endsWith(' kubelet')).length >= 2);
    await unary(b.machine(cp2), 'Reset', {
      graceful: false,
      reboot: true,
      systemPartitionsToWipe: [{ label: 'EPHEMERAL', wipe: true }],
    });
    await eventually(
      () => bootId(b, cp2).catch(() => before),
      (id) => id !== before,
      20_000,
    );
    // machined's ring is memory (v1alpha1_events.go@v1.13.9:84-101): the new boot's holds only its own events
    const now = await eventually(services, (l) => l.some((e) => e.endsWith(' cri')));
    expect(now.filter((e) => old.includes(e))).toEqual([]);
  });

  it('a resumed simulator replays the same history, with the actor id, as the node never rebooted', async () => {
    const b = await bench('lost-quorum', { speed: 1000 });
    const cp1 = b.sim.nodes[0]!;
    const before = await bootId(b, cp1);
    const actor = await failGracefulReset(b, cp1);
    const statePath = join(work, 'failed-reset.json');
    await b.sim.saveState(statePath);
    await b.close();
    benches = [];

    const resumed = await bench('ignored', { speed: 1000, restoreFrom: statePath });
    expect(await bootId(resumed, cp1)).toBe(before);
    expect(await tail(resumed, cp1, -1)).toEqual(failedReset(actor));
  });
});

/** The error of a SequenceEvent: "<code> <message>" (common.Error, api/common/common.proto@v1.13.9:47-57). */
function sequenceErrors(got: Message[]): string[] {
  return got
    .filter((m) => m.data?.type_url === 'talos/runtime/machine.SequenceEvent')
    .map((m) => lengthField(m.data!.value, 3))
    .filter((e): e is Buffer => e !== undefined)
    .map((e) => `${['FATAL', 'LOCKED', 'CANCELED'][Number(varintField(e, 1) ?? 0n)]} ${lengthField(e, 2)?.toString()}`);
}

describe('a Reset while a reset runs is refused by the priority lock; the running one goes on', () => {
  it('while the first waits to go down: a LOCKED NOOP, then the first one’s phases, as it asked', async () => {
    // speed 2: the node answers with its old state for 1 s after the first Reset answered (node.ts)
    const b = await bench(healthy, { speed: 2 });
    const cp2 = b.sim.nodes[1]!;
    const stream = follow(b, cp2, { tailEvents: 0 });
    await eventually(
      () => stream.got.length,
      (n) => n > 0,
    );
    const first = await unary<{ messages: { actorId: string }[] }>(b.machine(cp2), 'Reset', {
      graceful: false,
      reboot: true,
      systemPartitionsToWipe: [{ label: 'EPHEMERAL', wipe: true }],
    });
    // the whole disk, and power off: had it run, the node would not come back, and without kexec (no label named)
    const second = await unary<{ messages: { actorId: string }[] }>(b.machine(cp2), 'Reset', {
      graceful: false,
      reboot: false,
    });
    const a1 = first.messages[0]!.actorId;
    expect(second.messages[0]!.actorId).not.toBe(a1); // answered all the same (v1alpha1_server.go@v1.13.9:736-750)
    await eventually(
      () => lines(stream.got),
      (l) => l.includes(`TaskEvent stopAllServices START [${a1}]`),
      10_000,
    );
    stream.cancel();
    const got = lines(stream.got).filter((l) => !l.startsWith('status'));
    expect(got).toContain('SequenceEvent reset NOOP []');
    expect(sequenceErrors(stream.got)).toEqual(['LOCKED sequence not started: locked']);
    // the rest is the first reset's, with its kexec (EPHEMERAL named: v1alpha1_sequencer.go@v1.13.9:263-267)
    expect(got.filter((l) => l !== 'SequenceEvent reset NOOP []').every((l) => l.endsWith(`[${a1}]`))).toBe(true);
    expect(got).toContain(`PhaseEvent kexec START [${a1}]`);
  });

  it('while a graceful reset without quorum waits for its cordon: refused, and the node is not reset', async () => {
    // speed 30: the drain's one-minute wait (machine-events.ts) takes 2 s
    const b = await bench('lost-quorum', { speed: 30 });
    const cp1 = b.sim.nodes[0]!;
    const before = await bootId(b, cp1);
    const stream = follow(b, cp1, { tailEvents: 0 });
    await eventually(
      () => stream.got.length,
      (n) => n > 0,
    );
    const graceful = await unary<{ messages: { actorId: string }[] }>(b.machine(cp1), 'Reset', { graceful: true });
    const a1 = graceful.messages[0]!.actorId;
    // what a trainee tired of waiting would try: a reset that does not leave etcd
    await unary(b.machine(cp1), 'Reset', {
      graceful: false,
      reboot: true,
      systemPartitionsToWipe: [{ label: 'EPHEMERAL', wipe: true }],
    });
    await eventually(
      () => lines(stream.got),
      (l) => l.includes(`SequenceEvent reset NOOP [${a1}]`),
      10_000,
    );
    stream.cancel();
    expect(sequenceErrors(stream.got)).toEqual([
      'LOCKED sequence not started: locked',
      expect.stringMatching(/^FATAL sequence failed: error running phase 4 in reset sequence/),
    ]);
    expect(lines(stream.got)).not.toContain(`TaskEvent stopAllServices START [${a1}]`);
    // the node did not reset: the same boot answers, its stage REBOOTING
    expect(await bootId(b, cp1)).toBe(before);
    expect(await tail(b, cp1, 1)).toEqual([`SequenceEvent reset NOOP [${a1}]`, 'status REBOOTING']);
  });
});

describe('a graceful Reset without quorum whose leave does not need it', () => {
  it('waits out the drain’s minute for a cordon that cannot be written, then goes on and goes down', async () => {
    // lost-quorum's cp-2: its etcd crash-loops, so leaveEtcd skips it and the sequence does not fail (api.ts); the
    // drain's wait (v1alpha1_sequencer_tasks.go@v1.13.9:837-896, 873) takes 3 s at speed 20, the node's 2 s before
    // it goes down (node.ts) 0.1 s
    const b = await bench('lost-quorum', { speed: 20 });
    const cp2 = b.sim.nodes[1]!;
    const before = await bootId(b, cp2);
    const stream = follow(b, cp2, { tailEvents: 0 });
    await eventually(
      () => stream.got.length,
      (n) => n > 0,
    );
    const answer = await unary<{ messages: { actorId: string }[] }>(b.machine(cp2), 'Reset', {
      graceful: true,
      reboot: true,
      systemPartitionsToWipe: [{ label: 'EPHEMERAL', wipe: true }],
    });
    const actor = answer.messages[0]!.actorId;
    // 15 simulated seconds on: the drain still waits, the node is up with the same boot
    await new Promise((resolve) => setTimeout(resolve, 750));
    expect(await bootId(b, cp2)).toBe(before);
    expect(lines(stream.got).filter((l) => !l.startsWith('status'))).toEqual([
      `SequenceEvent reset START [${actor}]`,
      `PhaseEvent drain START [${actor}]`,
      `TaskEvent cordonAndDrainNode START [${actor}]`,
    ]);
    // then the drain gives up, the rest runs (the leave a no-op) and the node goes down with stopAllServices
    await eventually(
      () => lines(stream.got),
      (l) => l.includes(`TaskEvent stopAllServices START [${actor}]`),
      20_000,
    );
    stream.cancel();
    const got = lines(stream.got).filter((l) => !l.startsWith('status'));
    expect(got.slice(3, 9)).toEqual([
      `TaskEvent cordonAndDrainNode STOP [${actor}]`,
      `PhaseEvent drain STOP [${actor}]`,
      ...phase('cleanup', 'removeAllPods', actor).slice(0, 4),
    ]);
    expect(got).toContain(`TaskEvent leaveEtcd STOP [${actor}]`);
    expect(sequenceErrors(stream.got)).toEqual([]);
  });
});
