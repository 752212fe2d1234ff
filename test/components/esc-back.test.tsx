/**
 * Issue 17 item 4: "Esc back" at a typed-address prompt does what the key bar says. At the first wipe nothing has
 * been touched, so Esc goes back to the choice of snapshot (and the steps after it run again); once a node's wipe has
 * started there is no way back: Esc is not offered, pressing it changes nothing, and the prompt says why. Driven by
 * keystrokes through the App on the real recovery machine and the in-memory cluster, at 80×24.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { fakeCluster } from './fake-cluster.js';
import { flat, keyBar, liveRegion, LOST_QUORUM_DRILL, startAppScreen, typedTarget } from './app-screen.js';
import { KEYS, cleanupSized, flush, frameMatching, press } from './helpers.js';

afterEach(() => cleanupSized());

function start() {
  const cluster = fakeCluster();
  return { cluster, ...startAppScreen(cluster.machine, { props: { drill: LOST_QUORUM_DRILL } }) };
}

describe('Esc at a typed-address prompt', () => {
  it('goes back to the snapshot choice from the first wipe; after a wipe started, it is not offered and does nothing', async () => {
    const s = start();
    await frameMatching(s.lastFrame, (x) => x.includes('Recover etcd on these control-plane nodes'));
    await press(s.stdin, 'y');
    await frameMatching(s.lastFrame, (x) => x.includes('Where should the snapshot come from?'));
    await press(s.stdin, KEYS.enter);
    let f = await frameMatching(s.lastFrame, (x) => x.includes('Destructive: Wipe'));
    expect(keyBar(f)).toContain('Esc back');

    // Esc: the choice of snapshot again, nothing wiped, the steps after it pending again
    await press(s.stdin, KEYS.esc);
    f = await frameMatching(s.lastFrame, (x) => x.includes('Where should the snapshot come from?'));
    expect(s.cluster.calls).toEqual(['snapshot 127.0.0.2']);
    const { context } = s.actor.getSnapshot();
    expect(context.confirmed).toEqual([]);
    expect(context.steps.filter((r) => r.n >= 4).every((r) => r.status === 'pending')).toBe(true);
    expect(context.steps.find((r) => r.name === 'snapshot')?.status).toBe('active');

    // chosen again, on to the first wipe; confirmed, the next wipe has no way back
    await press(s.stdin, KEYS.enter);
    f = await frameMatching(s.lastFrame, (x) => x.includes('Destructive: Wipe'));
    const first = typedTarget(f);
    await press(s.stdin, `${first}\n`);
    f = await frameMatching(
      s.lastFrame,
      (x) => x.includes('Destructive: Wipe') && typedTarget(x) !== first && typedTarget(x) !== '',
    );
    const second = typedTarget(f);
    expect(keyBar(f)).not.toContain('Esc');
    expect(flat(liveRegion(f))).toContain(`There is no way back from here: ${first} is already being prepared.`);
    await press(s.stdin, KEYS.esc);
    await flush();
    expect(s.actor.getSnapshot().context.prompt?.target).toBe(second);
    expect(s.actor.getSnapshot().context.confirmed).toEqual([first]);
    s.actor.stop();
  });
});
