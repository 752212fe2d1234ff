/**
 * A Reset that reached the node, then the process died before the answer was journalled (SAFETY rule 6: never sent
 * twice). The resumed run checks the node, and a node that is slow to show the Reset must not get a second one.
 *
 * random-kills (seed 20261203) once ended member-crashloop with two Resets of the broken member. The check counted
 * "did not happen" after 3 polls counted from its own start, from any answer in which etcd's history was not visible;
 * a node that got the Reset goes down and reboots, and its first answers after the reboot can show no etcd history:
 * before its etcd service is listed (the simulator's node answers once it runs and lists etcd once its listener is
 * bound, src/sim/node.ts boot: 2.7 ms measured), or with a service list that timed out on a loaded machine while its
 * version answered. Such an answer, long after 3 polls, sent it again. Here each moment is made on purpose: the
 * restored node's boot held in it for a second (the state a kill between the drill's save of the Reset and its "after"
 * line leaves), and one lost read of the services.
 *
 * The third case is a real node's: Talos answers Reset before anything happens and first stops the pods, which takes
 * from seconds to minutes (v1alpha1_sequencer.go@v1.13.9:298-315: StopAllPods before the services stop; facts §3), so
 * for all that time the node answers with its services, etcd's history included, unchanged.
 */
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readJournal } from '../../src/journal/journal.js';
import { startSimulator } from '../../src/sim/index.js';
import { createTalosClient } from '../../src/talos/client.js';
import { loadTalosconfig } from '../../src/talos/talosconfig.js';
import { resetNode } from '../../src/wizard/destructive.js';
import { closeGrounds, SPEED, startGround, startSessionOn, type Ground } from './harness.js';
import {
  afterResults,
  DRILL_TIMING as TIMING,
  journalSent,
  LANDED,
  NOT_LANDED,
  QUICK_READS_MS,
  rebooted,
  simNode,
  sleep,
  until,
  type NodeInternals,
} from './interrupted.js';
import { effectDepsOf, losingFirstAnswer, losingReads, type Losses } from './lossy-client.js';

afterAll(closeGrounds);

const LABELS = ['EPHEMERAL'];

/** The journal as the crash left it: the Reset journalled as about to be sent, never answered. */
const resetSent = (g: Ground, node: string, opId: string) =>
  journalSent(g, { opId, node, what: 'reset EPHEMERAL (graceful=false, reboot)' });

/**
 * The Reset sent as a crash leaves it (journalled as sent, its answer never journalled) to a node that accepts it and
 * starts acting on it only `afterMs` later, as a real node first stops its pods.
 */
async function resetTakenSlowly(g: Ground, node: string, opId: string, afterMs: number): Promise<void> {
  const n = simNode(g.sim, node);
  n.reset = (wipe, reboot) => {
    n.state.pendingReset = { ...wipe, reboot };
    setTimeout(() => n.beginReset(), afterMs);
  };
  resetSent(g, node, opId);
  expect((await g.client.reset(node, { graceful: false, reboot: true, labels: LABELS })).ok).toBe(true);
}

/** The sentence journalled when the check starts waiting on a node that answers as before (what the report shows). */
const waitNoted = (g: Ground, node: string) =>
  readJournal(g.incident.dir).find(
    (r) => r.kind === 'observation' && r.what === `checking whether ${node} got the Reset sent before the interruption`,
  )?.result;

/** The first "after" line: the check's finding after a crash, or the first attempt's outcome. */
const checked = (g: Ground, opId: string) => afterResults(g, opId)[0];

