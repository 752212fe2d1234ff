/**
 * The member replacement's removal (EtcdRemoveMemberByID) and the planned swap's leave (EtcdLeaveCluster) when the
 * node took the call but its answer was lost: a connection cut mid-call, or a cancellation. Both were journalled as a
 * plain failure unless the failure was a deadline, so the next attempt started over as a new call: it went by one
 * read of the healthy node's list and, when that read was lost too, sent the removal a second time (SAFETY rule 6).
 * They are journalled as "answer lost", and the next attempt first checks the healthy node's list: gone means it
 * happened; a list that cannot be read sends nothing.
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { RpcFailure } from '../../src/talos/types.js';
import { leaveCluster, removeMember } from '../../src/wizard/replace-member.js';
import { closeGrounds, startGround, type Ground } from './harness.js';
import { afterResults, LANDED } from './interrupted.js';
import { CANCELLED, CUT, effectDepsOf, losingFirstAnswer, losingReads, type Losses } from './lossy-client.js';

afterAll(closeGrounds);

const TIMING = { pollMs: 50, nodeBackTimeoutMs: 5000 };

/**
 * The ground's client, with the answer of the first `call` lost (the node did it) and, while `lists.left` > 0, the
 * healthy node's member list lost as a loaded link's read is.
 */
function losing(g: Ground, call: 'etcdRemoveMemberById' | 'etcdLeaveCluster', failure: RpcFailure) {
  const lists: Losses = { left: 0 };
  return { client: losingReads(losingFirstAnswer(g.client, call, failure), 'etcdMemberList', lists), lists };
}

async function memberId(g: Ground, via: string, hostname: string): Promise<string> {
  const [r] = await g.client.etcdMemberList([via], true);
  return (r?.ok ? r.value : []).find((m) => m.hostname === hostname)?.id ?? '';
}

describe('a member removal whose answer was lost (connection cut mid-call)', () => {
  it('is checked when tried again, and not sent again while the list cannot be read', async () => {
    const g = await startGround('member-crashloop');
    const [cp1, , cp3] = g.sim.nodes as [string, string, string];
    const id = await memberId(g, cp1, 'cp-3');
    expect(id).not.toBe('');
    const opId = `remove-member:${id}`;
    const { client, lists } = losing(g, 'etcdRemoveMemberById', CUT);
    const deps = effectDepsOf(g, client);
    const input = { via: cp1, memberId: id, node: cp3, opId };
    await expect(removeMember(deps, TIMING, input)).rejects.toThrow();
    expect(g.sim.destructiveCalls().removeMember[cp1]).toBe(1);

    // "try again" while the healthy node's list is lost once: nothing is sent on a guess
    lists.left = 1;
    await expect(removeMember(deps, TIMING, input)).rejects.toThrow(/Cannot tell whether the removal/);
    expect(g.sim.destructiveCalls().removeMember[cp1]).toBe(1);

    // and once it answers: the member is gone, so it is not sent again
    expect(await removeMember(deps, TIMING, input)).toEqual({ alreadyGone: true });
    expect(afterResults(g, opId).at(-1)).toBe(LANDED);
    expect(g.sim.destructiveCalls().removeMember[cp1]).toBe(1);
  }, 60_000);
});

describe('a leave whose answer was lost (the call cancelled)', () => {
  it('is checked when tried again, not sent again', async () => {
    const g = await startGround(new URL('./planned-swap.yaml', import.meta.url).pathname);
    const [cp1, , cp3] = g.sim.nodes as [string, string, string];
    const id = await memberId(g, cp1, 'cp-3');
    expect(id).not.toBe('');
    const opId = `leave-cluster:${id}`;
    const { client } = losing(g, 'etcdLeaveCluster', CANCELLED);
    const deps = effectDepsOf(g, client);
    const input = { node: cp3, via: cp1, memberId: id, opId };
    await expect(leaveCluster(deps, TIMING, input)).rejects.toThrow();
    expect(await leaveCluster(deps, TIMING, input)).toEqual({ alreadyGone: true });
    expect(afterResults(g, opId).at(-1)).toBe(LANDED);
    expect(g.sim.destructiveCalls().leave[cp3]).toBe(1);
  }, 60_000);
});
