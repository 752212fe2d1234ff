/**
 * A restore that fails inside etcd after Bootstrap was accepted: the bootstrap node's etcd service ends Failed with
 * "Failed to run pre stage: error recovering from the snapshot: …" (siderolabs/talos
 * internal/app/machined/pkg/system/services/etcd.go@v1.13.9:594, service_runner.go@v1.13.9:279,
 * system.go@v1.13.9:195-200) while step 9 watches. While no other member holds data, step 9 hands the node to step 8's
 * question after a failed restore ("Wipe <node> again and upload the snapshot again?"), and a yes is the next round
 * under its own operation ids (reset:<n>:restore-1, upload:<n>:r1:<k>, bootstrap:<n>:r1), so a resume never sends
 * anything twice. Once another member serves the restored data, the run still ends failed: a new wipe there would
 * start a second cluster beside it.
 */
import { describe, expect, it } from 'vitest';
import { createActor, fromCallback, fromPromise, waitFor } from 'xstate';
import { fakeCluster, NODES } from '../components/fake-cluster.js';
import type { NodeView, RecoveryEvent, RecoveryMachine } from '../../machines/recovery.js';

const PRE_STAGE_FAILED =
  'Failed to run pre stage: error recovering from the snapshot: snapshot file integrity check failed. 2 errors found';

interface Script {
  /** another node has joined and serves etcd when the bootstrap node's restore fails */
  otherJoined?: boolean;
}

/** Bootstrap is accepted every time; the first restore then fails inside etcd, the next one restores. */
function clusterWhoseRestoreFails(script: Script = {}) {
  const cluster = fakeCluster();
  const asked: string[] = [];
  const set = (node: string, patch: Partial<NodeView>) =>
    cluster.views.set(node, { ...(cluster.views.get(node) as NodeView), ...patch });
  const preparing = (node: string) =>
    set(node, {
      reachable: true,
      etcdService: 'Preparing',
      etcdHealthy: null,
      etcdLastEvent: 'Waiting for bootstrap',
      etcdEvents: ['Waiting for bootstrap'],
      members: null,
      status: null,
    });
  const machine: RecoveryMachine = cluster.machine.provide({
    actors: {
      resetNode: fromPromise<void, { node: string; labels: string[]; opId: string }>(async ({ input }) => {
        asked.push(input.opId);
        preparing(input.node);
      }),
      uploadSnapshot: fromCallback<RecoveryEvent, { node: string; file: string; bytes: number; opId: string }>(
        ({ sendBack, input }) => {
          asked.push(input.opId);
          const t = setTimeout(() => sendBack({ type: 'upload.done' }), 2);
          return () => clearTimeout(t);
        },
      ),
      bootstrapNode: fromPromise<
        { alreadyDone: boolean },
        { node: string; skipHashCheck: boolean; opId: string; wiped: boolean; uploadSent: boolean }
      >(async ({ input }) => {
        asked.push(input.opId);
        if (asked.filter((id) => id.startsWith('bootstrap:')).length === 1) {
          // accepted; the restore then fails in etcd's pre stage and the service stays Failed
          set(input.node, {
            etcdService: 'Failed',
            etcdHealthy: false,
            etcdLastEvent: PRE_STAGE_FAILED,
            etcdEvents: ['Bootstrap requested', 'Starting service', PRE_STAGE_FAILED],
            members: null,
            status: null,
          });
          if (script.otherJoined) {
            const other = NODES[1] as string;
            set(other, {
              etcdService: 'Running',
              etcdHealthy: false,
              status: { memberId: '2b3c4d5e6f708192', leader: '0', errors: [], raftAppliedIndex: '4830' },
            });
          }
          return { alreadyDone: false };
        }
        const members = NODES.map((n, i) => ({
          id: `${i + 1}`.repeat(16),
          hostname: `cp-${i + 1}`,
          peerUrls: [`https://${n}:2380`],
          clientUrls: [`https://${n}:2379`],
          isLearner: false,
        }));
        for (const [i, n] of NODES.entries())
          set(n, {
            etcdService: 'Running',
            etcdHealthy: true,
            etcdLastEvent: 'Health check successful',
            members,
            status: { memberId: `${i + 1}`.repeat(16), leader: '1'.repeat(16), errors: [], raftAppliedIndex: '9' },
          });
        return { alreadyDone: false };
      }),
    },
  });
  return { cluster, machine, asked };
}

