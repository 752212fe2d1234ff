/**
 * The NOSPACE playbook's SAFETY rules (machines/nospace/rules.ts), each attacked: a defragment or a disarm on a lost
 * quorum, a second defragment while one runs, the leader before its followers, a disarm before every member is
 * defragmented. Then the machine: a typed address the rules refuse never reaches the defragment or disarm actor, and
 * the refusal is journalled and counted.
 */
import { describe, expect, it } from 'vitest';
import { createActor, fromPromise, waitFor, type StateValue } from 'xstate';
import { recoveryMachine } from '../../machines/recovery/machine.js';
import { initialContext } from '../../machines/recovery/context.js';
import { firstRefusal, RULES } from '../../machines/guards.js';
import { defragOrder, leaderNode, quotaAdvice, quotaPatchYaml, withReadings } from '../../machines/nospace/space.js';
import type { NospaceMemberProgress, NospaceState } from '../../machines/nospace/types.js';
import type { Prompt, RecoveryContext, RecoveryEvent } from '../../machines/recovery.js';
import type { VerdictResult } from '../../machines/decisions.js';

const [CP1, CP2, CP3] = ['10.5.0.2', '10.5.0.3', '10.5.0.4'] as const;
const NODES = [CP1, CP2, CP3];

const member = (node: string, status: NospaceMemberProgress['status']): NospaceMemberProgress => ({
  node,
  dbSizeBefore: 1_200_000,
  dbSizeAfter: status === 'done' ? 400_000 : null,
  inUseBefore: 400_000,
  inUseAfter: status === 'done' ? 400_000 : null,
  status,
});

const space = (statuses: NospaceMemberProgress['status'][], extra: Partial<NospaceState> = {}): NospaceState => ({
  order: [CP2, CP3, CP1],
  members: NODES.map((n, i) => member(n, statuses[i] ?? 'pending')),
  disarmed: false,
  leader: CP1,
  skipped: [],
  ...extra,
});

const verdict = (v: VerdictResult['verdict']): VerdictResult => ({ verdict: v, reason: v, freshest: CP1 });

function ctx(nospace: NospaceState | null, v: VerdictResult['verdict'] = 'nospace'): RecoveryContext {
  return {
    ...initialContext({ nodes: NODES, operator: 'tester', mode: 'drill' }, 0),
    procedure: 'nospace',
    verdict: verdict(v),
    nospace,
  };
}

const confirm = (address: string): RecoveryEvent => ({ type: 'confirm', address });

