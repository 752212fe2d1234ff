/**
 * The init node's Reboot (step 5) whose answer was lost, on a node whose clock is behind this machine's (SAFETY rule
 * 6: never sent twice). The check first asks whether the node came back as a controlplane node; when that read does
 * not answer (a loaded machine, a lost packet), it dated the node's boot by its services' start times against the
 * journalled send time: the node's new boot, dated by its own clock, began "before" the send, so after the wait the
 * Reboot went out again. The boot id read before the send compares like with like
 * (cmd/talosctl/pkg/talos/action/tracker.go@v1.13.9:60-76, the same check after talosctl's own Reboot).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { readJournal } from '../../src/journal/journal.js';
import type { NodeResult, TalosClient } from '../../src/talos/types.js';
import { convertInitNode } from '../../src/wizard/destructive.js';
import { closeGrounds, startGround } from './harness.js';
import { CLOCK_BEHIND_MS, simNode } from './interrupted.js';
import { DEADLINE, effectDepsOf } from './lossy-client.js';

afterAll(closeGrounds);

const TIMING = { pollMs: 100, nodeBackTimeoutMs: 3000 };
/**
 * The first Reboot reaches the node, its answer is lost (a deadline); from then on the node's machine type does not
 * answer in time, so only the dating of its boot can tell.
 */
function lostRebootAnswerThenNoMachineType(client: TalosClient): TalosClient {
  let rebootSent = false;
  return new Proxy(client, {
    get(target, prop, receiver) {
      if (prop === 'reboot') {
        const reboot: TalosClient['reboot'] = async (node, opts) => {
          const answer = await target.reboot(node, opts);
          if (rebootSent) return answer;
          rebootSent = true;
          return { node: answer.node, ok: false, error: DEADLINE };
        };
        return reboot;
      }
      if (prop === 'machineType' && rebootSent) {
        const machineType: TalosClient['machineType'] = async (node): Promise<NodeResult<never>> => ({
          node,
          ok: false,
          error: DEADLINE,
        });
        return machineType;
      }
      return Reflect.get(target, prop, receiver) as unknown;
    },
  });
}

describe("the init node's Reboot whose answer was lost, on a node whose clock is behind", () => {
  it('is not sent again: the boot id shows the node rebooted since', async () => {
    const g = await startGround('init-node');
    const node = g.sim.nodes[0]!;
    const opId = `convert:${node}`;
    simNode(g.sim, node).state.clockOffsetMs = CLOCK_BEHIND_MS;
    const deps = effectDepsOf(g, lostRebootAnswerThenNoMachineType(g.client));
    await expect(convertInitNode(deps, TIMING, { node, opId })).rejects.toThrow(/did not answer reboot in time/);
    // the step's "try again": the node came back (as a controlplane node, but that read does not answer)
    const retried = await convertInitNode(deps, TIMING, { node, opId }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(g.sim.destructiveCalls().reboot[node]).toBe(1);
    expect(
      readJournal(g.incident.dir)
        .filter((r) => r.kind === 'action' && r.opId === `${opId}:reboot` && r.phase === 'after')
        .at(-1)?.result,
    ).toBe('the node shows it happened: not sent again');
    // the machine type still does not answer, so the wait for it to come back as controlplane times out: that is
    // said, and the Reboot is not sent again
    expect(String(retried)).toMatch(/did not come back as a controlplane node/);
  }, 60_000);
});
