/**
 * Right after a Reset is answered, the node still runs with its old state for a moment (facts §3): the check that it
 * acted on it must not take one unanswered status read (a loaded machine, a lost packet) for the node going away. The
 * moment is made on purpose here: the node's first Version read after the send fails as a timed-out one does.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { resetNode } from '../../src/wizard/destructive.js';
import type { EffectDeps } from '../../src/wizard/deps.js';
import type { TalosClient } from '../../src/talos/types.js';
import { closeGrounds, startGround, type Ground } from './harness.js';

afterAll(closeGrounds);

const TIMING = { pollMs: 100, nodeBackTimeoutMs: 3000 };

/**
 * The ground's client, but the first `failures` Version reads of `node` time out; with `swallowReset` the node answers
 * the Reset and never acts on it (what a node that has not wiped yet looks like for as long as the check looks).
 */
function flaky(client: TalosClient, node: string, failures: number, swallowReset: boolean): TalosClient {
  let left = failures;
  return new Proxy(client, {
    get(target, prop, receiver) {
      if (prop === 'reset' && swallowReset) {
        const reset: TalosClient['reset'] = async () => ({ node, ok: true as const, value: { actorId: '' } });
        return reset;
      }
      if (prop !== 'version') return Reflect.get(target, prop, receiver) as unknown;
      const version: TalosClient['version'] = async (nodes, opts) => {
        const results = await target.version(nodes, opts);
        return results.map((r) =>
          r.node === node && left-- > 0
            ? {
                node,
                ok: false as const,
                error: { code: 4, codeName: 'DeadlineExceeded', message: 'context deadline exceeded' },
              }
            : r,
        );
      };
      return version;
    },
  });
}

function depsOf(g: Ground, client: TalosClient): EffectDeps {
  return {
    client,
    connectMaintenance: null,
    incident: g.incident,
    journal: g.journal,
    operator: g.operator,
    statusTimeoutMs: 1000,
  };
}

describe('after an answered Reset, one status read that timed out', () => {
  it('is not the node going away: a node that never acted on the Reset is not counted as reset', async () => {
    const g = await startGround('lost-quorum');
    const node = g.sim.nodes[1]!;
    const run = resetNode(depsOf(g, flaky(g.client, node, 1, true)), TIMING, {
      node,
      labels: ['EPHEMERAL'],
      opId: `reset:${node}:0`,
    });
    await expect(run).rejects.toThrow(/was not seen to go down or restart/);
  }, 60_000);

  it('does not hide a real reset: the node that took it counts as reset, sent once', async () => {
    const g = await startGround('lost-quorum');
    const node = g.sim.nodes[1]!;
    await resetNode(depsOf(g, flaky(g.client, node, 1, false)), TIMING, {
      node,
      labels: ['EPHEMERAL'],
      opId: `reset:${node}:0`,
    });
    expect(g.sim.destructiveCalls().reset[node] ?? 0).toBe(1);
  }, 60_000);
});
