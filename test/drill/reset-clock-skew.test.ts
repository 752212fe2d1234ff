/**
 * A Reset sent, then the run killed before its answer was journalled, to a node whose clock is behind this
 * machine's (SAFETY rule 6: never sent twice). The resumed run checks whether the node rebooted since the send.
 * Read from the services' start times, the node's new boot dates its services by its own clock, before the
 * journalled send time (this machine's clock): "same boot", and after the hold the Reset went out again, a second
 * wipe. The boot id read before the send (as talosctl does: cmd/talosctl/pkg/talos/action/tracker.go@v1.13.9:356-378)
 * compares like with like. A node that refuses Read (os:admin only) and a journal from an older version, with no boot
 * id, still get the services' start times.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { readJournal } from '../../src/journal/journal.js';
import type { TalosClient } from '../../src/talos/types.js';
import { resetNode } from '../../src/wizard/destructive.js';
import { closeGrounds, startGround, type Ground } from './harness.js';
import { afterResults, CLOCK_BEHIND_MS, journalSent, rebooted, simNode, until } from './interrupted.js';
import { answerNeverComes, effectDepsOf, NOT_AUTHORIZED } from './lossy-client.js';

afterAll(closeGrounds);

/** 100 ms polls; 3 s for a node to come back, so the hold on a node that shows the same boot is 3 s. */
const TIMING = { pollMs: 100, nodeBackTimeoutMs: 3000 };
const LABELS = ['EPHEMERAL'];

const checked = (g: Ground, opId: string) => afterResults(g, opId).at(-1);

const sentWith = (g: Ground, opId: string) =>
  readJournal(g.incident.dir).find((r) => r.kind === 'action' && r.opId === opId && r.phase === 'before')?.data;

/** A node that refuses Read as Talos does for a role without os:admin (machined.go@v1.13.9:100). */
function refusingRead(client: TalosClient): TalosClient {
  return new Proxy(client, {
    get(target, prop, receiver) {
      if (prop !== 'bootId') return Reflect.get(target, prop, receiver) as unknown;
      const bootId: NonNullable<TalosClient['bootId']> = async (node) => ({
        node,
        ok: false,
        error: { ...NOT_AUTHORIZED, method: 'Read' },
      });
      return bootId;
    },
  });
}

/** The run before the kill: resetNode as the wizard calls it, until the Reset left; then the process is gone. */
async function sendThenKill(g: Ground, client: TalosClient, node: string, opId: string): Promise<void> {
  void resetNode(effectDepsOf(g, answerNeverComes(client, 'reset')), TIMING, { node, labels: LABELS, opId });
  await until(() => g.sim.destructiveCalls().reset[node] === 1);
  // the node acts on it: goes down, and back with a new boot
  await rebooted(g.sim, node);
}