const INPUT = { nodes: NODES, operator: 'alice', mode: 'recover' as const, timing: { pollMs: 5, backoffMs: 5 } };
type Actor = ReturnType<typeof createActor<RecoveryMachine>>;
const NODE = NODES[0] as string;

/** Answers every question with its recommended answer until the one with this id is asked. */
async function until(actor: Actor, id: RegExp) {
  for (;;) {
    const s = await waitFor(actor, (x) => x.context.prompt !== null || x.status === 'done', { timeout: 3000 });
    const p = s.context.prompt;
    if (!p) throw new Error(`ended ${String(s.context.outcome)} before a question matching ${id}`);
    if (id.test(p.id)) return p;
    actor.send(p.recommended as RecoveryEvent);
    await waitFor(actor, (x) => x.context.promptSeq !== s.context.promptSeq || x.context.prompt === null, {
      timeout: 3000,
    });
  }
}

const restored = (actor: Actor) =>
  waitFor(actor, (s) => s.matches({ procedure: 'afterRestore' }) || s.status === 'done', { timeout: 3000 });

describe('step 9: the restore fails inside etcd after Bootstrap was accepted', () => {
  it('offers a new wipe and upload of the bootstrap node, then does them under the next round ids', async () => {
    const { machine, asked } = clusterWhoseRestoreFails();
    const actor = createActor(machine, { input: INPUT });
    actor.start();
    const prompt = await until(actor, /^rewipe:/);
    expect(prompt).toMatchObject({ id: `rewipe:${NODE}:1`, kind: 'typed-address', target: NODE });
    expect(prompt.question).toBe(`Wipe ${NODE} again and upload the snapshot again?`);
    expect(prompt.detail).toContain('error recovering from the snapshot');
    const s = actor.getSnapshot();
    expect(s.context.outcome).toBeNull();
    expect(s.context.steps.find((x) => x.name === 'verify')?.result).toContain('the restore failed');

    actor.send({ type: 'confirm', address: NODE });
    await restored(actor);
    expect(actor.getSnapshot().matches({ procedure: 'afterRestore' })).toBe(true);
    expect(asked.filter((id) => !id.startsWith('reset:') || id.includes('restore'))).toEqual([
      `upload:${NODE}:0`,
      `bootstrap:${NODE}`,
      `reset:${NODE}:restore-1`,
      `upload:${NODE}:r1:0`,
      `bootstrap:${NODE}:r1`,
    ]);
    actor.stop();
  });

  it('No stops; resumed, the same question (the failed Bootstrap is not sent again)', async () => {
    const { machine, asked } = clusterWhoseRestoreFails();
    const actor = createActor(machine, { input: INPUT });
    actor.start();
    await until(actor, /^rewipe:/);
    actor.send({ type: 'answer.no' });
    expect(actor.getSnapshot().context.outcome).toBe('stopped-by-user');
    actor.send({ type: 'resume' });
    const again = await until(actor, /^rewipe:/);
    expect(again.id).toBe(`rewipe:${NODE}:1`);
    expect(asked.filter((id) => id.startsWith('bootstrap:'))).toEqual([`bootstrap:${NODE}`]);
    actor.stop();
  });

  it('another member already serves the restored data: the run ends failed, nothing is wiped again', async () => {
    const { machine, asked } = clusterWhoseRestoreFails({ otherJoined: true });
    const actor = createActor(machine, { input: INPUT });
    actor.start();
    await expect(until(actor, /^rewipe:/)).rejects.toThrow(/ended failed: .*the restore failed/);
    expect(asked.some((id) => id.includes('restore-'))).toBe(false);
    actor.stop();
  });
});
