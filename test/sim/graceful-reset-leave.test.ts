/**
 * A graceful Reset of a control-plane node whose etcd is not running. machined's leave phase (leaveEtcd) leaves etcd
 * only when the member has a data directory and its etcd service is Running, Stopping or Failed
 * (internal/app/machined/pkg/runtime/v1alpha1/v1alpha1_sequencer_tasks.go@v1.13.9:901-937); any other state (Waiting
 * in a crash loop, Finished) skips it and the sequence goes on: the node wipes and reboots, quorum or not. Only a
 * member that does try to leave needs a leader (WithRequireLeader, :947-951): test/sim/reset-events.test.ts has that
 * failure. Over the real wire with the scenario's nodes, as a trainee's plain `talosctl reset` would meet them.
 */
import type * as grpc from '@grpc/grpc-js';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { scenariosDir } from '../../src/paths.js';
import { lengthField, varintField } from '../../src/talos/proto-wire.js';
import { bootId, etcdState, eventually, startBench, unary, type Bench } from './helpers.js';

let bench: Bench | undefined;
afterEach(async () => {
  await bench?.close();
  bench = undefined;
});

interface Message {
  data: { type_url: string; value: Buffer } | null;
}

/** The node's sequence events as they come, one line each ("<kind> <name> <action>"), and the stream's end. */
function sequenceEvents(b: Bench, node: string): { lines: string[]; ended: Promise<void>; cancel(): void } {
  const lines: string[] = [];
  const stream = (b.machine(node) as unknown as { Events(r: unknown): grpc.ClientReadableStream<Message> }).Events({
    tailEvents: 0,
  });
  stream.on('data', (m: Message) => {
    const kind = m.data?.type_url.replace('talos/runtime/machine.', '') ?? '';
    if (!['SequenceEvent', 'PhaseEvent', 'TaskEvent'].includes(kind)) return;
    const actions = kind === 'SequenceEvent' ? ['NOOP', 'START', 'STOP'] : ['START', 'STOP'];
    const name = lengthField(m.data!.value, 1)?.toString() ?? '';
    lines.push(`${kind} ${name} ${actions[Number(varintField(m.data!.value, 2) ?? 0n)]}`);
  });
  const ended = new Promise<void>((resolve) => {
    stream.on('end', () => resolve());
    stream.on('error', () => resolve());
  });
  return { lines, ended, cancel: () => stream.cancel() };
}

/** lost-quorum with cp-3's etcd stopped (Finished, data kept) instead of crash-looping: still no quorum. */
function stoppedMemberScenario(): string {
  const yaml = readFileSync(join(scenariosDir(), 'lost-quorum.yaml'), 'utf8').replace(
    '{ hostname: cp-3, type: controlplane, etcd: crashloop, behind: 30 }',
    '{ hostname: cp-3, type: controlplane, etcd: stopped, behind: 30 }',
  );
  const file = join(mkdtempSync(join(tmpdir(), 'talos-dr-graceful-')), 'lost-quorum-stopped.yaml');
  writeFileSync(file, yaml);
  return file;
}

describe('a graceful Reset of a control-plane node whose etcd is not running, without quorum', () => {
  it.each([
    { what: 'crash-looping (Waiting)', scenario: 'lost-quorum', host: 1, state: 'Waiting' },
    { what: 'stopped (Finished)', scenario: stoppedMemberScenario(), host: 2, state: 'Finished' },
  ])('$what: leave is skipped, the node wipes EPHEMERAL and boots again', async ({ scenario, host, state }) => {
    bench = await startBench(scenario, { speed: 1000 });
    const node = bench.sim.nodes[host]!;
    expect(await etcdState(bench, node)).toBe(state);
    const before = await bootId(bench, node);
    const events = sequenceEvents(bench, node);
    await unary(bench.machine(node), 'Reset', {
      graceful: true,
      reboot: true,
      systemPartitionsToWipe: [{ label: 'EPHEMERAL', wipe: true }],
    });
    // the node goes down with the reset: its stream ends after the leave phase ran (as a no-op) and the services stop
    await Promise.race([events.ended, new Promise((r) => setTimeout(r, 8000))]);
    events.cancel();
    expect(events.lines).toContain('TaskEvent leaveEtcd STOP');
    expect(events.lines).not.toContain('SequenceEvent reset NOOP');
    expect(events.lines.at(-1)).toBe('TaskEvent stopAllServices START');
    // it boots again with its etcd data gone: etcd waits for a bootstrap or a cluster to join (Preparing)
    await eventually(
      () => bootId(bench!, node).catch(() => before),
      (id) => id !== before,
    );
    await eventually(
      () => etcdState(bench!, node).catch(() => undefined),
      (s) => s === 'Preparing',
    );
  });
});
