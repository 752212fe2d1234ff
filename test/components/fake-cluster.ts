/**
 * A three-node cluster in memory that has lost quorum, answering the recovery machine's named actors the way the
 * effect layer would. It lets the App be driven by the real recovery machine, keystroke by keystroke, without a
 * network; the end-to-end test does the same through the real binary and the simulator.
 */
import { fromCallback, fromPromise } from 'xstate';
import {
  recoveryMachine,
  type BackupOutput,
  type ConnectOutput,
  type NodeView,
  type RecoveryEvent,
  type SnapshotInfo,
} from '../../machines/recovery.js';
import { prepareNodeMachine } from '../../machines/prepare-node.js';

export const NODES = ['127.0.0.2', '127.0.0.3', '127.0.0.4'];
const MEMBER_IDS = ['1a2b3c4d5e6f7081', '2b3c4d5e6f708192', '3c4d5e6f708192a3'];

const members = () =>
  NODES.map((n, i) => ({
    id: MEMBER_IDS[i] as string,
    hostname: `cp-${i + 1}`,
    peerUrls: [`https://${n}:2380`],
    clientUrls: [`https://${n}:2379`],
    isLearner: false,
  }));

function brokenView(node: string, i: number): NodeView {
  const survivor = i === 0;
  return {
    node,
    hostname: `cp-${i + 1}`,
    reachable: true,
    maintenance: false,
    machineType: 'controlplane',
    etcdService: survivor ? 'Running' : 'Failed',
    etcdHealthy: false,
    etcdLastEvent: survivor ? 'Health check failed: context deadline exceeded' : 'Error running Containerd(etcd)',
    members: survivor ? members() : null,
    membersError: survivor ? null : 'etcd is not running',
    status: survivor
      ? {
          memberId: MEMBER_IDS[0] as string,
          leader: '0000000000000000',
          errors: ['etcdserver: no leader'],
          raftAppliedIndex: '48213',
        }
      : null,
    statusError: survivor ? null : 'etcd is not running',
    error: null,
  };
}

export interface FakeCluster {
  views: Map<string, NodeView>;
  /** what the screen's own refresh reads: every node's current view */
  refresh: (nodes: string[]) => Promise<NodeView[]>;
  /** destructive calls, in order, as "reset 127.0.0.3" / "bootstrap 127.0.0.2" */
  calls: string[];
  machine: typeof recoveryMachine;
}

/** The snapshot the fake cluster's acquisition returns: taken through the API from 127.0.0.2, verified. */
export const apiSnapshot = (): SnapshotInfo => ({
  file: '/tmp/incident/snapshots/127.0.0.2.db',
  sha256: 'ab'.repeat(32),
  method: 'api',
  node: '127.0.0.2',
  raftAppliedIndex: '48213',
  revision: 4821,
  totalKeys: 1290,
  totalSize: 3_276_800,
  hash: '5d1e2f3a',
  integrity: 'verified',
  kind: 'bbolt',
  structure: 'ok',
  usable: true,
  needsSkipHashCheck: false,
  problems: [],
  bytes: 3_276_832,
  takenAt: Date.now(),
});

export function fakeCluster(): FakeCluster {
  const views = new Map(NODES.map((n, i) => [n, brokenView(n, i)]));
  const calls: string[] = [];
  const all = () => NODES.map((n) => views.get(n) as NodeView);
  const set = (node: string, patch: Partial<NodeView>) =>
    views.set(node, { ...(views.get(node) as NodeView), ...patch });

  const observe = fromPromise<NodeView[], { nodes: string[] }>(async ({ input }) =>
    input.nodes.map((n) => views.get(n) as NodeView),
  );
  const snapshot = apiSnapshot();

  const machine = recoveryMachine.provide({
    actors: {
      connect: fromPromise<ConnectOutput, { nodes: string[] }>(async ({ input }) => ({
        nodes: input.nodes.map((node) => ({ node, ok: true, version: 'v1.11.2', error: null })),
      })),
      assess: fromPromise(async () => ({ observations: all(), volumes: {} })),
      observe,
      acquireSnapshot: fromPromise(async () => {
        calls.push('snapshot 127.0.0.2');
        return snapshot;
      }),
      backupConfigs: fromPromise<BackupOutput, { nodes: string[]; blank: string[] }>(async ({ input }) => ({
        configs: input.nodes.map((node) => ({
          node,
          file: `/tmp/incident/configs/${node}.yaml`,
          source: 'live' as const,
          error: null,
        })),
      })),
      convertInitNode: fromPromise<void, { node: string; opId: string }>(async () => {}),
      verifySnapshotFile: fromPromise(async () => ({ sha256: snapshot.sha256 })),
      uploadSnapshot: fromCallback<RecoveryEvent, { node: string; file: string; bytes: number; opId: string }>(
        ({ sendBack, input }) => {
          calls.push(`upload ${input.node}`);
          const half = setTimeout(
            () => sendBack({ type: 'upload.progress', bytes: input.bytes / 2, total: input.bytes, restarts: 0 }),
            5,
          );
          const done = setTimeout(() => sendBack({ type: 'upload.done' }), 20);
          return () => {
            clearTimeout(half);
            clearTimeout(done);
          };
        },
      ),
      bootstrapNode: fromPromise<
        { alreadyDone: boolean },
        { node: string; skipHashCheck: boolean; opId: string; wiped: boolean; uploadSent: boolean }
      >(async ({ input }) => {
        calls.push(`bootstrap ${input.node}`);
        // The restore runs inside etcd; every node joins and agrees.
        for (const [i, n] of NODES.entries())
          set(n, {
            etcdService: 'Running',
            etcdHealthy: true,
            etcdLastEvent: 'Health check successful',
            members: members(),
            membersError: null,
            status: {
              memberId: MEMBER_IDS[i] as string,
              leader: MEMBER_IDS[0] as string,
              errors: [],
              raftAppliedIndex: '4830',
            },
            statusError: null,
          });
        return { alreadyDone: false };
      }),
      prepareNode: prepareNodeMachine.provide({
        actors: {
          resetNode: fromPromise<void, { node: string; labels: string[]; opId: string }>(async ({ input }) => {
            calls.push(`reset ${input.node}`);
            set(input.node, {
              etcdService: 'Preparing',
              etcdHealthy: null,
              etcdLastEvent: 'Waiting for bootstrap',
              members: null,
              status: null,
              statusError: 'etcd is not running',
            });
          }),
          applyConfig: fromPromise<void, { node: string; file: string; opId: string }>(async () => {}),
          observe,
        },
      }),
    },
  });
  const refresh = async (nodes: string[]) => nodes.map((n) => views.get(n) as NodeView);
  return { views, calls, machine, refresh };
}