describe('the NOSPACE rules themselves', () => {
  it('never on a lost quorum: the verdict must be NOSPACE, and a member must still lead', () => {
    for (const v of ['lost', 'degraded', 'unknown', 'healthy'] as const)
      expect(RULES.nospaceQuorumHolds(ctx(space([]), v), confirm(CP2), CP2)).toMatch(
        new RegExp(`^The assessment's verdict is ${v}, not NOSPACE`),
      );
    expect(RULES.nospaceQuorumHolds(ctx(space([], { leader: null })), confirm(CP2), CP2)).toMatch(
      /^No member names a leader in its status now: quorum may be lost/,
    );
    expect(RULES.nospaceQuorumHolds(ctx(space([])), confirm(CP2), CP2)).toBeNull();
  });

  it('one member at a time: no second defragment while one runs', () => {
    const running = ctx(space(['pending', 'defragmenting', 'pending']));
    expect(RULES.oneDefragAtATime(running, confirm(CP3), CP3)).toBe(
      `${CP2} is still being defragmented: one member at a time, so ${CP3} waits until it is done.`,
    );
    // the member being defragmented itself (a resume continuing it) is not a second one
    expect(RULES.oneDefragAtATime(running, confirm(CP2), CP2)).toBeNull();
    expect(RULES.oneDefragAtATime(ctx(space(['pending', 'done', 'pending'])), confirm(CP3), CP3)).toBeNull();
  });

  it('the leader last: never before every follower is done (or left out by an override)', () => {
    expect(RULES.leaderDefragmentedLast(ctx(space(['pending', 'done', 'pending'])), confirm(CP1), CP1)).toBe(
      `${CP1} leads the cluster: it is defragmented last, after ${CP3}.`,
    );
    expect(RULES.leaderDefragmentedLast(ctx(space(['pending', 'failed', 'pending'])), confirm(CP1), CP1)).toMatch(
      /after 10\.5\.0\.3, 10\.5\.0\.4\.$/,
    );
    expect(RULES.leaderDefragmentedLast(ctx(space(['pending', 'done', 'done'])), confirm(CP1), CP1)).toBeNull();
    const skipped = space(['pending', 'failed', 'done'], { skipped: [CP2] });
    expect(RULES.leaderDefragmentedLast(ctx(skipped), confirm(CP1), CP1)).toBeNull();
    // a follower is never held back by the leader's rule
    expect(RULES.leaderDefragmentedLast(ctx(space([])), confirm(CP2), CP2)).toBeNull();
  });

  it('no disarm before every member was defragmented, unless one was left out by an override', () => {
    expect(RULES.defragmentedBeforeDisarm(ctx(space(['pending', 'done', 'done'])), confirm(CP2), CP2)).toMatch(
      /^The alarm is disarmed only once every member is defragmented \(10\.5\.0\.2 not yet\)/,
    );
    expect(RULES.defragmentedBeforeDisarm(ctx(null), confirm(CP2), CP2)).toMatch(/none read yet/);
    expect(RULES.defragmentedBeforeDisarm(ctx(space(['done', 'done', 'done'])), confirm(CP2), CP2)).toBeNull();
    const left = space(['done', 'failed', 'done'], { skipped: [CP2] });
    expect(RULES.defragmentedBeforeDisarm(ctx(left), confirm(CP2), CP2)).toBeNull();
  });

  it('the order: followers first in the given order, the leader (by the members’ majority) last', () => {
    const reading = (node: string, memberId: string, leader: string) => ({
      node,
      answered: true,
      memberId,
      leader,
      dbSize: 1,
      dbSizeInUse: 1,
      alarms: [],
      quotaBytes: null,
      error: null,
    });
    const readings = [reading(CP1, 'a1', 'a2'), reading(CP2, 'a2', 'a2'), reading(CP3, 'a3', 'a1')];
    expect(leaderNode(readings)).toBe(CP2);
    expect(defragOrder(NODES, CP2)).toEqual([CP1, CP3, CP2]);
    expect(withReadings(null, NODES, readings).order).toEqual([CP1, CP3, CP2]);
    expect(leaderNode(readings.map((r) => ({ ...r, leader: '0000000000000000' })))).toBeNull();
  });

  it('the quota advice gives the exact YAML for cluster.etcd.extraArgs when the data is near the quota', () => {
    expect(quotaPatchYaml(4294967296)).toEqual([
      'cluster:',
      '  etcd:',
      '    extraArgs:',
      '      quota-backend-bytes: "4294967296"',
    ]);
    const gib = 1024 ** 3;
    const near = quotaAdvice({
      ...space(['done', 'done', 'done']),
      members: NODES.map((n) => ({ ...member(n, 'done'), inUseAfter: 1.8 * gib, dbSizeAfter: 1.8 * gib })),
      quotaBytes: null,
    });
    expect(near.near).toBe(true);
    expect(near.lines[0]).toBe(
      "The largest member now uses 1.8 GiB of its 2.0 GiB quota (90%, etcd's default: none is set). It will fill again soon: raise quota-backend-bytes to 4.0 GiB (etcd suggests at most 8 GiB), or delete data.",
    );
    expect(near.lines[1]).toContain('quota-backend-bytes: "4294967296"');
    expect(quotaAdvice({ ...space(['done', 'done', 'done']), quotaBytes: 8 * gib }).near).toBe(false);
  });
});

