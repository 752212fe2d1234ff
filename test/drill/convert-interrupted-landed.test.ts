/**
 * The init node's conversion (step 5) when the answer to its Reboot is lost: the node got it and reboots, but the
 * tool saw a deadline. Talos answers Reboot and reboots afterwards (v1alpha1_server.go@v1.13.9:365-393 Reboot), so the
 * request had arrived; journalled as a plain failure, the step's "try again" sent the node a second Reboot (SAFETY
 * rule 6). It is journalled as "answer lost", and the next attempt first checks whether the node came back as a
 * controlplane node.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { readJournal } from '../../src/journal/journal.js';
import type { TalosClient } from '../../src/talos/types.js';
import { convertInitNode } from '../../src/wizard/destructive.js';
import { closeGrounds, startGround } from './harness.js';
import { effectDepsOf, losingFirstAnswer } from './lossy-client.js';

afterAll(closeGrounds);

/** The drill's own timing at SPEED (src/wizard/run.ts timingFor): 100 ms polls, 20 s for a node to come back. */
const TIMING = { pollMs: 100, nodeBackTimeoutMs: 20_000 };

describe('a Reboot of the init node whose answer was lost', () => {
  it('is checked when tried again, not sent again', async () => {
    const g = await startGround('init-node');
    const node = g.sim.nodes[0]!;
    const opId = `convert:${node}`;
    // the node gets the Reboot and acts on it; its answer never comes back (a deadline on a loaded link)
    const client = losingFirstAnswer(g.client, 'reboot');
    const deps = effectDepsOf(g, client);
    await expect(convertInitNode(deps, TIMING, { node, opId })).rejects.toThrow(/did not answer reboot in time/);
    // the step's "try again"
    await convertInitNode(deps, TIMING, { node, opId });
    const lines = readJournal(g.incident.dir).filter(
      (r) => r.kind === 'action' && r.opId === `${opId}:reboot` && r.phase === 'after',
    );
    expect(lines.at(-1)?.result).toBe('the node shows it happened: not sent again');
    expect(g.sim.destructiveCalls().reboot[node]).toBe(1);
  }, 60_000);
});

describe('a Reboot of the init node lost before it reached the node', () => {
  it('is sent again, once, when the node still shows the same boot after the wait', async () => {
    const g = await startGround('init-node');
    const node = g.sim.nodes[0]!;
    const opId = `convert:${node}`;
    // the first Reboot never leaves (a deadline before the request was written): the node knows nothing of it
    let lose = 1;
    const client = new Proxy(g.client, {
      get(target, prop, receiver) {
        if (prop !== 'reboot') return Reflect.get(target, prop, receiver) as unknown;
        const reboot: TalosClient['reboot'] = async (n, opts) => {
          if (lose-- <= 0) return target.reboot(n, opts);
          return {
            node: n,
            ok: false as const,
            error: { code: 4, codeName: 'DeadlineExceeded', message: 'context deadline exceeded' },
          };
        };
        return reboot;
      },
    });
    const notices: (string | null)[] = [];
    const deps = { ...effectDepsOf(g, client), notice: (text: string | null) => notices.push(text) };
    const timing = { pollMs: 100, nodeBackTimeoutMs: 2000 };
    await expect(convertInitNode(deps, timing, { node, opId })).rejects.toThrow(/did not answer reboot in time/);
    expect(g.sim.destructiveCalls().reboot[node] ?? 0).toBe(0);
    // the retry waits as long as a node is given to come back, sees the boot from before the send, and sends it
    await convertInitNode(deps, { ...timing, nodeBackTimeoutMs: 3000 }, { node, opId });
    const lines = readJournal(g.incident.dir).filter(
      (r) => r.kind === 'action' && r.opId === `${opId}:reboot` && r.phase === 'after',
    );
    expect(lines.map((r) => r.result)).toContain('the node shows it did not happen: sending it');
    expect(g.sim.destructiveCalls().reboot[node]).toBe(1);
    // the wait was on screen while it lasted, and cleared when it ended
    expect(notices[0]).toMatch(
      new RegExp(
        `^Checking whether ${node.replace(/\./g, '\\.')} got the reboot sent before the interruption: waiting until \\d\\d:\\d\\d:\\d\\d UTC`,
      ),
    );
    expect(notices.at(-1)).toBeNull();
  }, 90_000);
});
