/**
 * Step 10 over the wire (issue 15): the lost-quorum drill with the real client against the simulator, whose cluster
 * has a worker the recovery never touches. After the verified restore every node's kubelet, the worker's included,
 * gets exactly one ServiceRestart (counted by the simulator per node), the health check finds the control plane
 * healthy, and the outcome stays recovered. Killed while the restarts are being sent, `talos-dr resume` finishes them
 * without sending any node's restart twice.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { killAndResume, runScenario, type DrillRun } from './harness.js';

const runs: DrillRun[] = [];
afterAll(async () => {
  for (const r of runs) await r.sim.stop();
});

describe('after the restore: kubelets restarted everywhere, then a health check', () => {
  it('lost-quorum by autopilot: one kubelet restart on every node, the worker too; a healthy check; recovered', async () => {
    const r = await runScenario('lost-quorum');
    runs.push(r);
    const workers = r.sim.allNodes.filter((n) => !r.sim.nodes.includes(n));
    expect(workers).toHaveLength(1);
    // the simulator saw exactly one ServiceRestart on each node, the worker's included
    const restarts = r.sim.destructiveCalls().serviceRestart;
    expect(Object.fromEntries(r.sim.allNodes.map((n) => [n, restarts[n] ?? 0]))).toEqual(
      Object.fromEntries(r.sim.allNodes.map((n) => [n, 1])),
    );
    // the worker came from the cluster's discovery members, and the step says so
    expect(r.context.afterRestore?.workersListed).toBe(true);
    expect(r.context.afterRestore?.nodes.find((n) => n.node === workers[0])).toMatchObject({
      machineType: 'worker',
      status: 'done',
    });
    expect(r.lines).toContain(
      'step 10/10 after restore: kubelet restarted on 4 of 4 nodes; control plane healthy, kubelet Running everywhere',
    );
    expect(r.lines.at(-1)).toBe('outcome: recovered');
    expect(r.code).toBe(0);
    // journalled: the question answered, each restart before and after, the health check's result
    expect(r.journal.some((j) => j.kind === 'confirmation' && /Restart kubelet on all 4/.test(j.what))).toBe(true);
    for (const node of r.sim.allNodes)
      for (const phase of ['before', 'after'])
        expect(
          r.journal.filter((j) => j.kind === 'action' && j.phase === phase && j.opId === `kubelet-restart:${node}`),
        ).toHaveLength(1);
    expect(r.journal.find((j) => j.what === 'health check after the restore')?.result).toBe(
      'control plane healthy, kubelet Running on every node',
    );
    expect(r.journal.at(-1)).toMatchObject({ kind: 'outcome', result: 'recovered' });
  }, 120_000);

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
