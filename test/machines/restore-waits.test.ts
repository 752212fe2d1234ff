/**
 * A machine restored from state.json in the middle of a pause — a wait's poll interval (steps 7 and 9), or the
 * backoff before a failed call is tried again (a connect, an upload) — goes on and reaches the outcome (issue 18).
 * xstate keeps no delayed event in a persisted snapshot: a pause written as an `after` delay was restored asleep for
 * ever. The cluster is the in-memory one (test/components/fake-cluster.ts), slowed where a pause must happen.
 */
import { describe, expect, it } from 'vitest';
import { createActor, fromCallback, fromPromise, waitFor, type Snapshot, type SnapshotFrom } from 'xstate';
import { fakeCluster, NODES } from '../components/fake-cluster.js';
import type { ConnectOutput, NodeView, RecoveryEvent, RecoveryMachine } from '../../machines/recovery.js';
import { prepareNodeMachine } from '../../machines/prepare-node.js';

const TIMING = { pollMs: 20, backoffMs: 20, preparingTimeoutMs: 60_000, verifyTimeoutMs: 60_000 };
const retryable = (message: string) => Object.assign(new Error(message), { retryable: true });

/** The fake cluster, slowed: the last node shows Waiting for its first reads in step 7, etcd comes up two reads after
 * Bootstrap, connect fails once, transiently, and so does the first Reset; the upload is cut once, then meets its node
 * rebooting (not answering); a wiped node does not answer its own child's first two reads. */
function slowedCluster(): { machine: RecoveryMachine; calls: string[] } {
  const cluster = fakeCluster();
  let waitingReads = 2;
  let readsAfterBootstrap = -1;
  let connectFailures = 1;
  let uploadFailures = 2;
  let resetFailures = 1;
  const rebooting = new Map<string, number>();
  const observe = fromPromise<NodeView[], { nodes: string[] }>(async ({ input }) => {
    const views = await cluster.refresh(input.nodes);
    const node = input.nodes[0] as string;
    const left = rebooting.get(node) ?? 0;
    if (input.nodes.length === 1 && left > 0) {
      rebooting.set(node, left - 1);
      return [{ ...(views[0] as NodeView), reachable: false, etcdService: null }];
    }
    if (readsAfterBootstrap >= 0 && readsAfterBootstrap++ < 2)
      return views.map((v) => ({ ...v, etcdService: 'Preparing', etcdHealthy: null }));
    return views.map((v) =>
      v.node === NODES[2] && v.etcdService === 'Preparing' && input.nodes.length > 1 && waitingReads-- > 0
        ? { ...v, etcdService: 'Waiting', etcdEvents: ['Waiting for time sync'] }
        : v,
    );
  });
  const machine = cluster.machine.provide({
    actors: {
      observe,
      connect: fromPromise<ConnectOutput, { nodes: string[] }>(async ({ input }) => {
        if (connectFailures-- > 0) throw retryable('connection refused');
        return { nodes: input.nodes.map((node) => ({ node, ok: true, version: 'v1.11.2', error: null })) };
      }),
      uploadSnapshot: fromCallback<RecoveryEvent, { node: string; file: string; bytes: number; opId: string }>(
        ({ sendBack, input }) => {
          cluster.calls.push(`upload ${input.node}`);
          // first a cut stream (the node answers), then a reboot (it does not): a backoff, then a wait for the node
          const failure = uploadFailures-- > 0 ? (uploadFailures === 1 ? 'cut' : 'silent') : null;
          const t = setTimeout(
            () =>
              sendBack(
                failure === 'cut'
                  ? { type: 'upload.failed', error: 'stream cut', retryable: true }
                  : failure === 'silent'
                    ? { type: 'upload.failed', error: 'connection refused', retryable: true, unanswered: true }
                    : { type: 'upload.done' },
              ),
            1,
          );
          return () => clearTimeout(t);
        },
      ),
      bootstrapNode: fromPromise<
        { alreadyDone: boolean },
        { node: string; skipHashCheck: boolean; opId: string; wiped: boolean; uploadSent: boolean }
      >(async () => {
        cluster.calls.push('bootstrap');
        readsAfterBootstrap = 0;
        for (const [i, n] of NODES.entries()) {
          const v = cluster.views.get(n) as NodeView;
          cluster.views.set(n, {
            ...v,
            etcdService: 'Running',
            etcdHealthy: true,
            members: NODES.map((m, j) => ({
              id: `00000000000000a${j}`,
              hostname: `cp-${j + 1}`,
              peerUrls: [`https://${m}:2380`],
              clientUrls: [],
              isLearner: false,
            })),
            membersError: null,
            status: { memberId: `00000000000000a${i}`, leader: '00000000000000a0', errors: [], raftAppliedIndex: '9' },
            statusError: null,
          });
        }
        return { alreadyDone: false };
      }),
      prepareNode: prepareNodeMachine.provide({
        actors: {
          observe,
          resetNode: fromPromise<void, { node: string; labels: string[]; opId: string }>(async ({ input }) => {
            if (resetFailures-- > 0) throw retryable('connection refused');
            cluster.calls.push(`reset ${input.node}`);
            rebooting.set(input.node, 2);
            const v = cluster.views.get(input.node) as NodeView;
            cluster.views.set(input.node, { ...v, etcdService: 'Preparing', etcdHealthy: null, status: null });
          }),
        },
      }),
    },
  });
  return { machine, calls: cluster.calls };
}

