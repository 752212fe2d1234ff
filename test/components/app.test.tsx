/**
 * The App driven by the real recovery machine, keystroke by keystroke, at 80×24: a lost-quorum recovery from the
 * first question to the summary, with a wrong address refused on the way; and q stopping safely at any prompt.
 * The cluster's answers come from an in-memory three-node cluster (fake-cluster.ts); the end-to-end test runs the
 * same procedure through the real binary against the simulator.
 */
import { judgeDrill } from '../../src/wizard/outcome.js';
import { afterEach, describe, expect, it } from 'vitest';
import { fromPromise } from 'xstate';
import { exitCodeFor } from '../../src/commands/interactive.js';
import { fakeCluster, NODES } from './fake-cluster.js';
import { LOST_QUORUM_DRILL, startAppScreen, typedTarget } from './app-screen.js';
import { failingOnce, withRawCopy } from '../machines/scripted-cluster.js';
import type { JournalEmit, NodeView } from '../../machines/recovery-types.js';
import type { AfterRestoreListing, HealthReading } from '../../machines/after-restore/types.js';
import { KEYS, cleanupSized, frameMatching, press, type, widest } from './helpers.js';

afterEach(cleanupSized);

/**
 * Step 10's effects for the in-memory cluster: the three control-plane nodes are every node there is, a kubelet
 * restart is recorded like the destructive calls, and the health check finds everything healthy.
 */
function withAfterRestore(cluster: ReturnType<typeof fakeCluster>) {
  const healthy = (node: string): HealthReading => ({
    node,
    role: 'controlplane',
    apidError: null,
    kubelet: { state: 'Running', healthy: true, message: null },
    servicesError: null,
    etcd: { service: 'Running', healthy: true, members: ['a', 'b', 'c'], error: null },
  });
  return cluster.machine.provide({
    actors: {
      listAfterRestoreNodes: fromPromise<AfterRestoreListing, { controlPlane: string[] }>(async ({ input }) => ({
        nodes: input.controlPlane.map((node) => ({ node, machineType: 'controlplane', hostname: null })),
        source: "The nodes come from the cluster's discovery members on 127.0.0.2 (talosctl get members).",
        workersListed: true,
      })),
      restartKubelet: fromPromise<{ reply: string }, { node: string; opId: string }>(async ({ input }) => {
        cluster.calls.push(`kubelet restart ${input.node}`);
        return { reply: 'restarted' };
      }),
      checkAfterRestore: fromPromise<HealthReading[], { nodes: { node: string; machineType: string }[] }>(
        async ({ input }) => input.nodes.map((n) => healthy(n.node)),
      ),
    },
  });
}

function start() {
  const cluster = fakeCluster();
  const { actor, screen } = startAppScreen(withAfterRestore(cluster), {
    props: {
      drill: {
        ...LOST_QUORUM_DRILL,
        timeLimitSec: 900,
        // as the drill command judges it: the scenario's expected outcome and right answer against the run
        judge: (ctx) => judgeDrill(ctx, LOST_QUORUM, 0),
      },
    },
  });
  return { cluster, actor, screen };
}

const LOST_QUORUM = {
  expectedOutcome: 'recovered' as const,
  rightAnswer: 'take a snapshot from the survivor cp-1, wipe EPHEMERAL on all three, bootstrap cp-1 from the snapshot',
};

/** Lines of the live region: the frame without the <Static> history lines written above it. */
const liveLines = (frame: string) =>
  frame
    .split('\n')
    .filter((l, i, all) => !/^[✓✗–] \d+\/10 /.test(l) || all.slice(0, i).some((p) => !/^[✓✗–] \d+\/10 /.test(p)));

