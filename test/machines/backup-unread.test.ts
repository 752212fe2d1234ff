/**
 * Step 4 of a full recovery reads every node again to back up its configuration and plan its preparation. A node that
 * does not answer that read (briefly unreachable; a resumed step on a busy machine) must not be planned as nothing:
 * found by the random-kill loop, where all three nodes missed the read, step 6 prepared nobody and step 7 waited for
 * Preparing until the time limit. The wizard asks to read again; autopilot's answer reads again.
 */
import { describe, expect, it } from 'vitest';
import { createActor, fromPromise, waitFor } from 'xstate';
import { fakeCluster, NODES } from '../components/fake-cluster.js';
import type { NodeView, RecoveryEvent } from '../../machines/recovery.js';

/** The fake cluster, its `n`-th read (1 = step 2's) finding 127.0.0.4 silent. */
function silentAtRead(n: number) {
  const cluster = fakeCluster();
  let reads = 0;
  const machine = cluster.machine.provide({
    actors: {
      assess: fromPromise(async () => {
        reads++;
        const views = NODES.map((node) => cluster.views.get(node) as NodeView);
        const observations =
          reads === n
            ? views.map((v) =>
                v.node === '127.0.0.4'
                  ? {
                      ...v,
                      reachable: false,
                      machineType: 'unknown' as const,
                      error: '127.0.0.4 did not answer in time',
                      etcdService: null,
                    }
                  : v,
              )
            : views;
        return { observations, volumes: {} };
      }),
    },
  });
  const actor = createActor(machine, {
    input: { nodes: NODES, operator: 'alice', mode: 'recover', timing: { pollMs: 5, backoffMs: 5 } },
  });
  actor.start();
  return { actor, cluster };
}

type Actor = ReturnType<typeof silentAtRead>['actor'];

async function answerUntil(actor: Actor, id: RegExp) {
  for (;;) {
    const s = await waitFor(actor, (x) => x.context.prompt !== null || x.status === 'done', { timeout: 5000 });
    const p = s.context.prompt;
    if (!p || id.test(p.id)) return s;
    actor.send(p.recommended as RecoveryEvent);
    await waitFor(actor, (x) => x.context.promptSeq !== s.context.promptSeq || x.context.prompt === null, {
      timeout: 5000,
    });
  }
}

describe('step 4 never plans a node it could not read', () => {
  it('asks to read again instead of leaving the silent node out of the plan, and then prepares all three', async () => {
    const { actor, cluster } = silentAtRead(2);
    const asked = await answerUntil(actor, /^backup-unread$/);
    expect(asked.context.prompt?.question).toMatch(/^127\.0\.0\.4 did not answer just now\. Read every node again\?$/);
    expect(asked.context.plan).toHaveLength(2); // read, not yet acted on: nothing is prepared from this plan
    actor.send({ type: 'choose', option: 'again' });
    const end = await answerUntil(actor, /^never$/);
    expect(end.context.outcome).toBe('recovered');
    expect(end.context.plan.map((p) => p.node).sort()).toEqual([...NODES].sort());
    expect(cluster.calls.filter((c) => c.startsWith('reset')).sort()).toEqual(NODES.map((n) => `reset ${n}`).sort());
    actor.stop();
  });

  it('stop ends resumable, with nothing wiped', async () => {
    const { actor, cluster } = silentAtRead(2);
    await answerUntil(actor, /^backup-unread$/);
    actor.send({ type: 'choose', option: 'stop' });
    expect(actor.getSnapshot().value).toBe('stoppedByUser');
    expect(cluster.calls.some((c) => c.startsWith('reset'))).toBe(false);
    actor.stop();
  });
});
