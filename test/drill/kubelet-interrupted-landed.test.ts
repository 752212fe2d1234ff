/**
 * The after-restore kubelet restart (ServiceRestart kubelet) when the node restarted it but the answer was lost (a
 * deadline). Talos restarts the service inside the call (v1alpha1_server.go@v1.13.9:810-824), so it happened; it was
 * journalled as a plain failure and the next attempt restarted the kubelet a second time (SAFETY rule 6). It is
 * journalled as "answer lost", and the next attempt first reads the kubelet's history.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { restartKubelet } from '../../src/wizard/after-restore.js';
import { closeGrounds, startGround } from './harness.js';
import { afterResults, LANDED } from './interrupted.js';
import { effectDepsOf, losingFirstAnswer } from './lossy-client.js';

afterAll(closeGrounds);

describe('a kubelet restart whose answer was lost', () => {
  it('is checked when tried again, not sent again', async () => {
    const g = await startGround('quorum-intact');
    const node = g.sim.nodes[0]!;
    const opId = `restart-kubelet:${node}`;
    const client = losingFirstAnswer(g.client, 'serviceRestart');
    const deps = effectDepsOf(g, client);
    await expect(restartKubelet(deps, { node, opId })).rejects.toThrow(/in time/);
    expect(g.sim.destructiveCalls().serviceRestart[node]).toBe(1);
    // the step's "try again"
    expect(await restartKubelet(deps, { node, opId })).toEqual({ reply: 'restarted before the interruption' });
    expect(afterResults(g, opId).at(-1)).toBe(LANDED);
    expect(g.sim.destructiveCalls().serviceRestart[node]).toBe(1);
  }, 60_000);
});
