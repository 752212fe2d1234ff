/**
 * The after-restore kubelet restart (ServiceRestart kubelet), the run killed after it was sent, on a node whose clock
 * is behind this machine's (SAFETY rule 6). Talos restarts the service inside the call (v1alpha1_server.go@v1.13.9:
 * 810-824), and the restart's events are dated by the node's clock: read against the journalled send time (our clock)
 * they came "before" it, so the resumed run restarted the kubelet a second time. The kubelet's newest event, read just
 * before the send, is the node's own date, compared with the node's own dates.
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { SimCluster } from '../../src/sim/types.js';
import type { TalosClient } from '../../src/talos/types.js';
import { restartKubelet } from '../../src/wizard/after-restore.js';
import type { EffectDeps } from '../../src/wizard/deps.js';
import { closeGrounds, startGround, type Ground } from './harness.js';
import { afterResults, journalSent, LANDED } from './interrupted.js';

afterAll(closeGrounds);

const BEHIND_MS = -10 * 60_000;

const effectDepsOf = (g: Ground, client: TalosClient): EffectDeps => ({
  client,
  connectMaintenance: null,
  incident: g.incident,
  journal: g.journal,
  operator: g.operator,
  statusTimeoutMs: 1000,
});

const simNode = (sim: SimCluster, node: string) =>
  (sim as unknown as { nodesList: { address: string; state: { clockOffsetMs?: number } }[] }).nodesList.find(
    (n) => n.address === node,
  )!;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The client of a run killed right after it sent the restart: the call reaches the node, its answer never comes. */
function killedAfterRestart(client: TalosClient): TalosClient {
  return new Proxy(client, {
    get(target, prop, receiver) {
      if (prop !== 'serviceRestart') return Reflect.get(target, prop, receiver) as unknown;
      const serviceRestart: TalosClient['serviceRestart'] = async (...args) => {
        await target.serviceRestart(...args);
        return new Promise(() => {});
      };
      return serviceRestart;
    },
  });
}

describe('an interrupted kubelet restart on a node whose clock is behind', () => {
  it('is not restarted again: an event newer than the newest one before the send, by the node clock', async () => {
    const g = await startGround('quorum-intact');
    const node = g.sim.nodes[0]!;
    const opId = `restart-kubelet:${node}`;
    simNode(g.sim, node).state.clockOffsetMs = BEHIND_MS;
    void restartKubelet(effectDepsOf(g, killedAfterRestart(g.client)), { node, opId });
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
