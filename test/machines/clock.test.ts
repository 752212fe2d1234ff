/**
 * The recovery machine reads time only from the clock its actor is given: on xstate's SimulatedClock, a drill's
 * start time, its step times and step 7's wait limit follow that clock, whatever the wall clock does. The cluster is
 * scripted at the machine's actor boundary (one node never leaves Waiting).
 */
import { describe, expect, it } from 'vitest';
import { createActor, fromPromise, SimulatedClock, type AnyActorRef } from 'xstate';
import {
  recoveryMachine,
  type AssessOutput,
  type BackupOutput,
  type ConnectOutput,
  type NodeView,
  type SnapshotInfo,
  type SnapshotOption,
} from '../../machines/recovery.js';
import { prepareNodeMachine } from '../../machines/prepare-node.js';

const NODES = ['10.6.0.2', '10.6.0.3', '10.6.0.4'];
const START = Date.UTC(2030, 0, 1);
const TIMING = { pollMs: 1000, preparingTimeoutMs: 60_000, backoffMs: 500 };

const view = (node: string, etcdService: string): NodeView => ({
  node,
  hostname: node,
  reachable: true,
  machineType: 'controlplane',
  etcdService,
  etcdHealthy: false,
  members: null,
  membersError: 'etcd is not running',
  status: null,
  statusError: 'etcd is not running',
  ...(etcdService === 'Waiting' ? { etcdEvents: ['Waiting for time sync'] } : {}),
});

const afterWipe = (node: string) => view(node, node === NODES[2] ? 'Waiting' : 'Preparing');

function machine() {
  const observe = fromPromise<NodeView[], { nodes: string[] }>(async ({ input }) => input.nodes.map(afterWipe));
  return recoveryMachine.provide({
    actors: {
      connect: fromPromise<ConnectOutput, { nodes: string[] }>(async () => ({
        nodes: NODES.map((node) => ({ node, ok: true, version: 'v1.14.0', error: null })),
      })),
      // step 6 checks the snapshot file (its sha256) before each wipe
      verifySnapshotFile: fromPromise(async () => ({ sha256: 'ab'.repeat(32) })),
      assess: fromPromise<AssessOutput, { nodes: string[] }>(async () => ({
        observations: NODES.map((n) => view(n, 'Failed')),
        volumes: {},
      })),
      acquireSnapshot: fromPromise<SnapshotInfo, { option: SnapshotOption; opId: string }>(async () => ({
        file: '/tmp/given.db',
        sha256: 'ab'.repeat(32),
        method: 'file',
        node: null,
        raftAppliedIndex: null,
        revision: 10,
        totalKeys: 10,
        totalSize: 4096,
        hash: '01234567',
        integrity: 'verified',
        kind: 'bbolt',
        structure: 'ok',
        usable: true,
        needsSkipHashCheck: false,
        problems: [],
        bytes: 4096,
        takenAt: START - 3_600_000,
      })),
      backupConfigs: fromPromise<BackupOutput, { nodes: string[]; blank: string[] }>(async () => ({
        configs: NODES.map((node) => ({ node, file: `/tmp/${node}.yaml`, source: 'live', error: null })),
      })),
      observe,
      prepareNode: prepareNodeMachine.provide({
        actors: {
          resetNode: fromPromise<void, { node: string; labels: string[]; opId: string }>(async () => undefined),
          observe,
        },
      }),
    },
  });
}

/** Lets promises and the actor's own work settle (no wall-clock wait: every timer is on the simulated clock). */
const settle = async () => {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
};

describe('time in the recovery machine comes from the clock its actor is given', () => {
  it("a drill's times and step 7's limit follow a simulated clock", async () => {
    const clock = new SimulatedClock();
    clock.set(START);
    const actor = createActor(machine(), {
      clock,
      input: { nodes: NODES, operator: 'tester', mode: 'drill', givenSnapshots: ['/tmp/given.db'], timing: TIMING },
    }).start();
    const answer = async () => {
      await settle();
      const p = actor.getSnapshot().context.prompt;
      if (p?.recommended) actor.send(p.recommended);
      await settle();
    };
    await answer(); // nodes confirmed
    expect(actor.getSnapshot().context.startedAt).toBe(START);
    await answer(); // snapshot source
    for (const _ of NODES) await answer(); // three typed confirmations
    const waiting = actor.getSnapshot();
    expect(waiting.value).toEqual({ procedure: { waitPreparing: 'pause' } });
    expect(waiting.context.wait?.since).toBe(START);
    expect(waiting.context.wait?.deadline).toBe(START + TIMING.preparingTimeoutMs);
    expect(waiting.context.snapshot && waiting.context.dataLossWindow).toMatch(/taken 1 h 0 min ago/);

    // every poll waits on the simulated clock; up to the limit, the wait goes on
    for (let t = TIMING.pollMs; t <= TIMING.preparingTimeoutMs; t += TIMING.pollMs) {
      clock.increment(TIMING.pollMs);
      await settle();
    }
    expect(actor.getSnapshot().context.prompt).toBeNull();
    expect(actor.getSnapshot().context.wait?.pending.map((p) => p.node)).toEqual([NODES[2]]);
    // one poll past the limit: the question that names the waiting node
    clock.increment(TIMING.pollMs);
    await settle();
    const timedOut = actor.getSnapshot();
    expect(timedOut.context.prompt?.id).toBe('preparing-timeout');
    expect(timedOut.context.prompt?.question).toContain(`${NODES[2]} Waiting`);
    expect(timedOut.context.wait?.checkedAt).toBe(START + TIMING.preparingTimeoutMs + TIMING.pollMs);
    const prepare = timedOut.context.steps.find((s) => s.name === 'prepare nodes');
    expect([prepare?.startedAt, prepare?.endedAt]).toEqual([START, START]);

    // keep waiting: the limit starts again from the simulated now
    actor.send({ type: 'choose', option: 'wait' });
    await settle();
    expect(actor.getSnapshot().context.wait?.deadline).toBe(
      START + TIMING.preparingTimeoutMs + TIMING.pollMs + TIMING.preparingTimeoutMs,
    );
    (actor as AnyActorRef).stop();
  });
});
