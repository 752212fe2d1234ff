/**
 * Issue 17 item 4 at steps 5 and 8: "Esc back" works wherever a typed-address prompt shows it, and is not shown where
 * going back is not safe. At the first init-node conversion nothing has been sent, so Esc goes back to the choice of
 * snapshot; once a conversion was sent, and at the bootstrap (the nodes are wiped by then), the key bar shows no Esc,
 * Esc changes nothing, and the prompt says why. Driven by keystrokes through the App on the real recovery machine and
 * the in-memory cluster (two of its nodes of type init), at 80×24.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { NodeView } from '../../machines/recovery.js';
import { fakeCluster, NODES } from './fake-cluster.js';
import { flat, keyBar, liveRegion, startAppScreen, typedTarget } from './app-screen.js';
import { KEYS, cleanupSized, flush, frameMatching, press } from './helpers.js';

afterEach(() => cleanupSized());

const INIT = [NODES[0], NODES[1]] as string[];

function start() {
  const cluster = fakeCluster();
  for (const node of INIT) cluster.views.set(node, { ...(cluster.views.get(node) as NodeView), machineType: 'init' });
  return {
    cluster,
    ...startAppScreen(cluster.machine, { props: { drill: { scenario: 'init-node', dataLost: () => 'none' } } }),
  };
}

const converting = (node: string) => (frame: string) =>
  flat(frame).includes(`Convert ${node} from init to controlplane`) && typedTarget(frame) === node;

describe('Esc at the typed-address prompts of steps 5 and 8', () => {
  it('goes back to the snapshot choice from the first conversion; after one was sent, and at the bootstrap, it is not offered and does nothing', async () => {
    const s = start();
    await frameMatching(s.lastFrame, (x) => x.includes('Recover etcd on these control-plane nodes'));
    await press(s.stdin, 'y');
    await frameMatching(s.lastFrame, (x) => x.includes('Where should the snapshot come from?'));
    await press(s.stdin, KEYS.enter);
    let f = await frameMatching(s.lastFrame, converting(INIT[0] as string));
    expect(keyBar(f)).toContain('Esc back');

    // Esc: the choice of snapshot again, nothing converted, the steps after it pending again
    await press(s.stdin, KEYS.esc);
    await frameMatching(s.lastFrame, (x) => x.includes('Where should the snapshot come from?'));
    const { context } = s.actor.getSnapshot();
    expect(context.converted).toEqual([]);
    expect(context.steps.filter((r) => r.n >= 4).every((r) => r.status === 'pending')).toBe(true);
    expect(context.steps.find((r) => r.name === 'snapshot')?.status).toBe('active');

    // chosen again; the first conversion confirmed, the second has no way back
    await press(s.stdin, KEYS.enter);
    await frameMatching(s.lastFrame, converting(INIT[0] as string));
    await press(s.stdin, `${INIT[0]}\n`);
    f = await frameMatching(s.lastFrame, converting(INIT[1] as string));
    expect(keyBar(f)).not.toContain('Esc');
    expect(flat(liveRegion(f))).toContain(
      `There is no way back from here: the conversion of ${INIT[0]} was already sent.`,
    );
    await press(s.stdin, KEYS.esc);
    await flush();
    expect(s.actor.getSnapshot().context.prompt?.target).toBe(INIT[1]);
    expect(s.actor.getSnapshot().context.converted).toEqual([INIT[0]]);

    // the first wipe after the conversions: they cannot be taken back, so Esc is not offered and does nothing
    await press(s.stdin, `${INIT[1]}\n`);
    f = await frameMatching(s.lastFrame, (x) => x.includes('Destructive: Wipe'), 4000);
    expect(keyBar(f)).not.toContain('Esc');
    const firstWipe = typedTarget(f);
    await press(s.stdin, KEYS.esc);
    await flush();
    expect(s.actor.getSnapshot().context.prompt?.target).toBe(firstWipe);
    expect(s.actor.getSnapshot().context.steps.find((r) => r.name === 'snapshot')?.status).toBe('done');

    // on through the wipes to the bootstrap: no Esc there either (every node is wiped)
    for (;;) {
      f = await frameMatching(
        s.lastFrame,
        (x) => x.includes('Destructive: Wipe') || x.includes('Destructive: Upload the snapshot to'),
        4000,
      );
      if (f.includes('Destructive: Upload the snapshot to')) break;
      const node = typedTarget(f);
      await press(s.stdin, `${node}\n`);
      await frameMatching(
        s.lastFrame,
        (x) => typedTarget(x) !== node || x.includes('Destructive: Upload the snapshot to'),
        4000,
      );
    }
    expect(keyBar(f)).not.toContain('Esc');
    expect(flat(liveRegion(f))).toMatch(/There is no way back from here: \S+, \S+, \S+ are already wiped\./);
    const bootstrapTarget = typedTarget(f);
    await press(s.stdin, KEYS.esc);
    await flush();
    expect(s.actor.getSnapshot().context.prompt?.target).toBe(bootstrapTarget);
    expect(s.cluster.calls.filter((c) => c.startsWith('upload') || c.startsWith('bootstrap'))).toEqual([]);
    s.actor.stop();
  });
});
