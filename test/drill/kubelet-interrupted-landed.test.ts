/**
 * The after-restore kubelet restart (ServiceRestart kubelet) when the node restarted it but the answer was lost (a
 * deadline). Talos restarts the service inside the call (v1alpha1_server.go@v1.13.9:810-824), so it happened; it was
 * journalled as a plain failure and the next attempt restarted the kubelet a second time (SAFETY rule 6). It is
 * journalled as "answer lost", and the next attempt first reads the kubelet's history.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { readJournal } from '../../src/journal/journal.js';
import type { TalosClient } from '../../src/talos/types.js';
import { restartKubelet } from '../../src/wizard/after-restore.js';
import { closeGrounds, startGround } from './harness.js';
import { effectDepsOf } from './lossy-client.js';

afterAll(closeGrounds);

describe('a kubelet restart whose answer was lost', () => {
  it('is checked when tried again, not sent again', async () => {
    const g = await startGround('quorum-intact');
    const node = g.sim.nodes[0]!;
    const opId = `restart-kubelet:${node}`;
    let lose = 1;
    const client = new Proxy(g.client, {
      get(target, prop, receiver) {
        if (prop !== 'serviceRestart') return Reflect.get(target, prop, receiver) as unknown;
        const serviceRestart: TalosClient['serviceRestart'] = async (n, id, opts) => {
          const answer = await target.serviceRestart(n, id, opts);
          if (lose-- <= 0) return answer;
          return {
            node: n,
            ok: false as const,
            error: { code: 4, codeName: 'DeadlineExceeded', message: 'context deadline exceeded' },
          };
        };
        return serviceRestart;
      },
    });
    const deps = effectDepsOf(g, client);
    await expect(restartKubelet(deps, { node, opId })).rejects.toThrow(/in time/);
    expect(g.sim.destructiveCalls().serviceRestart[node]).toBe(1);
    // the step's "try again"
    expect(await restartKubelet(deps, { node, opId })).toEqual({ reply: 'restarted before the interruption' });
    const lines = readJournal(g.incident.dir).filter(
      (r) => r.kind === 'action' && r.opId === opId && r.phase === 'after',
    );
    expect(lines.at(-1)?.result).toBe('the node shows it happened: not sent again');
    expect(g.sim.destructiveCalls().serviceRestart[node]).toBe(1);
  }, 60_000);
});
