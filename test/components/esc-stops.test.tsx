/**
 * Issue 17 item 4, "everywhere a key is shown, it works": at a typed question whose No stops the run (the failed
 * restore's "Wipe <node> again and upload the snapshot again?"), Esc answers No and the run stops, resumable. The key
 * bar and the refusal under the field must say that, not "back". Driven by keystrokes through the App on the real
 * recovery machine and the in-memory cluster whose first restore fails, at 80×24.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { fromPromise } from 'xstate';
import type { NodeView } from '../../machines/recovery.js';
import { fakeCluster, NODES } from './fake-cluster.js';
import { flat, keyBar, liveRegion, LOST_QUORUM_DRILL, startAppScreen, typedTarget } from './app-screen.js';
import { KEYS, cleanupSized, frameMatching, press, type } from './helpers.js';

afterEach(() => cleanupSized());

const NODE = NODES[0] as string;

function start() {
  const cluster = fakeCluster();
  const machine = cluster.machine.provide({
    actors: {
      // the restore ran and failed: the data directory is not empty, so Bootstrap is refused (facts §4)
      bootstrapNode: fromPromise<
        { alreadyDone: boolean },
        { node: string; skipHashCheck: boolean; opId: string; wiped: boolean; uploadSent: boolean }
      >(async ({ input }) => {
        cluster.calls.push(`bootstrap ${input.node}`);
        cluster.views.set(input.node, {
          ...(cluster.views.get(input.node) as NodeView),
          etcdService: 'Failed',
          etcdLastEvent: 'Failed to run pre stage: error recovering from the snapshot',
        });
        throw Object.assign(
          new Error(`${input.node}'s etcd data directory is not empty after a restore that did not finish.`),
          { restoreFailed: true },
        );
      }),
    },
  });
  return { cluster, ...startAppScreen(machine, { props: { drill: LOST_QUORUM_DRILL } }) };
}

describe('Esc at the failed restore’s question', () => {
  it('is named for what it does: the key bar and the refusal say it stops (resumable), and it does', async () => {
    const s = start();
    await frameMatching(s.lastFrame, (x) => x.includes('Recover etcd on these control-plane nodes'));
    await press(s.stdin, 'y');
    await frameMatching(s.lastFrame, (x) => x.includes('Where should the snapshot come from?'));
    await press(s.stdin, KEYS.enter);
    // every wipe, then the upload and Bootstrap, each confirmed by typing the node's address
    for (;;) {
      const f = await frameMatching(s.lastFrame, (x) => typedTarget(x) !== '', 5000);
      if (f.includes('again and upload')) break;
      const seq = s.actor.getSnapshot().context.promptSeq;
      await type(s.stdin, typedTarget(f));
      await press(s.stdin, KEYS.enter);
      await frameMatching(s.lastFrame, () => s.actor.getSnapshot().context.promptSeq !== seq, 5000);
    }
    let f = await frameMatching(s.lastFrame, (x) =>
      flat(x).includes(`Wipe ${NODE} again and upload the snapshot again?`),
    );
    expect(keyBar(f)).toContain('Esc no, stop (resumable)');
    expect(keyBar(f)).not.toContain('Esc back');

    // Enter on an empty field: the refusal names Esc for what it does
    await press(s.stdin, KEYS.enter);
    f = await frameMatching(s.lastFrame, (x) => x.includes('✗'));
    expect(flat(liveRegion(f))).toContain(`Type the node's address, ${NODE}, to confirm; Esc stops here (resumable).`);
    expect(flat(liveRegion(f))).not.toContain('goes back');

    // and Esc does that: the run stops, resumable, nothing wiped again
    const resets = s.cluster.calls.filter((c) => c.startsWith('reset')).length;
    await press(s.stdin, KEYS.esc);
    await frameMatching(s.lastFrame, () => s.actor.getSnapshot().value === 'stoppedByUser');
    expect(s.actor.getSnapshot().context.outcome).toBe('stopped-by-user');
    expect(s.cluster.calls.filter((c) => c.startsWith('reset')).length).toBe(resets);
    s.actor.stop();
  });

  it('where Esc goes back (the first wipe), the key bar still says back', async () => {
    const s = start();
    await frameMatching(s.lastFrame, (x) => x.includes('Recover etcd on these control-plane nodes'));
    await press(s.stdin, 'y');
    await frameMatching(s.lastFrame, (x) => x.includes('Where should the snapshot come from?'));
    await press(s.stdin, KEYS.enter);
    const f = await frameMatching(s.lastFrame, (x) => x.includes('Destructive: Wipe'));
    expect(keyBar(f)).toContain('Esc back');
    s.actor.stop();
  });
});
