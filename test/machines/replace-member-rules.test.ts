/**
 * The member replacement's SAFETY rules (machines/replace-member/rules.ts), each attacked: a cluster where a careless
 * removal would lose quorum, take the last member, break a two-member cluster, remove a healthy member, start a second
 * replacement while a learner is pending, or go through the member itself. Then the machine: a removal the rules
 * refuse never reaches the removeMember actor, however the address is typed, and the refusal is journalled.
 */
import { describe, expect, it } from 'vitest';
import { createActor, fromPromise, waitFor } from 'xstate';
import { recoveryMachine } from '../../machines/recovery/machine.js';
import { initialContext } from '../../machines/recovery/context.js';
import { RULES, firstRefusal } from '../../machines/guards.js';
import { REMOVAL_RULES } from '../../machines/replace-member/rules.js';
import type { RemoveMemberInput } from '../../machines/replace-member/actors.js';
import { initialReplace, listedMember } from '../../machines/replace-member/plan.js';
import type { BrokenMember } from '../../machines/decisions.js';
import type { NodeView, RecoveryContext } from '../../machines/recovery.js';
import type { EtcdMember } from '../../src/talos/types.js';

const LEADER = 'a000000000000001';
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

/** A node whose etcd works, listing `members`. */
const healthy = (n: number, members: EtcdMember[]): NodeView => ({
  node: addr(n),
  hostname: `cp-${n}`,
  reachable: true,
  machineType: 'controlplane',
  etcdService: 'Running',
  etcdHealthy: true,
  members,
  membersError: null,
  status: { memberId: id(n), leader: LEADER, errors: [], raftAppliedIndex: '100' },
  statusError: null,
});
/** A node whose etcd crash-loops. */
const failing = (n: number): NodeView => ({
  ...healthy(n, []),
  etcdService: 'Waiting',
  etcdHealthy: false,
  members: null,
  membersError: 'etcd is not running',
  status: null,
  statusError: 'connection refused',
});
const down = (n: number): NodeView => ({ ...failing(n), reachable: false, etcdService: null, etcdHealthy: null });

const broken = (n: number, kind: BrokenMember['kind'] = 'etcd-failing'): BrokenMember => ({
  node: addr(n),
  memberId: id(n),
  name: `cp-${n}`,
  kind,
  why: `cp-${n} is broken`,
});

/** A context in the middle of replacing `current` through `via`, with these views of the nodes. */
function context(views: NodeView[], current: BrokenMember, via: number, memberId = current.memberId): RecoveryContext {
  const ctx = initialContext({ nodes: views.map((v) => v.node), operator: 'tester', mode: 'drill' }, 0);
  return {
    ...ctx,
    observations: views,
    procedure: 'replace-member',
    replace: { ...initialReplace([]), current, via: addr(via), memberId },
  };
}

const confirm = (target: string) => ({ type: 'confirm' as const, address: target });
const refusal = (c: RecoveryContext) => firstRefusal([...REMOVAL_RULES], c, confirm('x'), null);

describe('the removal rules, attacked', () => {
  it('allows the plain case: one crash-looping member of three, through a healthy node', () => {
    const all = [member(1), member(2), member(3)];
    const c = context([healthy(1, all), healthy(2, all), failing(3)], broken(3), 1);
    expect(refusal(c)).toBeNull();
  });

  it('refuses a removal that would leave fewer working members than quorum (two of five down, a third removed)', () => {
    const all = [1, 2, 3, 4, 5].map((n) => member(n));
    // 3 working of 5: quorum holds; removing a *working* member's id named as broken would leave 2 of 4
    const c = context([healthy(1, all), healthy(2, all), healthy(3, all), failing(4), down(5)], broken(4), 1);
    expect(RULES.removalKeepsQuorum(c, confirm(addr(4)), null)).toBeNull();
    const c2 = context([healthy(1, all), healthy(2, all), failing(3), failing(4), down(5)], broken(4), 1);
    // 2 working of 5 (quorum lost); after removing cp-4, 2 of 4 work and 3 are needed
    expect(RULES.removalKeepsQuorum(c2, confirm(addr(4)), null)).toMatch(
      /only 2 of 4 voting members would work, and quorum needs 3/,
    );
  });

  it('refuses the last member', () => {
    const c = context([healthy(1, [member(2)]), failing(2)], broken(2), 1);
    expect(RULES.notLastMember(c, confirm(addr(2)), null)).toMatch(/last etcd member/);
  });

  it('refuses a voter of a two-member cluster, but not a learner next to two voters', () => {
    const two = [member(1), member(2)];
    const c = context([healthy(1, two), failing(2)], broken(2), 1);
    expect(RULES.notTwoMemberCluster(c, confirm(addr(2)), null)).toMatch(/only two voting members/);
    const withLearner = [member(1), member(2), member(3, { isLearner: true })];
    const c2 = context([healthy(1, withLearner), healthy(2, withLearner), failing(3)], broken(3, 'learner'), 1);
    expect(RULES.notTwoMemberCluster(c2, confirm(addr(3)), null)).toBeNull();
  });

  it('refuses a healthy member on the broken-member path (a verdict that named the wrong node)', () => {
    const all = [member(1), member(2), member(3)];
    const c = context([healthy(1, all), healthy(2, all), failing(3)], broken(2), 1);
    expect(RULES.brokenMemberOnly(c, confirm(addr(2)), null)).toMatch(/10\.5\.0\.2 is a healthy member/);
    // the same healthy member's id under another node's name: still refused by its id
    const c2 = context([healthy(1, all), healthy(2, all), failing(3)], { ...broken(3), memberId: id(2) }, 1, id(2));
    expect(RULES.brokenMemberOnly(c2, confirm(addr(3)), null)).toMatch(/is a healthy member/);
  });

  it('refuses a second removal while another member is still a learner', () => {
    const all = [member(1), member(2), member(3), member(4, { isLearner: true, hostname: '' }), member(5)];
    const c = context([healthy(1, all), healthy(2, all), healthy(3, all), failing(5)], broken(5), 1);
    expect(RULES.noLearnerPending(c, confirm(addr(5)), null)).toMatch(
      /a00000000000000 ?4 is still a learner|is still a learner/,
    );
  });

  it('refuses a removal through the member itself, through an unhealthy node, or with an id its list does not hold', () => {
    const all = [member(1), member(2), member(3)];
    const views = [healthy(1, all), healthy(2, all), failing(3)];
    expect(RULES.removalThroughOtherHealthyNode(context(views, broken(3), 3), confirm(addr(3)), null)).toMatch(
      /never sent through 10\.5\.0\.3/,
    );
    const sick = [healthy(1, all), { ...healthy(2, all), etcdHealthy: false }, failing(3)];
    expect(RULES.removalThroughOtherHealthyNode(context(sick, broken(3), 2), confirm(addr(3)), null)).toMatch(
      /10\.5\.0\.2 is not a healthy member/,
    );
    expect(
      RULES.removalThroughOtherHealthyNode(context(views, broken(3), 1, 'ffffffffffffffff'), confirm(addr(3)), null),
    ).toMatch(/does not list this member/);
    const none = context(views, broken(3), 1);
    expect(
      RULES.removalThroughOtherHealthyNode({ ...none, replace: { ...none.replace!, via: null } }, confirm(''), null),
    ).toMatch(/No healthy node other than this member/);
  });

  it('finds a learner that has not started by its peer URL (etcd lists it without a name)', () => {
    const list = [
      member(1),
      member(2),
      member(9, { hostname: '', isLearner: true, peerUrls: [`https://${addr(3)}:2380`] }),
    ];
    expect(listedMember(list, { ...broken(3, 'learner'), memberId: null, name: null }, null)?.id).toBe(id(9));
  });
});

