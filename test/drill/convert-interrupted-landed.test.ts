/**
 * The init node's conversion (step 5) when the answer to its Reboot is lost: the node got it and reboots, but the
 * tool saw a deadline. Talos answers Reboot and reboots afterwards (v1alpha1_server.go@v1.13.9:365-393 Reboot), so the
 * request had arrived; journalled as a plain failure, the step's "try again" sent the node a second Reboot (SAFETY
 * rule 6). It is journalled as "answer lost", and the next attempt first checks whether the node came back as a
 * controlplane node.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { convertInitNode } from '../../src/wizard/destructive.js';
import { closeGrounds, startGround } from './harness.js';
import { afterResults, DRILL_TIMING, LANDED, NOT_LANDED } from './interrupted.js';
import { effectDepsOf, losingFirstAnswer, losingFirstRequest } from './lossy-client.js';

afterAll(closeGrounds);

describe('a Reboot of the init node whose answer was lost', () => {
  it('is checked when tried again, not sent again', async () => {
    const g = await startGround('init-node');
    const node = g.sim.nodes[0]!;
    const opId = `convert:${node}`;
    // the node gets the Reboot and acts on it; its answer never comes back (a deadline on a loaded link)
    const client = losingFirstAnswer(g.client, 'reboot');
    const deps = effectDepsOf(g, client);
    await expect(convertInitNode(deps, DRILL_TIMING, { node, opId })).rejects.toThrow(/did not answer reboot in time/);
    // the step's "try again"
    await convertInitNode(deps, DRILL_TIMING, { node, opId });
    expect(afterResults(g, `${opId}:reboot`).at(-1)).toBe(LANDED);
    expect(g.sim.destructiveCalls().reboot[node]).toBe(1);
  }, 60_000);
});

describe('a Reboot of the init node lost before it reached the node', () => {
  it('is sent again, once, when the node still shows the same boot after the wait', async () => {
    const g = await startGround('init-node');
    const node = g.sim.nodes[0]!;
    const opId = `convert:${node}`;
    // the first Reboot never leaves (a deadline before the request was written): the node knows nothing of it
    const client = losingFirstRequest(g.client, 'reboot');
    const notices: (string | null)[] = [];
    const deps = { ...effectDepsOf(g, client), notice: (text: string | null) => notices.push(text) };
    const timing = { pollMs: 100, nodeBackTimeoutMs: 2000 };
    await expect(convertInitNode(deps, timing, { node, opId })).rejects.toThrow(/did not answer reboot in time/);
    expect(g.sim.destructiveCalls().reboot[node] ?? 0).toBe(0);
    // the retry waits as long as a node is given to come back, sees the boot from before the send, and sends it
    await convertInitNode(deps, { ...timing, nodeBackTimeoutMs: 3000 }, { node, opId });
    expect(afterResults(g, `${opId}:reboot`)).toContain(NOT_LANDED);
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
