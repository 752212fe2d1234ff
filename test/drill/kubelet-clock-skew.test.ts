/**
 * The after-restore kubelet restart (ServiceRestart kubelet), the run killed after it was sent, on a node whose clock
 * is behind this machine's (SAFETY rule 6). Talos restarts the service inside the call (v1alpha1_server.go@v1.13.9:
 * 810-824), and the restart's events are dated by the node's clock: read against the journalled send time (our clock)
 * they came "before" it, so the resumed run restarted the kubelet a second time. The kubelet's newest event, read just
 * before the send, is the node's own date, compared with the node's own dates.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { restartKubelet } from '../../src/wizard/after-restore.js';
import { closeGrounds, startGround } from './harness.js';
import { afterResults, CLOCK_BEHIND_MS, journalSent, LANDED, simNode, sleep } from './interrupted.js';
import { answerNeverComes, effectDepsOf } from './lossy-client.js';

afterAll(closeGrounds);

describe('an interrupted kubelet restart on a node whose clock is behind', () => {
  it('is not restarted again: an event newer than the newest one before the send, by the node clock', async () => {
    const g = await startGround('quorum-intact');
    const node = g.sim.nodes[0]!;
    const opId = `restart-kubelet:${node}`;
    simNode(g.sim, node).state.clockOffsetMs = CLOCK_BEHIND_MS;
    void restartKubelet(effectDepsOf(g, answerNeverComes(g.client, 'serviceRestart')), { node, opId });
    while (g.sim.destructiveCalls().serviceRestart[node] !== 1) await sleep(5);

    // the resumed run
    const resumed = await restartKubelet(effectDepsOf(g, g.client), { node, opId }).catch((e: unknown) => e);
    expect(g.sim.destructiveCalls().serviceRestart[node]).toBe(1);
    expect(resumed).toEqual({ reply: 'restarted before the interruption' });
    expect(afterResults(g, opId).at(-1)).toBe(LANDED);
  }, 60_000);

  it('a journal from an older version (the send time only) is judged by the send time, as before', async () => {
    const g = await startGround('quorum-intact');
    const node = g.sim.nodes[0]!;
    const opId = `restart-kubelet:${node}`;
    journalSent(g, { opId, node, what: 'restart kubelet (ServiceRestart kubelet)' });
    expect((await g.client.serviceRestart(node, 'kubelet')).ok).toBe(true);
    expect(await restartKubelet(effectDepsOf(g, g.client), { node, opId })).toEqual({
      reply: 'restarted before the interruption',
    });
    expect(g.sim.destructiveCalls().serviceRestart[node]).toBe(1);
  }, 60_000);
});
