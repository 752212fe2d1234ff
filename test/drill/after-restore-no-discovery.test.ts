/**
 * Step 10 over the wire when the cluster's discovery is off (issue 15's remainder): the shipped lost-quorum-no-discovery
 * drill with the real client against the simulator, whose cluster has a worker the recovery never touches and whose
 * machine configs say `cluster.discovery.enabled: false`, so every node lists no discovery members, as Talos does
 * (machines/after-restore/workers.ts cites the controllers). The step must say the workers could not be found and take
 * their typed addresses (the worker's kubelet then gets one ServiceRestart, counted by the simulator), or restart the
 * control plane only as an explicit, journalled choice (autopilot's answer) that leaves the worker untouched.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { waitFor } from 'xstate';
import type { RecoveryEvent } from '../../machines/recovery.js';
import { WORKERS_BY_HAND } from '../../machines/after-restore/health.js';
import { closeGrounds, startGround, startSessionOn, type Ground } from './harness.js';

afterAll(closeGrounds);

/** Every question gets its recommended answer, except the workers question, which gets `workers`. */
async function recover(g: Ground, workers: RecoveryEvent | null) {
  const session = startSessionOn(g);
  const actor = session.actor;
  let answered = -1;
  let asked: string | null = null;
  actor.subscribe((s) => {
    const p = s.context.prompt;
    if (!p || s.context.promptSeq === answered) return;
    answered = s.context.promptSeq;
    if (p.id === 'after-restore:workers') asked = `${p.question} ${p.detail}`;
    const answer = p.id === 'after-restore:workers' && workers ? workers : (p.recommended as RecoveryEvent);
    setTimeout(() => actor.send(answer), 1);
  });
  const end = await waitFor(actor, (s) => s.status === 'done' || s.context.outcome !== null, { timeout: 150_000 });
  return { context: end.context, asked };
}

const restarts = (g: Ground) => g.sim.destructiveCalls().serviceRestart;
const addresses = (g: Ground, type: string) =>
  g.sim
    .view()
    .filter((n) => n.machineType === type)
    .map((n) => n.address);

describe('after the restore without discovery', () => {
  it("the worker's address typed: one kubelet restart on every node, the worker too; recovered", async () => {
    const g = await startGround('lost-quorum-no-discovery', 'trainee');
    const [worker] = addresses(g, 'worker');
    const r = await recover(g, { type: 'choose', option: 'type', path: `${worker}` });
    expect(r.context.outcome).toBe('recovered');
    expect(r.asked).toMatch(/^The workers could not be found: only the 3 control-plane nodes are known\. /);
    expect(r.asked).toContain('lists no discovery members (is cluster discovery disabled?)');
    const calls = restarts(g);
    for (const node of [...addresses(g, 'controlplane'), worker as string]) expect(calls[node], node).toBe(1);
    expect(r.context.afterRestore).toMatchObject({ workersAnswer: 'typed', typedWorkers: [worker] });
    expect(r.context.warnings).not.toContain(WORKERS_BY_HAND);
  }, 180_000);

  it('control-plane nodes only, as chosen: the worker is left alone and the by-hand restart is a warning', async () => {
    const g = await startGround('lost-quorum-no-discovery', 'autopilot');
    const [worker] = addresses(g, 'worker');
    const r = await recover(g, null);
    expect(r.context.outcome).toBe('recovered');
    expect(r.asked).not.toBeNull();
    const calls = restarts(g);
    for (const node of addresses(g, 'controlplane')) expect(calls[node], node).toBe(1);
    expect(calls[worker as string] ?? 0).toBe(0);
    expect(r.context.afterRestore?.workersAnswer).toBe('control-plane-only');
    expect(r.context.warnings).toContain(WORKERS_BY_HAND);
  }, 180_000);
});