describe('the machine never sends a removal the rules refuse', () => {
  it('a verdict naming a member whose node answers as a healthy voter: nothing is asked, nothing removed', async () => {
    const all = [member(1), member(2), member(3)];
    const views = [healthy(1, all), healthy(2, all), healthy(3, all)];
    const removals: string[] = [];
    const machine = recoveryMachine.provide({
      actors: {
        observe: fromPromise(async () => views),
        removeMember: fromPromise<{ alreadyGone: boolean }, RemoveMemberInput>(async ({ input }) => {
          removals.push(input.memberId);
          return { alreadyGone: false };
        }),
      },
    });
    const base = context(views, broken(3), 1);
    const ctx: RecoveryContext = {
      ...base,
      steps: base.steps,
      replace: { ...initialReplace([broken(3)]) },
    };
    const snapshot = machine.resolveState({ value: { procedure: { replaceMember: 'next' } }, context: ctx });
    const actor = createActor(machine, { snapshot, input: undefined as never });
    const journal: string[] = [];
    actor.on('journal', (e) => journal.push(`${e.entry.kind}:${e.entry.what}`));
    actor.start();
    // a resolved snapshot takes its eventless transitions on the next event
    actor.send({ type: 'wake' });
    // cp-3 answers as a healthy voter: the procedure sees it came back and removes nothing
    await waitFor(actor, (s) => s.status === 'done', { timeout: 5000 });
    expect(removals).toEqual([]);
    expect(actor.getSnapshot().context.outcome).toBe('nothing-to-do');
  });

  it('a learner pending elsewhere: the confirmation is refused, journalled, counted, and nothing is sent', async () => {
    const all = [member(1), member(2), member(3), member(4, { isLearner: true }), member(5)];
    const views = [healthy(1, all), healthy(2, all), healthy(3, all), failing(5)];
    const removals: string[] = [];
    const machine = recoveryMachine.provide({
      actors: {
        observe: fromPromise(async () => views),
        removeMember: fromPromise<{ alreadyGone: boolean }, RemoveMemberInput>(async ({ input }) => {
          removals.push(input.memberId);
          return { alreadyGone: false };
        }),
      },
    });
    const base = context(views, broken(5), 1);
    const snapshot = machine.resolveState({
      value: { procedure: { replaceMember: 'next' } },
      context: { ...base, replace: initialReplace([broken(5)]) },
    });
    const actor = createActor(machine, { snapshot, input: undefined as never });
    const journal: { kind: string; what: string }[] = [];
    actor.on('journal', (e) => journal.push({ kind: e.entry.kind, what: e.entry.what }));
    actor.start();
    actor.send({ type: 'wake' });
    const asked = await waitFor(actor, (s) => s.context.prompt?.kind === 'typed-address', { timeout: 5000 });
    expect(asked.context.prompt?.target).toBe(addr(5));
    actor.send({ type: 'confirm', address: addr(5) });
    await new Promise((r) => setTimeout(r, 50));
    const after = actor.getSnapshot();
    expect(removals).toEqual([]);
    expect(after.context.guardStops.map((g) => g.rule)).toEqual(['noLearnerPending']);
    expect(after.context.notice).toMatch(/cp-4 is still a learner/);
    expect(journal).toContainEqual({ kind: 'refusal', what: 'noLearnerPending' });
    // a wrong address is refused by rule 3 first
    actor.send({ type: 'confirm', address: addr(1) });
    await new Promise((r) => setTimeout(r, 50));
    expect(actor.getSnapshot().context.guardStops.map((g) => g.rule)).toEqual(['noLearnerPending', 'addressMatches']);
    expect(removals).toEqual([]);
    actor.stop();
  });
});