describe('App on the recovery machine', () => {
  it('walks a lost-quorum recovery by keystrokes, refuses a wrong address, and ends with the score', async () => {
    const { cluster, actor, screen } = start();
    const { stdin, lastFrame } = screen;

    let f = await frameMatching(lastFrame, (x) => x.includes('Recover etcd on these control-plane nodes'));
    expect(f).toContain('DRILL');
    expect(f).toContain('step 2 of 10: Assess');
    expect(f).toContain('✓ 1/10 Connect — 3 of 3 nodes answered');
    expect(f).toContain('[Y/n]');
    await press(stdin, 'y');

    f = await frameMatching(lastFrame, (x) => x.includes('Where should the snapshot come from?'));
    expect(f).toContain('step 3 of 10: Snapshot');
    expect(f).toMatch(/❯ 1\. take a consistent snapshot from 127\.0\.0\.2 \(freshest member\)[\s│]+\(recommended\)/);
    // the node table shows the quorum-lost cluster
    expect(f).toMatch(/127\.0\.0\.3\s+\S+\s+yes\s+cp\s+Failed\s+bad/);
    await press(stdin, KEYS.enter);

    // Prepare: every node is wiped only after its address is typed. A wrong address is refused and counted.
    f = await frameMatching(lastFrame, (x) => x.includes('Destructive:'));
    expect(f).toContain('step 6 of 10: Prepare nodes');
    const first = /Type (\S+) to confirm/.exec(f)?.[1] as string;
    const wrong = NODES.find((n) => n !== first) as string;
    await type(stdin, wrong);
    await press(stdin, KEYS.enter);
    f = await frameMatching(lastFrame, (x) => x.includes('is not the target node'));
    expect(f).toContain(`"${wrong}" is not the target node; type ${first} exactly`);
    expect(cluster.calls.filter((c) => c.startsWith('reset'))).toEqual([]);

    const confirmed: string[] = [];
    for (let i = 0; i < NODES.length; i++) {
      f = await frameMatching(
        lastFrame,
        (x) => x.includes('Destructive: Wipe') && !confirmed.some((n) => x.includes(`Type ${n} to confirm`)),
      );
      const target = typedTarget(f);
      await type(stdin, target);
      await press(stdin, KEYS.enter);
      confirmed.push(target);
    }
    expect([...confirmed].sort()).toEqual([...NODES].sort());

    // Bootstrap: typed again, for the node that receives the snapshot.
    f = await frameMatching(lastFrame, (x) => x.includes('Destructive: Upload the snapshot to'));
    expect(f).toContain('step 8 of 10: Bootstrap');
    const bootstrapNode = /Type (\S+) to confirm/.exec(f)?.[1] as string;
    await type(stdin, bootstrapNode);
    await press(stdin, KEYS.enter);

    // Step 10: the kubelet restarts are asked once, yes by default
    f = await frameMatching(lastFrame, (x) => x.includes('Restart kubelet'), 5000);
    expect(f).toContain('step 10 of 10: After the restore');
    expect(f).toContain('[Y/n]');
    await press(stdin, 'y');

    f = await frameMatching(lastFrame, (x) => x.includes('outcome: recovered'), 5000);
    expect(f).toContain('✓ etcd recovered');
    expect(f).toContain('Drill score — lost-quorum');
    // the trainer's verdict on the call, in the final frame that stays on screen
    expect(f).toContain('✓ correct call: etcd is back from the freshest data, nothing lost');
    expect(f).not.toContain('right answer');
    expect(f).toContain('data lost: none');
    expect(f).toContain('mistakes the guards stopped: 1');
    expect(f).toContain(`You typed "${wrong}", but this step acts on ${first}`);
    expect(f).toContain('Run `talosctl health`');
    // history: every finished step was written once, above the live region
    for (const n of [1, 2, 3, 4, 6, 7, 8, 9, 10]) expect(f).toMatch(new RegExp(`✓ ${n}/10 `));
    expect(f).toMatch(/– 5\/10 Init nodes — no init node/);
    expect(f.trimEnd().split('\n').at(-1)).toBe('outcome: recovered');

    await screen.waitUntilExit();
    expect(exitCodeFor(actor)).toBe(0);
    expect(cluster.calls).toEqual([
      'snapshot 127.0.0.2',
      ...confirmed.map((n) => `reset ${n}`),
      `upload ${bootstrapNode}`,
      `bootstrap ${bootstrapNode}`,
      ...NODES.map((n) => `kubelet restart ${n}`),
    ]);
    // at 80×24 the live region always stayed shorter than the terminal, and no line was wider than it
    for (const frame of screen.frames) {
      expect(liveLines(frame).length).toBeLessThan(24);
      expect(widest(frame)).toBeLessThanOrEqual(80);
    }
    actor.stop();
  });

  it('q stops safely: the machine journals the stop, the screen names the resume command, exit code 3', async () => {
    const { cluster, actor, screen } = start();
    await frameMatching(screen.lastFrame, (x) => x.includes('[Y/n]'));
    await press(screen.stdin, 'y');
    await frameMatching(screen.lastFrame, (x) => x.includes('Where should the snapshot come from?'));
    await press(screen.stdin, 'q');
    const f = await frameMatching(screen.lastFrame, (x) => x.includes('To continue'));
    expect(f).toContain('Stopped at step 3 of 10: Snapshot. Your progress is saved in /tmp/incident.');
    expect(f).toMatch(/To continue:\n *talos-dr resume \/tmp\/incident(\n|$)/);
    await screen.waitUntilExit();
    expect(actor.getSnapshot().context.outcome).toBe('stopped-by-user');
    expect(exitCodeFor(actor)).toBe(3);
    expect(cluster.calls).toEqual([]);
    actor.stop();
  });

  it('while an address is typed, q is a letter and Ctrl-C is the way out', async () => {
    const { actor, screen } = start();
    await frameMatching(screen.lastFrame, (x) => x.includes('[Y/n]'));
    await press(screen.stdin, 'y');
    await frameMatching(screen.lastFrame, (x) => x.includes('Where should the snapshot come from?'));
    await press(screen.stdin, KEYS.enter);
    await frameMatching(screen.lastFrame, (x) => x.includes('Destructive:'));
    await press(screen.stdin, 'q');
    let f = await frameMatching(screen.lastFrame, (x) => x.includes('to confirm: q'));
    expect(f).toContain('Ctrl-C quit (saved)');
    expect(f).not.toContain('q quit');
    await press(screen.stdin, KEYS.ctrlC);
    f = await frameMatching(screen.lastFrame, (x) => x.includes('To continue'));
    expect(f).toContain('Stopped at step 6 of 10: Prepare nodes');
    await screen.waitUntilExit();
    expect(exitCodeFor(actor)).toBe(3);
    actor.stop();
  });

  it('keeps the node table live between steps and says how long a silent node has not answered', async () => {
    const cluster = fakeCluster();
    const { actor, screen } = startAppScreen(cluster.machine, {
      props: { refreshNodes: cluster.refresh, refreshMs: 100 },
    });
    // Before the assessment the machine has read nothing, yet the table already shows each node's etcd.
    let f = await frameMatching(screen.lastFrame, (x) => x.includes('[Y/n]') && x.includes('Failed'));
    expect(f).toMatch(/127\.0\.0\.2\s+\S+\s+yes\s+cp\s+Running\s+bad\s+3\s+48213/);
    // A node stops answering: its row says so, and for how long.
    cluster.views.set('127.0.0.4', {
      ...(cluster.views.get('127.0.0.4') as NodeView),
      reachable: false,
      etcdService: null,
      etcdHealthy: null,
    });
    // "no 1s", or a later second when a loaded machine draws its first frame of the silence late
    f = await frameMatching(screen.lastFrame, (x) => /127\.0\.0\.4\s+\S+\s+no [1-9]\d*s/.test(x), 8000);
    expect(f).toContain('[Y/n]');
    actor.stop();
  });

  it('a raw copy: the reason typed to accept skip-hash-check is journalled by the machine with the decision', async () => {
    const cluster = fakeCluster();
    const machine = withRawCopy(cluster);
    const journal: JournalEmit['entry'][] = [];
    const { actor, screen } = startAppScreen(machine, {
      beforeStart: (a) => a.on('journal', (e) => journal.push(e.entry)),
    });
    await frameMatching(screen.lastFrame, (x) => x.includes('[Y/n]'));
    await press(screen.stdin, 'y');
    await frameMatching(screen.lastFrame, (x) => x.includes('Where should the snapshot come from?'));
    await press(screen.stdin, KEYS.enter);
    await frameMatching(screen.lastFrame, (x) => x.includes('skip-hash-check') && x.includes('Risk:'));
    await type(screen.stdin, 'accept');
    await press(screen.stdin, KEYS.enter);
    await frameMatching(screen.lastFrame, (x) => x.includes('Reason (journalled):'));
    await type(screen.stdin, 'the snapshot API fails on every node');
    await press(screen.stdin, KEYS.enter);
    await frameMatching(screen.lastFrame, (x) => x.includes('Destructive:'));
    const ack = journal.find((j) => j.kind === 'confirmation' && /skip-hash-check/.test(j.what));
    expect(ack).toMatchObject({
      by: 'trainee',
      result: 'acknowledge, reason: "the snapshot API fails on every node"',
      data: { reason: 'the snapshot API fails on every node' },
    });
    expect(actor.getSnapshot().context.skipHashCheckAcknowledged).toBe(true);
    actor.stop();
  });

  it('a failure asks "Try again?" as y/N: y tries again, for a step (connect) and for a node preparation', async () => {
    const cluster = fakeCluster();
    const machine = failingOnce(cluster);
    const { actor, screen } = startAppScreen(machine);
    let f = await frameMatching(screen.lastFrame, (x) => x.includes('connect failed. Try again?'));
    expect(f).toContain('the talosconfig CA does not match');
    expect(f).toContain('[Y/n]');
    await press(screen.stdin, 'y');
    await frameMatching(screen.lastFrame, (x) => x.includes('Recover etcd on these control-plane nodes'));
    await press(screen.stdin, 'y');
    await frameMatching(screen.lastFrame, (x) => x.includes('Where should the snapshot come from?'));
    await press(screen.stdin, KEYS.enter);
    const confirmed: string[] = [];
    for (let i = 0; i < NODES.length; i++) {
      f = await frameMatching(
        screen.lastFrame,
        (x) => x.includes('Destructive: Wipe') && !confirmed.some((n) => x.includes(`Type ${n} to confirm`)),
      );
      const target = typedTarget(f);
      await type(screen.stdin, target);
      await press(screen.stdin, KEYS.enter);
      confirmed.push(target);
    }
    f = await frameMatching(screen.lastFrame, (x) => /Preparing \S+ failed\. Try again\?/.test(x), 4000);
    expect(f).toContain('connection refused');
    expect(f).toContain('[Y/n]');
    await press(screen.stdin, 'y');
    await frameMatching(screen.lastFrame, (x) => x.includes('Destructive: Upload the snapshot to'), 4000);
    expect(cluster.calls.filter((c) => c.startsWith('reset')).sort()).toEqual(NODES.map((n) => `reset ${n}`).sort());
    actor.stop();
  });

  it('? opens the help over the panel and Esc closes it', async () => {
    const { actor, screen } = start();
    await frameMatching(screen.lastFrame, (x) => x.includes('[Y/n]'));
    await press(screen.stdin, '?');
    let f = await frameMatching(screen.lastFrame, (x) => x.includes('Help — press ? or Esc to close'));
    expect(f).toContain('talos-dr resume /tmp/incident');
    expect(f).not.toContain('[Y/n]');
    expect(liveLines(f).length).toBeLessThan(24);
    expect(widest(f)).toBeLessThanOrEqual(80);
    // keys meant for the prompt do nothing while help is open
    await press(screen.stdin, 'y');
    expect(actor.getSnapshot().context.steps[1]?.status).toBe('pending');
    await press(screen.stdin, KEYS.esc);
    f = await frameMatching(screen.lastFrame, (x) => x.includes('[Y/n]'));
    expect(f).not.toContain('Help —');
    actor.stop();
  });
});
