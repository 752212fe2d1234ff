/**
 * Step 10 by keystrokes: the App on the real recovery machine (the in-memory lost-quorum cluster of
 * test/components/fake-cluster.ts, the step's own effects scripted, a worker among the nodes listed) is walked to the
 * kubelet question; the screen shows step 10 of 10 and asks it with its default yes; `n` declines, nothing is
 * restarted, the by-hand command is kept as a warning, and the recovery still ends recovered.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { fromPromise } from 'xstate';
import { startAppScreen, flat, typedTarget } from '../components/app-screen.js';
import { fakeCluster, NODES } from '../components/fake-cluster.js';
import { KEYS, cleanupSized, frameMatching, press, type } from '../components/helpers.js';
import type { AfterRestoreListing, HealthReading } from '../../machines/after-restore/types.js';

afterEach(cleanupSized);

const WORKER = '127.0.0.9';

/** The listing with discovery on (the worker found) or off (Talos lists no members: only the given nodes known). */
const DISCOVERED: AfterRestoreListing = {
  nodes: [
    ...NODES.map((node) => ({ node, machineType: 'controlplane', hostname: null })),
    { node: WORKER, machineType: 'worker', hostname: 'worker-1' },
  ],
  source: "The nodes come from the cluster's discovery members on 127.0.0.2 (talosctl get members).",
  workersListed: true,
};
const UNDISCOVERED: AfterRestoreListing = {
  nodes: NODES.map((node) => ({ node, machineType: 'controlplane', hostname: null })),
  source: `The workers could not be listed (${NODES[0]} lists no discovery members (is cluster discovery disabled?)).`,
  workersListed: false,
};

function start(listing: AfterRestoreListing = DISCOVERED) {
  const cluster = fakeCluster();
  const restarts: string[] = [];
  const healthy = (node: string): HealthReading => ({
    node,
    role: node === WORKER ? 'worker' : 'controlplane',
    apidError: null,
    kubelet: { state: 'Running', healthy: true, message: null },
    servicesError: null,
    etcd: node === WORKER ? null : { service: 'Running', healthy: true, members: ['a', 'b', 'c'], error: null },
  });
  const machine = cluster.machine.provide({
    actors: {
      listAfterRestoreNodes: fromPromise<AfterRestoreListing, { controlPlane: string[] }>(async () => listing),
      restartKubelet: fromPromise<{ reply: string }, { node: string; opId: string }>(async ({ input }) => {
        restarts.push(input.node);
        return { reply: 'restarted' };
      }),
      checkAfterRestore: fromPromise<HealthReading[], { nodes: { node: string; machineType: string }[] }>(
        async ({ input }) => input.nodes.map((n) => healthy(n.node)),
      ),
    },
  });
  const { actor, screen } = startAppScreen(machine, {
    props: { drill: { scenario: 'lost-quorum', timeLimitSec: 900, dataLost: () => 'none' } },
  });
  return { actor, screen, restarts };
}

/** Keys from the first question to the end of the restore: yes, the recommended snapshot, each address typed. */
async function restoreByKeys(screen: ReturnType<typeof start>['screen']): Promise<void> {
  const { stdin, lastFrame } = screen;
  await frameMatching(lastFrame, (x) => x.includes('Recover etcd on these control-plane nodes'));
  await press(stdin, 'y');
  await frameMatching(lastFrame, (x) => x.includes('Where should the snapshot come from?'));
  await press(stdin, KEYS.enter);
  // every wipe, then the bootstrap, confirmed by typing the node's address
  const confirmed: string[] = [];
  for (let i = 0; i < NODES.length; i++) {
    const wipe = await frameMatching(
      lastFrame,
      (x) => x.includes('Destructive: Wipe') && !confirmed.some((n) => x.includes(`Type ${n} to confirm`)),
    );
    const target = typedTarget(wipe);
    await type(stdin, target);
    await press(stdin, KEYS.enter);
    confirmed.push(target);
  }
  const boot = await frameMatching(lastFrame, (x) => x.includes('Destructive: Upload the snapshot to'));
  await type(stdin, typedTarget(boot));
  await press(stdin, KEYS.enter);
}

describe('step 10 by keystrokes', () => {
  it('asks to restart kubelet on every node, workers included; n declines and the recovery still ends recovered', async () => {
    const { actor, screen, restarts } = start();
    const { stdin, lastFrame } = screen;
    await restoreByKeys(screen);
    let f = await frameMatching(lastFrame, (x) => x.includes('Restart kubelet'), 5000);
    expect(f).toContain('step 10 of 10: After the restore');
    // the question as one line (the screen wraps it at 80 columns)
    expect(flat(f)).toContain('Restart kubelet on all 4 nodes (3 control-plane nodes and 1 worker), one at a time?');
    expect(f).toContain('[Y/n]');
    await press(stdin, 'n');

    f = await frameMatching(lastFrame, (x) => x.includes('outcome: recovered'), 5000);
    expect(f).toContain('✓ etcd recovered');
    expect(f).toContain('✓ 10/10 After the restore — kubelet restarts declined');
    // the by-hand command is kept as a warning (journal and report) and in the step's row
    expect(actor.getSnapshot().context.warnings.at(-1)).toBe(
      `Restart kubelet on every node by hand so no watch cache keeps the revisions the restore took back: \`talosctl -n ${[...NODES, WORKER].join(',')} service kubelet restart\`.`,
    );
    expect(restarts).toEqual([]);
    expect(actor.getSnapshot().context.afterRestore?.decision).toBe('declined');
    await screen.waitUntilExit();
    actor.stop();
  });

  it('without discovery: the screen says the workers could not be found; Enter takes the control-plane nodes only', async () => {
    const { actor, screen, restarts } = start(UNDISCOVERED);
    const { stdin, lastFrame } = screen;
    await restoreByKeys(screen);
    const ask = await frameMatching(lastFrame, (x) => x.includes('The workers could not be found'), 5000);
    const line = flat(ask);
    expect(line).toContain('The workers could not be found: only the 3 control-plane nodes are known.');
    expect(line).toContain('lists no discovery members (is cluster discovery disabled?)');
    // typing them is offered; the cursor starts on the explicit control-plane-only choice
    expect(line).toContain("1. type the workers' addresses");
    expect(line).toMatch(/❯ 2\. the control-plane nodes only/);
    await press(stdin, KEYS.enter);
    const f = await frameMatching(lastFrame, (x) => x.includes('Restart kubelet'), 5000);
    expect(flat(f)).toContain('Restart kubelet on all 3 nodes (3 control-plane nodes), one at a time?');
    await press(stdin, 'y');
    await frameMatching(lastFrame, (x) => x.includes('outcome: recovered'), 5000);
    expect(restarts).toEqual(NODES);
    expect(actor.getSnapshot().context.afterRestore?.workersAnswer).toBe('control-plane-only');
    await screen.waitUntilExit();
    actor.stop();
  });
});
