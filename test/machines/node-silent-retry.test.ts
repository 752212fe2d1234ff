/**
 * Issue 17 item 5 for every call the machine retries on its own (Bootstrap, a node's Reset, …): a node that does not
 * answer at all — it reboots, and a rebooting node refuses connections — is tried again until it has been silent for
 * timing.nodeAnswerTimeoutMs, instead of five quick tries (~31 s) and a "Try again?" mid-recovery. A node that answers
 * but refuses for now still gets maxAttempts tries. The cluster is the in-memory one.
 */
import { describe, expect, it } from 'vitest';
import { fromPromise } from 'xstate';
import { fakeCluster, NODES } from '../components/fake-cluster.js';
import { prepareNodeMachine } from '../../machines/prepare-node.js';
import type { NodeView } from '../../machines/recovery.js';
import { runAnsweringRecommended } from './answering-run.js';

const silent = (node: string) =>
  Object.assign(new Error(`Nothing answers on ${node}'s Talos API port (connection refused).`), {
    retryable: true,
    unanswered: true,
  });
const notReady = (node: string) =>
  Object.assign(new Error(`${node} is not ready to bootstrap yet; wait a few seconds and try again.`), {
    retryable: true,
  });

/** The fake cluster; Bootstrap fails `bootstrapFailures` times with `failure`, each node's first Reset `resetSilent` times silently. */
function cluster(opts: { bootstrapFailures?: number; failure?: (node: string) => Error; resetSilent?: number }) {
  const c = fakeCluster();
  let bootstrapFailures = opts.bootstrapFailures ?? 0;
  const resetSilent = new Map(NODES.map((n) => [n, opts.resetSilent ?? 0]));
  const members = (c.views.get(NODES[0] as string) as NodeView).members ?? [];
  const machine = c.machine.provide({
    actors: {
      bootstrapNode: fromPromise<
        { alreadyDone: boolean },
        { node: string; skipHashCheck: boolean; opId: string; wiped: boolean; uploadSent: boolean }
      >(async ({ input }) => {
        if (bootstrapFailures-- > 0) throw (opts.failure ?? silent)(input.node);
        c.calls.push(`bootstrap ${input.node}`);
        // the restore runs inside etcd; every node joins and agrees (as the fake cluster's own Bootstrap)
        for (const [i, n] of NODES.entries())
          c.views.set(n, {
            ...(c.views.get(n) as NodeView),
            etcdService: 'Running',
            etcdHealthy: true,
            members,
            membersError: null,
            status: {
              memberId: members[i]?.id ?? '',
              leader: members[0]?.id ?? '',
              errors: [],
              raftAppliedIndex: '4830',
            },
            statusError: null,
          });
        return { alreadyDone: false };
      }),
      prepareNode: prepareNodeMachine.provide({
        actors: {
          observe: fromPromise(async ({ input }: { input: { nodes: string[] } }) => c.refresh(input.nodes)),
          resetNode: fromPromise<void, { node: string; labels: string[]; opId: string }>(async ({ input }) => {
            const left = resetSilent.get(input.node) ?? 0;
            if (left > 0) {
              resetSilent.set(input.node, left - 1);
              throw silent(input.node);
            }
            c.calls.push(`reset ${input.node}`);
            const v = c.views.get(input.node) as NodeView;
            c.views.set(input.node, { ...v, etcdService: 'Preparing', etcdHealthy: null, members: null, status: null });
          }),
        },
      }),
    },
  });
  return { machine, calls: c.calls };
}

describe('a call whose node does not answer (rebooting)', () => {
  it('Bootstrap: tried again past five tries while the node is silent, then accepted', async () => {
    const { machine, calls } = cluster({ bootstrapFailures: 9 });
    const end = await runAnsweringRecommended(machine);
    expect(end.prompt?.question ?? null).toBeNull();
    expect(end.outcome).toBe('recovered');
    expect(calls.filter((c) => c.startsWith('bootstrap'))).toHaveLength(1);
  });

  it("a node's Reset: tried again past five tries while the node is silent, then the node is prepared", async () => {
    const { machine, calls } = cluster({ resetSilent: 8 });
    const details: string[] = [];
    const end = await runAnsweringRecommended(machine, undefined, (c) => {
      for (const row of Object.values(c.rows)) if (row.prep.status === 'retrying') details.push(row.prep.detail ?? '');
    });
    // the node's row says what it waits for, not only the last refusal
    expect(details.some((d) => /^waiting for \S+ to answer again — attempt \d+, silent for \d+ s$/.test(d))).toBe(true);
    expect(end.prompt?.question ?? null).toBeNull();
    expect(end.outcome).toBe('recovered');
    expect(calls.filter((c) => c.startsWith('reset')).sort()).toEqual(NODES.map((n) => `reset ${n}`).sort());
  });

  it('a node that answers but refuses for now still gets maxAttempts tries (Bootstrap then ends failed)', async () => {
    const { machine } = cluster({ bootstrapFailures: 9, failure: notReady });
    const end = await runAnsweringRecommended(machine);
    expect(end.outcome).toBe(`failed: ${notReady(NODES[0] as string).message}`);
    expect(end.attempt?.count).toBe(5);
  });

  it('a node silent for longer than nodeAnswerTimeoutMs: no more tries (Bootstrap then ends failed, naming the node)', async () => {
    const { machine, calls } = cluster({ bootstrapFailures: 1_000_000 });
    const end = await runAnsweringRecommended(machine, 300);
    expect(end.outcome).toBe(`failed: ${silent(NODES[0] as string).message}`);
    expect(end.attempt?.awaiting?.node).toBe(NODES[0]);
    expect(calls.filter((c) => c.startsWith('bootstrap'))).toHaveLength(0);
  });
});