/** Answers every question with its recommended answer. */
function autopilot(actor: { subscribe: (f: (s: SnapLike) => void) => unknown; send: (e: RecoveryEvent) => void }) {
  let answered = -1;
  actor.subscribe((s) => {
    const p = s.context.prompt;
    if (p?.recommended && s.context.promptSeq !== answered) {
      answered = s.context.promptSeq;
      const event = p.recommended;
      setImmediate(() => actor.send(event));
    }
  });
}
interface SnapLike {
  value: unknown;
  status: string;
  context: { prompt: { recommended: RecoveryEvent | null } | null; promptSeq: number; outcome: string | null };
}

type Snap = SnapshotFrom<RecoveryMachine>;
const at = (value: unknown) => (s: Snap) => JSON.stringify(s.value) === JSON.stringify(value);
/** Some node's preparation child (prep:<node>) is at `value`. */
const childAt = (value: unknown) => (s: Snap) =>
  Object.entries(s.children).some(
    ([id, child]) =>
      id.startsWith('prep:') &&
      JSON.stringify((child?.getSnapshot() as { value?: unknown } | undefined)?.value) === JSON.stringify(value),
  );

const PAUSES: [string, (s: Snap) => boolean][] = [
  ['connect: the backoff after a failed connect', at({ procedure: { connect: 'retrying' } })],
  ["step 6: the backoff after a failed Reset (a node's child)", childAt('retrying')],
  ["step 6: the poll interval while a wiped node reboots (a node's child)", childAt({ back: 'pause' })],
  ['step 7: the poll interval while a node waits', at({ procedure: { waitPreparing: 'pause' } })],
  ['step 8: the backoff after a cut upload', at({ procedure: { bootstrap: 'uploadRetry' } })],
  [
    "step 8: the poll interval while the upload's node reboots",
    at({ procedure: { bootstrap: { awaitingNode: 'pause' } } }),
  ],
  ['step 9: the poll interval while etcd comes up', at({ procedure: { verify: 'pause' } })],
];

describe('a machine restored mid-pause wakes and goes on', () => {
  it.each(PAUSES)('%s', async (_name, reached) => {
    const { machine, calls } = slowedCluster();
    const input = { nodes: NODES, operator: 'tester', mode: 'drill' as const, timing: TIMING };
    const first = createActor(machine, { input });
    let saved: Snapshot<unknown> | null = null;
    first.subscribe((s) => {
      if (!saved && reached(s)) {
        // what state.json holds at that moment, through JSON as on disk
        saved = JSON.parse(JSON.stringify(first.getPersistedSnapshot())) as Snapshot<unknown>;
        first.stop();
      }
    });
    autopilot(first);
    first.start();
    await waitFor(first, () => saved !== null, { timeout: 10_000 });

    const second = createActor(machine, { input, snapshot: saved as never });
    autopilot(second);
    second.start();
    const end = await waitFor(second, (s) => s.status === 'done', { timeout: 10_000 });
    expect(end.context.outcome).toBe('recovered');
    expect(calls.filter((c) => c === 'bootstrap')).toHaveLength(1);
  });
});
