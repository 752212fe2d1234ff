/**
 * Right after a Reset is answered, the node still runs with its old state for a moment (facts §3): the check that it
 * acted on it must not take one unanswered status read (a loaded machine, a lost packet) for the node going away. The
 * moment is made on purpose here: the node's first Version read after the send fails as a timed-out one does.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { resetNode } from '../../src/wizard/destructive.js';
import { closeGrounds, startGround } from './harness.js';
import { effectDepsOf, losingVersionReads } from './lossy-client.js';

afterAll(closeGrounds);

const TIMING = { pollMs: 100, nodeBackTimeoutMs: 3000 };

describe('after an answered Reset, one status read that timed out', () => {
  it('is not the node going away: a node that never acted on the Reset is not counted as reset', async () => {
    const g = await startGround('lost-quorum');
    const node = g.sim.nodes[1]!;
    const run = resetNode(effectDepsOf(g, losingVersionReads(g.client, node, 1, { swallowReset: true })), TIMING, {
      node,
      labels: ['EPHEMERAL'],
      opId: `reset:${node}:0`,
    });
    await expect(run).rejects.toThrow(/was not seen to go down or restart/);
  }, 60_000);

  it('does not hide a real reset: the node that took it counts as reset, sent once', async () => {
    const g = await startGround('lost-quorum');
    const node = g.sim.nodes[1]!;
    await resetNode(effectDepsOf(g, losingVersionReads(g.client, node, 1)), TIMING, {
      node,
      labels: ['EPHEMERAL'],
      opId: `reset:${node}:0`,
    });
    expect(g.sim.destructiveCalls().reset[node] ?? 0).toBe(1);
  }, 60_000);
});
