/**
 * The planned swap's SAFETY rules (machines/replace-member/rules.ts PLANNED_SWAP_RULES), each attacked: a leave that
 * would lose quorum, one from a two-member cluster or a single node, one while a learner is pending, and one sent to
 * a node other than the one typed (or with its id read from nowhere but itself), each rule called directly. Then the
 * machine: a leave the rules refuse is not recommended and never reaches the leaveCluster actor, however it is typed.
 */
import { describe, expect, it } from 'vitest';
import { createActor, fromPromise, waitFor } from 'xstate';
import { recoveryMachine } from '../../machines/recovery/machine.js';
import { initialContext } from '../../machines/recovery/context.js';
import { LEAVE_RULES, PLANNED_SWAP_RULES } from '../../machines/replace-member/rules.js';
import { initialSwap, swapCandidates, swapLeads } from '../../machines/replace-member/plan.js';
import type { NodeView, RecoveryContext, RecoveryEvent } from '../../machines/recovery.js';
import type { EtcdMember } from '../../src/talos/types.js';

const id = (n: number) => `a00000000000000${n}`;
const addr = (n: number) => `10.5.0.${n}`;
const member = (n: number, extra: Partial<EtcdMember> = {}): EtcdMember => ({
  id: id(n),
  hostname: `cp-${n}`,
  peerUrls: [`https://${addr(n)}:2380`],
  clientUrls: [`https://${addr(n)}:2379`],
  isLearner: false,
  ...extra,
});

const healthy = (n: number, members: EtcdMember[], leader = 1): NodeView => ({
  node: addr(n),
  hostname: `cp-${n}`,
  reachable: true,
  machineType: 'controlplane',
  etcdService: 'Running',
  etcdHealthy: true,
  members,
  membersError: null,
  status: { memberId: id(n), leader: id(leader), errors: [], raftAppliedIndex: '100' },
  statusError: null,
});
const failing = (n: number): NodeView => ({
  ...healthy(n, []),
  etcdService: 'Waiting',
  etcdHealthy: false,
  members: null,
  membersError: 'etcd is not running',
  status: null,
  statusError: 'connection refused',
});

/** A planned swap of node `n`, the leave confirmed by node `via`, with these views of the nodes. */
function context(views: NodeView[], n: number, via: number): RecoveryContext {
  const ctx = initialContext({ nodes: views.map((v) => v.node), operator: 'tester', mode: 'drill' }, 0);
  const own = views.find((v) => v.node === addr(n)) ?? healthy(n, []);
  const replace = initialSwap(own);
  return {
    ...ctx,
    observations: views,
    procedure: 'replace-member',
    replace: { ...replace, swap: { ...replace.swap!, via: addr(via) } },
  };
}

const confirm = (address: string): RecoveryEvent => ({ type: 'confirm', address });
/** The first refusal of the leave rules, in the order the screen shows them, or null. */
const refusal = (c: RecoveryContext, event: RecoveryEvent = confirm(c.replace?.swap?.node ?? '')) =>
  LEAVE_RULES.map((name) => PLANNED_SWAP_RULES[name](c, event, null)).find((s) => s !== null) ?? null;

