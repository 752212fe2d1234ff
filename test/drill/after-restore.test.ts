/**
 * Step 10 over the wire (issue 15): the lost-quorum drill with the real client against the simulator, whose cluster
 * has a worker the recovery never touches. After the verified restore every node's kubelet, the worker's included,
 * gets exactly one ServiceRestart (counted by the simulator per node), the health check finds the control plane
 * healthy, and the outcome stays recovered: asserted on the lost-quorum drill scenarios.test.ts already runs (its
 * "after the restore" case). Here: killed while the restarts are being sent, `talos-dr resume` finishes them without
 * sending any node's restart twice.
 */
import { describe, expect, it } from 'vitest';
import { killAndResume } from './harness.js';

describe('after the restore: kubelets restarted everywhere, then a health check', () => {
  it('killed while the kubelets are restarted: resume finishes them, no node restarted twice', async () => {
    const r = await killAndResume('lost-quorum', [
      { name: 'after the first kubelet restart', when: (j) => j.includes('"phase":"after","opId":"kubelet-restart:') },
    ]);
    expect(r.killedAt).toHaveLength(1);
    expect(r.last.stdout.trim().split('\n').at(-1)).toBe('outcome: recovered');
    expect(r.last.code).toBe(0);
    expect(r.calls).toHaveLength(4);
    for (const n of r.calls) expect(n.serviceRestart, n.address).toBe(1);
  }, 180_000);
});