describe('an interrupted Reset to a node whose clock is behind', () => {
  it('is not sent again: the boot id read before the send shows the node rebooted since', async () => {
    const g = await startGround('lost-quorum');
    const node = g.sim.nodes[1]!;
    const opId = `reset:${node}:0`;
    simNode(g.sim, node).state.clockOffsetMs = CLOCK_BEHIND_MS;
    const before = simNode(g.sim, node).state.bootId;
    await sendThenKill(g, g.client, node, opId);

    // the resumed run
    const failed = await resetNode(effectDepsOf(g, g.client), TIMING, { node, labels: LABELS, opId }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(g.sim.destructiveCalls().reset[node]).toBe(1);
    expect(failed).toBeNull();
    expect(checked(g, opId)).toBe('the node shows it happened: not sent again');
    expect(sentWith(g, opId)).toMatchObject({ bootId: before });
  }, 60_000);

  it('is sent once when it never reached the node: the same boot id, after the hold', async () => {
    const g = await startGround('lost-quorum');
    const node = g.sim.nodes[1]!;
    const opId = `reset:${node}:0`;
    const n = simNode(g.sim, node);
    n.state.clockOffsetMs = CLOCK_BEHIND_MS;
    // the Reset is lost on the way: the node answers as before, in the same boot
    const reset = n.reset.bind(n);
    let swallow = true;
    n.reset = (wipe, reboot) => {
      if (swallow) swallow = false;
      else reset(wipe, reboot);
    };
    await expect(
      Promise.race([
        resetNode(effectDepsOf(g, answerNeverComes(g.client, 'reset')), TIMING, { node, labels: LABELS, opId }),
        new Promise((r) => setTimeout(r, 500, 'killed')),
      ]),
    ).resolves.toBe('killed');
    const notices: string[] = [];
    await resetNode({ ...effectDepsOf(g, g.client), notice: (t) => void (t && notices.push(t)) }, TIMING, {
      node,
      labels: LABELS,
      opId,
    });
    expect(notices[0]).toMatch(
      /^Checking whether 127\.[\d.]+ got the Reset sent before the interruption: it still answers as before \(its boot id is the one it had when the Reset was sent at \d\d:\d\d:\d\d UTC\); a node can take minutes to act on a Reset, so it is sent again only if it still shows the same boot at \d\d:\d\d:\d\d UTC \(in [23] s\)\.$/,
    );
    expect(checked(g, opId)).toBe('ok');
    expect(g.sim.destructiveCalls().reset[node]).toBe(2);
  }, 60_000);
});

describe('an interrupted Reset judged without a boot id (the services start times, as before)', () => {
  it('a node that refuses Read: said on screen and journalled, and a Reset that landed is not sent again', async () => {
    const g = await startGround('lost-quorum');
    const node = g.sim.nodes[1]!;
    const opId = `reset:${node}:0`;
    const client = refusingRead(g.client);
    const notices: string[] = [];
    const n = simNode(g.sim, node);
    void resetNode(
      { ...effectDepsOf(g, answerNeverComes(client, 'reset')), notice: (t) => void (t && notices.push(t)) },
      TIMING,
      { node, labels: LABELS, opId },
    );
    while (g.sim.destructiveCalls().reset[node] !== 1) await new Promise((r) => setTimeout(r, 5));
    expect(notices).toEqual([
      `${node} refused to read its boot id (Read needs the os:admin role), so whether it got the Reset is judged, if this run is interrupted, from its services' start times, which assumes its clock agrees with this machine's.`,
    ]);
    expect(sentWith(g, opId)).toEqual({ sentAt: expect.any(Number), bootIdUnread: 'refused' });
    while (n.reachable) await new Promise((r) => setTimeout(r, 5));
    while (!n.reachable) await new Promise((r) => setTimeout(r, 5));

    await resetNode(effectDepsOf(g, client), TIMING, { node, labels: LABELS, opId });
    expect(checked(g, opId)).toBe('the node shows it happened: not sent again');
    expect(g.sim.destructiveCalls().reset[node]).toBe(1);
  }, 60_000);

  it('a node that refuses Read and never got the Reset: the wait says it is judged by clocks, then sends it once', async () => {
    const g = await startGround('lost-quorum');
    const node = g.sim.nodes[1]!;
    const opId = `reset:${node}:0`;
    const client = refusingRead(g.client);
    const n = simNode(g.sim, node);
    const reset = n.reset.bind(n);
    let swallow = true;
    n.reset = (wipe, reboot) => {
      if (swallow) swallow = false;
      else reset(wipe, reboot);
    };
    void resetNode(effectDepsOf(g, answerNeverComes(client, 'reset')), TIMING, { node, labels: LABELS, opId });
    while (g.sim.destructiveCalls().reset[node] !== 1) await new Promise((r) => setTimeout(r, 5));
    const notices: (string | null)[] = [];
    await resetNode({ ...effectDepsOf(g, client), notice: (t) => void notices.push(t) }, TIMING, {
      node,
      labels: LABELS,
      opId,
    });
    // the check's wait, then the refusal before the second send, each cleared when it ends: nothing of this
    // effect stays on screen after it
    expect(notices.filter((t) => t !== null)).toHaveLength(2);
    expect(notices.at(-1)).toBeNull();
    expect(notices.find((t) => t?.startsWith('Checking whether'))).toMatch(
      /\(it has not rebooted since the Reset was sent at \d\d:\d\d:\d\d UTC\); .* \(in [23] s\)\. Its boot id could not be read before the Reset \(Read needs the os:admin role\), so this is judged from its services' start times, which assumes its clock agrees with this machine's\.$/,
    );
    expect(g.sim.destructiveCalls().reset[node]).toBe(2);
  }, 60_000);

  it('a journal from an older version (no boot id): a Reset that landed is not sent again, the boot id not asked', async () => {
    const g = await startGround('lost-quorum');
    const node = g.sim.nodes[1]!;
    const opId = `reset:${node}:0`;
    const n = simNode(g.sim, node);
    // the older version's "before" line: the send time only
    journalSent(g, { opId, node, what: 'reset EPHEMERAL (graceful=false, reboot)' });
    expect((await g.client.reset(node, { graceful: false, reboot: true, labels: LABELS })).ok).toBe(true);
    while (n.reachable) await new Promise((r) => setTimeout(r, 5));
    let asked = 0;
    const counting = new Proxy(g.client, {
      get(target, prop, receiver) {
        if (prop === 'bootId') asked++;
        return Reflect.get(target, prop, receiver) as unknown;
      },
    });
    await resetNode(effectDepsOf(g, counting), TIMING, { node, labels: LABELS, opId });
    expect(checked(g, opId)).toBe('the node shows it happened: not sent again');
    expect(asked).toBe(0);
    expect(g.sim.destructiveCalls().reset[node]).toBe(1);
  }, 60_000);
});
