/**
 * The member removal's effect (src/wizard/replace-member.ts) over the wire against the simulator: EtcdRemoveMemberByID
 * goes through the healthy node named, the member is gone from its list when it returns, and it is never sent twice:
 * not again for the same operation (the journal's ledger), and not at all when the healthy node no longer lists the
 * member (already removed). etcd's NotFound for an unknown id counts as already removed. The planned swap's leave
 * (leaveCluster) the same way: sent to the leaving node only, confirmed by another node's list, never twice.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { closeGrounds, startGround } from '../drill/harness.js';
import { leaveCluster, memberAlreadyGone, removeMember } from '../../src/wizard/replace-member.js';
import type { EffectDeps } from '../../src/wizard/deps.js';

afterAll(closeGrounds);

describe('removeMember over the wire', () => {
  it('removes through the healthy node once, and never sends it again', async () => {
    const g = await startGround('member-crashloop');
    const deps: EffectDeps = {
      client: g.client,
      connectMaintenance: null,
      incident: g.incident,
      journal: g.journal,
      operator: g.operator,
    };
    const timing = { pollMs: 50, nodeBackTimeoutMs: 5000 };
    const [cp1, cp2, cp3] = g.sim.nodes as [string, string, string];
    const list = async (via: string) => {
      const [r] = await g.client.etcdMemberList([via], true);
      if (!r?.ok) throw new Error('no list');
      return r.value;
    };
    const broken = (await list(cp1)).find((m) => m.hostname === 'cp-3');
    expect(broken).toBeDefined();
    const id = broken?.id ?? '';
    const removals = () => Object.values(g.sim.destructiveCalls().removeMember).reduce((a, b) => a + b, 0);

    const first = await removeMember(deps, timing, { via: cp1, memberId: id, node: cp3, opId: `remove-member:${id}` });
    expect(first).toEqual({ alreadyGone: false });
    expect(g.sim.destructiveCalls().removeMember[cp1]).toBe(1);
    expect(removals()).toBe(1);
    expect((await list(cp2)).map((m) => m.hostname).sort()).toEqual(['cp-1', 'cp-2']);

    // the same operation again (a resume after the answer was journalled): the ledger answers, nothing is sent
    expect(
      await removeMember(deps, timing, { via: cp1, memberId: id, node: cp3, opId: `remove-member:${id}` }),
    ).toEqual({
      alreadyGone: true,
    });
    // a new operation for a member the healthy node no longer lists: nothing is sent either
    expect(
      await removeMember(deps, timing, { via: cp2, memberId: id, node: cp3, opId: 'remove-member:again' }),
    ).toEqual({ alreadyGone: true });
    expect(removals()).toBe(1);

    // etcd's answer for an id it does not know, as the node sends it, reads as "already removed"
    const unknown = await g.client.etcdRemoveMemberById(cp1, 'ffffffffffffff01');
    expect(unknown.ok).toBe(false);
    if (!unknown.ok) expect(memberAlreadyGone(unknown.error)).toBe(true);
  }, 60_000);
});

describe('leaveCluster over the wire (planned swap)', () => {
  it('sends EtcdLeaveCluster to the leaving node only, once; another node confirms it; never through itself', async () => {
    const g = await startGround(new URL('../drill/planned-swap.yaml', import.meta.url).pathname);
    const deps: EffectDeps = {
      client: g.client,
      connectMaintenance: null,
      incident: g.incident,
      journal: g.journal,
      operator: g.operator,
    };
    const timing = { pollMs: 50, nodeBackTimeoutMs: 5000 };
    const [cp1, cp2, cp3] = g.sim.nodes as [string, string, string];
    const list = async (via: string) => {
      const [r] = await g.client.etcdMemberList([via], true);
      if (!r?.ok) throw new Error('no list');
      return r.value;
    };
    const id = (await list(cp1)).find((m) => m.hostname === 'cp-3')?.id ?? '';
    expect(id).not.toBe('');
    const leaves = () => g.sim.destructiveCalls().leave;
    const total = () => Object.values(leaves()).reduce((a, b) => a + b, 0);

    // never with the leaving node as its own witness: refused before anything is sent
    await expect(leaveCluster(deps, timing, { node: cp3, via: cp3, memberId: id, opId: 'leave:self' })).rejects.toThrow(
      /different healthy node/,
    );
    expect(total()).toBe(0);

    const first = await leaveCluster(deps, timing, { node: cp3, via: cp1, memberId: id, opId: `leave-cluster:${id}` });
    expect(first).toEqual({ alreadyGone: false });
    expect(leaves()[cp3]).toBe(1);
    expect(total()).toBe(1);
    expect((await list(cp2)).map((m) => m.hostname).sort()).toEqual(['cp-1', 'cp-2']);

    // the same operation again (a resume after the answer was journalled): the ledger answers, nothing is sent
    expect(
      await leaveCluster(deps, timing, { node: cp3, via: cp1, memberId: id, opId: `leave-cluster:${id}` }),
    ).toEqual({ alreadyGone: true });
    // a new operation for a member the other node no longer lists: nothing is sent either
    expect(
      await leaveCluster(deps, timing, { node: cp3, via: cp2, memberId: id, opId: 'leave-cluster:again' }),
    ).toEqual({ alreadyGone: true });
    expect(total()).toBe(1);
  }, 60_000);
});
