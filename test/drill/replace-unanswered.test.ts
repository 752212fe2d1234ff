/**
 * A member removal or leave whose node did not answer at all (its machine down: the connection refused, so the call
 * never reached it). The failure the machine reads says so (machines/errors.ts ErrorInfo.unanswered: "the node itself
 * did not answer ... wait for it to answer again"), as every other destructive call's does (ledger.ts
 * destructiveFailure); it is not "may have landed", so the next try is a fresh one. The removal and the leave built
 * this failure by hand and left the flag out, so the machine's attempt record counted a node that was down as one
 * that answered and refused.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { errorInfo } from '../../machines/errors.js';
import type { TalosClient } from '../../src/talos/types.js';
import { leaveCluster, removeMember } from '../../src/wizard/replace-member.js';
import { closeGrounds, startGround, type Ground } from './harness.js';
import { simNode } from './interrupted.js';
import { effectDepsOf } from './lossy-client.js';

afterAll(closeGrounds);

const TIMING = { pollMs: 50, nodeBackTimeoutMs: 5000 };

/** The machine's reading of the failure an attempt ends with (it must end with one). */
async function failureOf(attempt: Promise<unknown>) {
  const outcome = await attempt.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
  if (!('error' in outcome)) throw new Error(`the attempt went on: ${JSON.stringify(outcome.value)}`);
  return errorInfo(outcome.error);
}

async function memberId(g: Ground, via: string, hostname: string): Promise<string> {
  const [r] = await g.client.etcdMemberList([via], true);
  return (r?.ok ? r.value : []).find((m) => m.hostname === hostname)?.id ?? '';
}

/** The node's machine powers off (for a simulated minute) just before `call` is sent to it. */
function downBefore(g: Ground, call: 'etcdRemoveMemberById' | 'etcdLeaveCluster', node: string): TalosClient {
  const machine = simNode(g.sim, node) as ReturnType<typeof simNode> & { powerOffFor: (simMs: number) => void };
  return new Proxy(g.client, {
    get(target, prop, receiver) {
      const real = Reflect.get(target, prop, receiver) as unknown;
      if (prop !== call || typeof real !== 'function') return real;
      return (...args: unknown[]) => {
        machine.powerOffFor(60_000);
        return real.apply(target, args) as unknown;
      };
    },
  });
}

describe('a removal whose healthy node is down when it is sent', () => {
  it('fails as a node that did not answer, not as one that refused, and nothing reached it', async () => {
    const g = await startGround('member-crashloop');
    const [cp1, , cp3] = g.sim.nodes as [string, string, string];
    const id = await memberId(g, cp1, 'cp-3');
    expect(id).not.toBe('');
    const deps = effectDepsOf(g, downBefore(g, 'etcdRemoveMemberById', cp1));
    const info = await failureOf(removeMember(deps, TIMING, { via: cp1, memberId: id, node: cp3, opId: 'remove' }));
    expect(info).toMatchObject({ retryable: true, mayHaveLanded: false, unanswered: true });
    expect(info.message).toMatch(/connection refused|cannot reach/i);
    expect(g.sim.destructiveCalls().removeMember[cp1] ?? 0).toBe(0);
  }, 60_000);
});

describe('a leave whose leaving node is down when it is sent', () => {
  it('fails as a node that did not answer, not as one that refused, and nothing reached it', async () => {
    const g = await startGround(new URL('./planned-swap.yaml', import.meta.url).pathname);
    const [cp1, , cp3] = g.sim.nodes as [string, string, string];
    const id = await memberId(g, cp1, 'cp-3');
    expect(id).not.toBe('');
    const deps = effectDepsOf(g, downBefore(g, 'etcdLeaveCluster', cp3));
    const info = await failureOf(leaveCluster(deps, TIMING, { node: cp3, via: cp1, memberId: id, opId: 'leave' }));
    expect(info).toMatchObject({ retryable: true, mayHaveLanded: false, unanswered: true });
    expect(info.message).toMatch(/connection refused|cannot reach/i);
    expect(g.sim.destructiveCalls().leave[cp3] ?? 0).toBe(0);
  }, 60_000);
});