/** The machine held at a typed confirmation, as a crafted context puts it: which calls reach the actors? */
async function attempt(value: StateValue, context: RecoveryContext, prompt: Prompt, event: RecoveryEvent) {
  const calls: string[] = [];
  const machine = recoveryMachine.provide({
    actors: {
      defragmentMember: fromPromise(async ({ input }: { input: { node: string } }) => {
        calls.push(`defrag ${input.node}`);
        throw new Error('stop here');
      }),
      disarmAlarms: fromPromise(async ({ input }: { input: { node: string } }) => {
        calls.push(`disarm ${input.node}`);
        throw new Error('stop here');
      }),
    } as never,
  });
  const journal: string[] = [];
  const snapshot = machine.resolveState({ value, context: { ...context, prompt } });
  const actor = createActor(machine, { snapshot, input: undefined as never });
  actor.on('journal', (e) => journal.push(`${e.entry.kind} ${e.entry.what}`));
  actor.start();
  actor.send(event);
  await waitFor(actor, () => true);
  await new Promise((r) => setTimeout(r, 10));
  const end = actor.getSnapshot();
  actor.stop();
  return { calls, journal, guardStops: end.context.guardStops.map((g) => g.rule), value: end.value };
}

const typed = (id: string, target: string): Prompt => ({
  id,
  kind: 'typed-address',
  question: '?',
  detail: '',
  target,
  recommended: null,
});
const DEFRAG = { procedure: { nospace: { defragment: 'confirming' } } };
const DISARM = { procedure: { nospace: { disarm: 'confirming' } } };

describe('the machine: a refused confirmation never reaches the cluster', () => {
  it('the leader typed while a follower is left: refused, counted, journalled, nothing sent', async () => {
    const r = await attempt(DEFRAG, ctx(space(['pending', 'done', 'pending'])), typed('d', CP1), confirm(CP1));
    expect(r.calls).toEqual([]);
    expect(r.guardStops).toEqual(['leaderDefragmentedLast']);
    expect(r.journal).toContain('refusal leaderDefragmentedLast');
  });

  it('a second member while one is being defragmented, a wrong address, a lost quorum: each refused', async () => {
    const busy = await attempt(
      DEFRAG,
      ctx(space(['pending', 'defragmenting', 'pending'])),
      typed('d', CP3),
      confirm(CP3),
    );
    expect(busy.calls).toEqual([]);
    expect(busy.guardStops).toEqual(['oneDefragAtATime']);
    const wrong = await attempt(DEFRAG, ctx(space([])), typed('d', CP2), confirm(CP3));
    expect(wrong.calls).toEqual([]);
    expect(wrong.guardStops).toEqual(['addressMatches']);
    const lost = await attempt(DEFRAG, ctx(space([]), 'lost'), typed('d', CP2), confirm(CP2));
    expect(lost.calls).toEqual([]);
    expect(lost.guardStops).toEqual(['nospaceQuorumHolds']);
    // the same confirmation where the rules allow it does reach the actor
    const ok = await attempt(DEFRAG, ctx(space([])), typed('d', CP2), confirm(CP2));
    expect(ok.calls).toEqual([`defrag ${CP2}`]);
    expect(ok.guardStops).toEqual([]);
  });

  it('a disarm before every member is defragmented, or on a lost quorum: refused, nothing sent', async () => {
    const early = await attempt(DISARM, ctx(space(['pending', 'done', 'done'])), typed('x', CP2), confirm(CP2));
    expect(early.calls).toEqual([]);
    expect(early.guardStops).toEqual(['defragmentedBeforeDisarm']);
    const lost = await attempt(DISARM, ctx(space(['done', 'done', 'done']), 'degraded'), typed('x', CP2), confirm(CP2));
    expect(lost.calls).toEqual([]);
    expect(lost.guardStops).toEqual(['nospaceQuorumHolds']);
    const ok = await attempt(DISARM, ctx(space(['done', 'done', 'done'])), typed('x', CP2), confirm(CP2));
    expect(ok.calls).toEqual([`disarm ${CP2}`]);
  });

  it('firstRefusal names the NOSPACE rules like the recovery’s', () => {
    expect(firstRefusal(['defragmentedBeforeDisarm'], ctx(space(['pending'])), confirm(CP2), CP2)?.rule).toBe(
      'defragmentedBeforeDisarm',
    );
  });
});