describe('a Reset that reached the node before the crash', () => {
  it('is not sent again when the rebooted node first answers before its etcd service is listed', async () => {
    const g = await startGround('member-crashloop');
    const node = g.sim.nodes[2]!;
    const opId = `replace-reset:${node}:0`;
    resetSent(g, node, opId);
    expect((await g.client.reset(node, { graceful: false, reboot: true, labels: LABELS })).ok).toBe(true);
    // the drill's afterDestructive save, then the kill before the "after" line
    const statePath = join(g.incident.dir, 'sim-state.json');
    await (g.sim as unknown as { saveState: (p: string) => Promise<void> }).saveState(statePath);
    await g.sim.stop();

    const sim = await startSimulator({
      scenario: 'member-crashloop',
      dir: join(g.incident.dir, 'sim'),
      port: 0,
      speed: SPEED,
      restoreFrom: statePath,
      talosconfigPath: join(g.incident.dir, 'sim', 'talosconfig-2'),
    });
    // the restored node reboots; hold it for a second in the moment it answers before etcd is listed
    const hooks = sim as unknown as { relisten: (n: NodeInternals) => Promise<void> };
    const relisten = hooks.relisten.bind(sim);
    hooks.relisten = async (n) => {
      if (n.address === node) await sleep(1000);
      await relisten(n);
    };
    const client = createTalosClient(loadTalosconfig({ talosconfig: sim.talosconfigPath }, {}), {
      defaultTimeoutMs: 2000,
      connectTimeoutMs: 2000,
    });
    try {
      await resetNode(effectDepsOf(g, client, QUICK_READS_MS), TIMING, { node, labels: LABELS, opId });
      expect(checked(g, opId)).toBe(LANDED);
      expect(sim.destructiveCalls().reset[node]).toBe(1);
    } finally {
      client.close();
      await sim.stop();
    }
  }, 60_000);

  it('is not sent again when the node is back and one read of its services is lost', async () => {
    const g = await startGround('lost-quorum');
    const node = g.sim.nodes[1]!;
    const opId = `reset:${node}:0`;
    resetSent(g, node, opId);
    expect((await g.client.reset(node, { graceful: false, reboot: true, labels: LABELS })).ok).toBe(true);
    // the crash: the answer was never journalled. Once the node answers again after its reboot, its first service
    // list times out, as a loaded machine's read does (its version answered: the node counts as answering)
    const n = simNode(g.sim, node);
    const lists: Losses = { left: 1 };
    const client = losingReads(g.client, 'serviceList', lists, { node, when: () => n.reachable });
    // wait for the node to go down first: the lost read is the one after its reboot
    await until(() => !n.reachable);
    await resetNode(effectDepsOf(g, client, QUICK_READS_MS), TIMING, { node, labels: LABELS, opId });
    expect(lists.left).toBeLessThan(1); // the read was lost
    expect(checked(g, opId)).toBe(LANDED);
    expect(g.sim.destructiveCalls().reset[node]).toBe(1);
  }, 60_000);

  it('is not sent again while the node still answers as before, taking its time to act on it (no stage read)', async () => {
    const g = await startGround('lost-quorum');
    const node = g.sim.nodes[1]!;
    const opId = `reset:${node}:0`;
    // the node accepts the Reset and starts acting on it 3 s later (30 polls; a real node can take minutes)
    await resetTakenSlowly(g, node, opId, 3000);
    // the crash: the answer was never journalled; the resumed run checks the node, through a client that cannot read
    // the machine's stage (an older one; a node's COSI read that fails), so the hold decides
    // the drill's own timing: on a loaded machine a read of the services can miss its 1 s deadline for seconds, and
    // a node that answers with nothing that dates its boot for the whole nodeBackTimeoutMs is (rightly) not decided
    const noStage = Object.assign(Object.create(g.client) as typeof g.client, { machineStage: undefined });
    await resetNode(effectDepsOf(g, noStage, QUICK_READS_MS), TIMING, { node, labels: LABELS, opId });
    expect(checked(g, opId)).toBe(LANDED);
    // the wait is said, with when it ends: min(5 min, nodeBackTimeoutMs) from the first answer as before
    expect(waitNoted(g, node)).toMatch(
      /^127\.[\d.]+ still answers as before \(it has not rebooted since the Reset was sent at \d\d:\d\d:\d\d UTC\); a node can take minutes to act on a Reset, so it is sent again only if it still shows the same boot at \d\d:\d\d:\d\d UTC \(in (19|20) s\)$/,
    );
    expect(g.sim.destructiveCalls().reset[node]).toBe(1);
  }, 60_000);
});

describe('a Reset that reached a node slower than the hold', () => {
  it('is not sent again while the node shows the stage resetting, after the hold has ended too', async () => {
    const g = await startGround('lost-quorum');
    const node = g.sim.nodes[1]!;
    const opId = `reset:${node}:0`;
    // the node accepts the Reset and starts going down only 5 s later, after the 3 s hold of "same boot" below: a
    // real node stopping its pods can take longer than the 5-minute hold of a real run
    await resetTakenSlowly(g, node, opId, 5000);
    // the crash, then the resumed run's check; the wait for the node to go down that follows it may end first
    const timing = { ...TIMING, nodeBackTimeoutMs: 3000 };
    await resetNode(effectDepsOf(g, g.client, QUICK_READS_MS), timing, { node, labels: LABELS, opId }).catch(
      () => undefined,
    );
    expect(checked(g, opId)).toBe(LANDED);
    expect(
      readJournal(g.incident.dir).some(
        (r) =>
          r.kind === 'observation' &&
          r.result === `${node} shows the stage "resetting": it took the Reset and is acting on it`,
      ),
    ).toBe(true);
    await sleep(3000);
    expect(g.sim.destructiveCalls().reset[node]).toBe(1);
  }, 60_000);
});

