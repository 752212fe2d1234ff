/**
 * Variations of the in-memory cluster (test/components/fake-cluster.ts) for the recovery machine's failure and risk
 * paths, shared by the machine tests and the App tests: a raw database copy as the snapshot (skip-hash-check), and a
 * cluster whose connect fails once and whose first Reset fails once (the "Try again?" prompts).
 */
import { fromPromise } from 'xstate';
import { apiSnapshot, type FakeCluster } from '../components/fake-cluster.js';
import { prepareNodeMachine } from '../../machines/prepare-node.js';
import type { ConnectOutput, NodeView, SnapshotInfo } from '../../machines/recovery.js';

/** A raw copy of 127.0.0.2's database: bbolt structure fine, no sha256 trailer, so it needs skip-hash-check. */
export const rawCopy = (): SnapshotInfo => ({
  ...apiSnapshot(),
  file: '/tmp/incident/snapshots/127.0.0.2.raw.db',
  sha256: 'cd'.repeat(32),
  method: 'raw',
  integrity: 'absent',
  needsSkipHashCheck: true,
  bytes: 3_276_800,
});

/** The cluster's machine, its snapshot a raw copy. */
export const withRawCopy = (cluster: FakeCluster) =>
  cluster.machine.provide({ actors: { acquireSnapshot: fromPromise(async () => rawCopy()) } });

const failure = (message: string) => Object.assign(new Error(message), { retryable: false });

/** The cluster's machine, its connect failing once (a wrong CA) and its first Reset failing once (refused). */
export function failingOnce(cluster: FakeCluster) {
  let connectFailures = 1;
  let resetFailures = 1;
  return cluster.machine.provide({
    actors: {
      connect: fromPromise<ConnectOutput, { nodes: string[] }>(async ({ input }) => {
        if (connectFailures-- > 0) throw failure('the talosconfig CA does not match');
        return { nodes: input.nodes.map((node) => ({ node, ok: true, version: 'v1.11.2', error: null })) };
      }),
      prepareNode: prepareNodeMachine.provide({
        actors: {
          observe: fromPromise(async ({ input }: { input: { nodes: string[] } }) => cluster.refresh(input.nodes)),
          resetNode: fromPromise<void, { node: string; labels: string[]; opId: string }>(async ({ input }) => {
            if (resetFailures-- > 0) throw failure('connection refused');
            cluster.calls.push(`reset ${input.node}`);
            cluster.views.set(input.node, {
              ...(cluster.views.get(input.node) as NodeView),
              etcdService: 'Preparing',
              etcdHealthy: null,
              members: null,
              status: null,
            });
          }),
        },
      }),
    },
  });
}
