/**
 * Issue 17 item 4: "Esc back" at a typed-address prompt does what the key bar says. At the first wipe nothing has
 * been touched, so Esc goes back to the choice of snapshot (and the steps after it run again); once a node's wipe has
 * started there is no way back: Esc is not offered, pressing it changes nothing, and the prompt says why. Driven by
 * keystrokes through the App on the real recovery machine and the in-memory cluster, at 80×24.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createActor } from 'xstate';
import { App } from '../../components/App.js';
import { fakeCluster, NODES } from './fake-cluster.js';
import { KEYS, cleanupSized, flush, frameMatching, press, renderSized } from './helpers.js';

afterEach(() => cleanupSized());

function start() {
  const cluster = fakeCluster();
  const actor = createActor(cluster.machine, {
    input: { nodes: NODES, operator: 'trainee', mode: 'drill', timing: { pollMs: 20, backoffMs: 10 } },
  });
  actor.start();
  const screen = renderSized(
    <App
      actor={actor}
      incidentDir="/tmp/incident"
      context="talos-dr-sim"
      endpoint={() => '127.0.0.2:50000'}
      drill={{ scenario: 'lost-quorum', dataLost: () => 'none' }}
    />,
    { columns: 80, rows: 24 },
  );
  return { cluster, actor, stdin: screen.stdin, lastFrame: screen.lastFrame };
}

const liveRegion = (frame: string) => frame.slice(frame.indexOf('talos-dr · context'));
const keyBar = (frame: string) =>
  liveRegion(frame)
    .split('\n')
    .findLast((l) => /quit \(saved\)/.test(l)) ?? '';
const target = (frame: string) => /Type (\S+) to confirm/.exec(frame)?.[1] ?? '';
const flat = (frame: string) => frame.replace(/\s+/g, ' ');

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
    const first = target(f);
    await press(s.stdin, `${first}\n`);
    f = await frameMatching(
      s.lastFrame,
      (x) => x.includes('Destructive: Wipe') && target(x) !== first && target(x) !== '',
    );
    const second = target(f);
    expect(keyBar(f)).not.toContain('Esc');
    expect(flat(liveRegion(f))).toContain(`There is no way back from here: ${first} is already being prepared.`);
    await press(s.stdin, KEYS.esc);
    await flush();
    expect(s.actor.getSnapshot().context.prompt?.target).toBe(second);
    expect(s.actor.getSnapshot().context.confirmed).toEqual([first]);
    s.actor.stop();
  });
});