describe('the planned swap rules, attacked', () => {
  const three = [member(1), member(2), member(3)];

  it('allows the plain case: a healthy member of three leaves, confirmed by another healthy node', () => {
    const c = context([healthy(1, three), healthy(2, three), healthy(3, three)], 3, 1);
    expect(refusal(c)).toBeNull();
  });

  it('never below quorum: with one other member already failing, the leave of a healthy one is refused', () => {
    // 3 voters, cp-2 failing: if cp-3 leaves, 1 of the 2 left works and quorum of 2 needs 2
    const c = context([healthy(1, three), failing(2), healthy(3, three)], 3, 1);
    expect(PLANNED_SWAP_RULES.leaveKeepsQuorum(c, confirm(addr(3)), null)).toMatch(/only 1 of 2 .* quorum needs 2/);
    expect(refusal(c)).toMatch(/quorum needs 2/);
  });

  it('never in a two-member cluster, never the only member of a single node', () => {
    const two = [member(1), member(2)];
    const pair = context([healthy(1, two), healthy(2, two)], 2, 1);
    expect(PLANNED_SWAP_RULES.leaveNeedsThreeMembers(pair, confirm(addr(2)), null)).toMatch(/only 2 voting members/);
    const single = context([healthy(1, [member(1)])], 1, 1);
    expect(PLANNED_SWAP_RULES.leaveNeedsThreeMembers(single, confirm(addr(1)), null)).toMatch(/single-member/);
    expect(refusal(single)).not.toBeNull();
    // and the assessment does not even offer a swap there
    expect(swapCandidates([healthy(1, two), healthy(2, two)])).toEqual([]);
    expect(swapCandidates([healthy(1, three), healthy(2, three), healthy(3, three)]).map((o) => o.node)).toEqual([
      addr(1),
      addr(2),
      addr(3),
    ]);
  });

  it('never while a learner is pending', () => {
    const withLearner = [...three, member(4, { isLearner: true, hostname: '' })];
    const c = context([healthy(1, withLearner), healthy(2, withLearner), healthy(3, withLearner)], 3, 1);
    expect(PLANNED_SWAP_RULES.leaveNoLearnerPending(c, confirm(addr(3)), null)).toMatch(/still a learner/);
    expect(refusal(c)).toMatch(/still a learner/);
  });

  it('the leave goes to exactly the typed node, confirmed by a different healthy node', () => {
    const views = [healthy(1, three), healthy(2, three), healthy(3, three)];
    // another node's address typed: refused, whatever that node is
    expect(refusal(context(views, 3, 1), confirm(addr(2)))).toMatch(/goes only to 10\.5\.0\.3/);
    // the confirming node is the leaving node itself
    expect(refusal(context(views, 3, 3))).toMatch(/No healthy node other than 10\.5\.0\.3/);
    // the chosen node's own etcd is not healthy (EtcdLeaveCluster goes through its own etcd)
    expect(refusal(context([healthy(1, three), healthy(2, three), failing(3)], 3, 1))).toMatch(/not a healthy member/);
    // the confirming node does not list the chosen node's own member as a voter
    const stale = context([healthy(1, [member(1), member(2)]), healthy(2, three), healthy(3, three)], 3, 1);
    expect(refusal(stale)).toMatch(/does not show 10\.5\.0\.3's own member/);
  });

  it('forfeits only a leader', () => {
    const views = [healthy(1, three), healthy(2, three), healthy(3, three)];
    expect(swapLeads(context(views, 1, 2))).toBe(true);
    expect(swapLeads(context(views, 3, 1))).toBe(false);
  });
});

describe('the machine refuses a leave the rules refuse', () => {
  const three = [member(1), member(2), member(3)];

  /** Runs the swap of cp-3 over fixed views until the leave is asked, then types `typed`; what happened. */
  async function attempt(views: NodeView[], typed: string) {
    const leaves: string[] = [];
    const machine = recoveryMachine.provide({
      actors: {
        observe: fromPromise(async () => views),
        leaveCluster: fromPromise(async ({ input }: { input: { node: string } }) => {
          leaves.push(input.node);
          return { alreadyGone: false };
        }),
        forfeitLeadership: fromPromise(async () => ({ leader: '' })),
      } as never,
    });
    const c = context(views, 3, 1);
    const actor = createActor(machine, {
      snapshot: machine.resolveState({ value: { procedure: { replaceMember: 'next' } }, context: c }),
      input: undefined as never,
    });
    actor.start();
    actor.send({ type: 'wake' });
    const asked = await waitFor(actor, (s) => s.context.prompt?.id === `leave:${addr(3)}`, { timeout: 5000 });
    actor.send(confirm(typed));
    await new Promise((r) => setTimeout(r, 20));
    const after = actor.getSnapshot();
    actor.stop();
    return { asked: asked.context.prompt, after: after.context, leaves };
  }

  it('a leave that would lose quorum is not recommended, and typing the address anyway sends nothing', async () => {
    const r = await attempt([healthy(1, three), failing(2), healthy(3, three)], addr(3));
    expect(r.asked?.recommended).toBeNull();
    expect(r.asked?.detail).toMatch(/Not allowed now: After 10\.5\.0\.3 leaves only 1 of 2/);
    expect(r.leaves).toEqual([]);
    expect(r.after.guardStops.map((g) => g.rule)).toEqual(['leaveKeepsQuorum']);
    expect(r.after.prompt?.id).toBe(`leave:${addr(3)}`);
  });

  it('another node typed at the leave sends nothing; the right one sends the leave to that node only', async () => {
    const views = [healthy(1, three), healthy(2, three), healthy(3, three)];
    const wrong = await attempt(views, addr(2));
    expect(wrong.leaves).toEqual([]);
    expect(wrong.after.guardStops.map((g) => g.rule)).toEqual(['addressMatches']);
    const right = await attempt(views, addr(3));
    expect(right.leaves).toEqual([addr(3)]);
    expect(right.after.guardStops).toEqual([]);
  });
});