describe('a Reset whose answer was lost (no crash)', () => {
  it('is checked when tried again, not sent again', async () => {
    const g = await startGround('lost-quorum');
    const node = g.sim.nodes[1]!;
    const opId = `reset:${node}:0`;
    // the node gets the Reset and acts on it; its first answer never comes back (a deadline on a loaded link)
    const client = losingFirstAnswer(g.client, 'reset');
    const deps = effectDepsOf(g, client, QUICK_READS_MS);
    await expect(resetNode(deps, TIMING, { node, labels: LABELS, opId })).rejects.toThrow(
      /did not answer reset in time/,
    );
    // the step's "try again", once the node answers again (step 6 reads it first: a node that answers is wiped)
    await rebooted(g.sim, node);
    await resetNode(deps, TIMING, { node, labels: LABELS, opId });
    expect(checked(g, opId)).toMatch(/did not answer reset in time/); // the first attempt's line
    expect(afterResults(g, opId).at(-1)).toBe(LANDED);
    expect(g.sim.destructiveCalls().reset[node]).toBe(1);
  }, 60_000);
});

describe('a Reset lost with the crash (the node never got it)', () => {
  it('is waited for on screen: the session shows why and until when, and clears it when the check ends', async () => {
    const g = await startGround('lost-quorum');
    const node = g.sim.nodes[1]!;
    const session = startSessionOn(g); // the machine sits at its first question meanwhile
    const opId = `reset:${node}:0`;
    resetSent(g, node, opId);
    const notices: (string | null)[] = [];
    const sub = session.actor.subscribe((snap) => {
      if (notices.at(-1) !== snap.context.notice) notices.push(snap.context.notice);
    });
    await resetNode(session.deps, { pollMs: 100, nodeBackTimeoutMs: 3000 }, { node, labels: LABELS, opId });
    sub.unsubscribe();
    const waiting = notices.filter((n): n is string => n !== null);
    expect(waiting).toHaveLength(1);
    expect(waiting[0]).toMatch(
      /^Checking whether 127\.[\d.]+ got the Reset sent before the interruption: it still answers as before \(it has not rebooted since the Reset was sent at \d\d:\d\d:\d\d UTC\); a node can take minutes to act on a Reset, so it is sent again only if it still shows the same boot at \d\d:\d\d:\d\d UTC \(in [23] s\)\.$/,
    );
    expect(session.actor.getSnapshot().context.notice).toBeNull();
    expect(g.sim.destructiveCalls().reset[node]).toBe(1);
  }, 60_000);

  it('is sent, once, to a crash-looping member whose etcd history is too long to date its start', async () => {
    const g = await startGround('member-crashloop');
    const node = g.sim.nodes[2]!;
    // its etcd restarts every 5 s (50 ms here): past Talos's 64 kept events, etcd's history no longer dates a boot,
    // and the node's other services must tell instead
    const full = async () =>
      (
        (await g.client.serviceList([node]))[0] as { ok: boolean; value?: { id: string; events: unknown[] }[] }
      ).value?.find((s) => s.id === 'etcd')?.events.length ?? 0;
    await until(async () => (await full()) >= 64, 200);
    const opId = `replace-reset:${node}:0`;
    resetSent(g, node, opId);
    await resetNode(
      effectDepsOf(g, g.client),
      { pollMs: 100, nodeBackTimeoutMs: 3000 },
      { node, labels: LABELS, opId },
    );
    expect(checked(g, opId)).toBe(NOT_LANDED);
    expect(waitNoted(g, node)).toMatch(
      /sent again only if it still shows the same boot at \d\d:\d\d:\d\d UTC \(in [23] s\)$/,
    );
    expect(g.sim.destructiveCalls().reset[node]).toBe(1);
  }, 60_000);
});
