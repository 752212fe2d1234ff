import { describe, expect, it } from 'vitest';
import {
  alarmInStatusError,
  allPreparing,
  bootstrapAlreadyDone,
  bootstrapLanded,
  computeVerdict,
  freshestMember,
  hashCheckDecision,
  memberHealth,
  newerLiveMembers,
  planPreparation,
  quorumSize,
  recoveryComplete,
  resetTookEffect,
  timeToRecoverMs,
  waitingCause,
  wipeLabels,
  type NodeObservation,
} from '../../machines/decisions.js';
import type { EtcdMember, EtcdMemberStatus } from '../../src/talos/types.js';

const ids = ['aaaaaaaaaaaaaaa1', 'aaaaaaaaaaaaaaa2', 'aaaaaaaaaaaaaaa3', 'aaaaaaaaaaaaaaa4', 'aaaaaaaaaaaaaaa5'];
const members = (n: number): EtcdMember[] =>
  ids.slice(0, n).map((id, i) => ({
    id,
    hostname: `cp-${i + 1}`,
    peerUrls: [`https://127.0.0.${i + 2}:2380`],
    clientUrls: [],
    isLearner: false,
  }));
/** Node 'a' is member ids[0] named cp-1, 'b' is ids[1] named cp-2, …: each node reports its own member. */
const indexOf = (node: string): number => node.charCodeAt(0) - 97;
const status = (applied: bigint, leader = ids[0] as string, errors: string[] = [], node = 'a'): EtcdMemberStatus => ({
  memberId: ids[indexOf(node)] as string,
  protocolVersion: '3.6.4',
  storageVersion: '3.6.0',
  dbSize: 1000n,
  dbSizeInUse: 900n,
  leader,
  raftIndex: applied,
  raftTerm: 2n,
  raftAppliedIndex: applied,
  errors,
  isLearner: false,
});

function healthy(node: string, n = 3, applied = 100n): NodeObservation {
  return {
    node,
    hostname: `cp-${indexOf(node) + 1}`,
    reachable: true,
    machineType: 'controlplane',
    etcdService: 'Running',
    etcdHealthy: true,
    members: members(n),
    membersError: null,
    status: status(applied, ids[0], [], node),
    statusError: null,
  };
}
/** etcd still serving but without a leader: what the survivor of a lost quorum answers. */
function leaderless(node: string, applied = 100n): NodeObservation {
  return {
    ...healthy(node),
    etcdHealthy: false,
    members: null,
    membersError: 'etcdserver: no leader',
    status: status(applied, '0000000000000000', ['etcdserver: no leader'], node),
  };
}
function failed(node: string): NodeObservation {
  return {
    ...healthy(node),
    etcdService: 'Failed',
    etcdHealthy: false,
    members: null,
    membersError: 'context deadline exceeded',
    status: null,
    statusError: 'context deadline exceeded',
  };
}
function unreachable(node: string): NodeObservation {
  return {
    node,
    hostname: null,
    reachable: false,
    machineType: 'unknown',
    etcdService: null,
    etcdHealthy: null,
    members: null,
    membersError: null,
    status: null,
    statusError: null,
    error: 'connection refused',
  };
}

describe('quorum verdict from every local view', () => {
  it('quorum is floor(n/2)+1', () => {
    expect([1, 2, 3, 4, 5].map(quorumSize)).toEqual([1, 2, 2, 3, 3]);
  });

  it('all members healthy: healthy, nothing to recover', () => {
    const r = computeVerdict([healthy('a'), healthy('b'), healthy('c')]);
    expect(r.verdict).toBe('healthy');
    expect(r.reason).toMatch(/nothing to recover/);
  });

  it('one of three down: quorum holds, recommend replacing the member', () => {
    const r = computeVerdict([healthy('a'), healthy('b'), failed('c')]);
    expect(r.verdict).toBe('degraded');
    expect(r.reason).toMatch(/replace the broken member/);
  });

  it('two of three broken: quorum lost, freshest is the survivor', () => {
    const r = computeVerdict([leaderless('a', 500n), failed('b'), failed('c')]);
    expect(r.verdict).toBe('lost');
    expect(r.freshest).toBe('a');
  });

  it('never calls quorum lost from one node view while others could not be asked', () => {
    const r = computeVerdict([leaderless('a'), unreachable('b'), unreachable('c')]);
    expect(r.verdict).toBe('unknown');
    expect(r.reason).toMatch(/could not be asked/);
  });

  it('the views that answered can decide it even when one node is unreachable', () => {
    expect(computeVerdict([failed('a'), failed('b'), unreachable('c')]).verdict).toBe('lost');
    expect(computeVerdict([healthy('a'), healthy('b'), unreachable('c')]).verdict).toBe('degraded');
  });

  it('counts members listed by a node but not given as control-plane nodes', () => {
    // two nodes given and healthy, but their lists name five voting members: 2 of 5 is no quorum… unless the
    // three others, which nobody could ask, are fine: unknown, not healthy.
    const five = (node: string) => ({ ...healthy(node), members: members(5) });
    expect(computeVerdict([five('a'), five('b')]).verdict).toBe('unknown');
  });

  it('learners do not count as voting members; a learner no node given matches is a member to replace', () => {
    const withLearner = (node: string) => ({
      ...healthy(node),
      members: [...members(2), { ...members(3)[2]!, isLearner: true }],
    });
    const r = computeVerdict([withLearner('a'), withLearner('b')]);
    // 2 of 2 voters healthy: quorum holds, but the leftover learner is named
    expect(r).toMatchObject({ verdict: 'degraded', broken: [{ node: null, memberId: ids[2], kind: 'learner' }] });
    expect(r.reason).toMatch(/^Quorum holds \(2 of 2 voting members healthy, quorum needs 2\)/);
  });

  it('blank machines in maintenance mode count as broken members', () => {
    const blank = (node: string): NodeObservation => ({ ...unreachable(node), maintenance: true });
    const r = computeVerdict([leaderless('a'), blank('b'), blank('c')]);
    expect(r.verdict).toBe('lost');
  });

  it('single node whose etcd lost its data: lost', () => {
    expect(computeVerdict([failed('a')]).verdict).toBe('lost');
  });

  it('workers are left out of the count', () => {
    const worker = { ...failed('w'), machineType: 'worker' as const };
    expect(computeVerdict([healthy('a', 1), worker]).verdict).toBe('healthy');
  });

  it('a healthy member whose EtcdStatus only passed its deadline is read again, never named broken', () => {
    // a loaded machine: cp-1's etcd runs and passes Talos's quorum health check, but its status read timed out
    const slow: NodeObservation = {
      ...healthy('a'),
      status: null,
      statusError: 'context deadline exceeded',
      statusTimedOut: true,
    };
    expect(memberHealth(slow)).toBe('unknown');
    const r = computeVerdict([slow, healthy('b'), healthy('c')]);
    expect(r.verdict).toBe('unknown');
    expect(r.broken ?? []).toEqual([]);
    expect(r.reason).toBe(
      'Quorum holds (2 of 3 voting members healthy, quorum needs 2), but the etcd state of cp-1 (a) could not be read; assess again before deciding.',
    );
    // the same timeout on a node whose etcd health check fails is evidence: that member is broken
    const failing = { ...slow, etcdHealthy: false };
    expect(computeVerdict([failing, healthy('b'), healthy('c')])).toMatchObject({
      verdict: 'degraded',
      broken: [{ node: 'a', kind: 'etcd-failing' }],
    });
  });

  it('no control-plane node at all: unknown', () => {
    expect(computeVerdict([]).verdict).toBe('unknown');
  });
});

describe('freshest member', () => {
  it('picks the highest applied index, compared as 64-bit integers', () => {
    const big = leaderless('b', 2n ** 62n);
    expect(freshestMember([leaderless('a', 2n ** 53n + 1n), big, failed('c')])).toBe('b');
  });
  it('is null when no etcd answered', () => {
    expect(freshestMember([failed('a'), unreachable('b')])).toBeNull();
  });
});

describe('preparation plan', () => {
  it('wipes reachable nodes, re-creates blank ones, snapshot source last, ETCD partition too where it exists', () => {
    const blank: NodeObservation = { ...unreachable('b'), maintenance: true };
    const plan = planPreparation([leaderless('a'), blank, failed('c')], { a: 'ephemeral', c: 'partition' }, 'a');
    expect(plan).toEqual([
      { node: 'b', preparation: 'recreate', labels: [] },
      { node: 'c', preparation: 'wipe', labels: ['EPHEMERAL', 'ETCD'] },
      { node: 'a', preparation: 'wipe', labels: ['EPHEMERAL'] },
    ]);
  });
  it('never plans to touch a node it could not identify', () => {
    expect(planPreparation([unreachable('x')], {}, null)).toEqual([]);
  });
  it('wipe labels', () => {
    expect(wipeLabels(null)).toEqual(['EPHEMERAL']);
    expect(wipeLabels('partition')).toEqual(['EPHEMERAL', 'ETCD']);
  });
});

describe('skip-hash-check', () => {
  const base = { kind: 'bbolt' as const, structure: 'ok' as const, usable: true, problems: [] };
  it('is needed only for a raw copy whose bbolt check passed', () => {
    expect(hashCheckDecision({ ...base, integrity: 'absent' })).toMatchObject({ usable: true, skipHashCheck: true });
    expect(hashCheckDecision({ ...base, integrity: 'verified' })).toMatchObject({ usable: true, skipHashCheck: false });
  });
  it('refuses a mismatching trailer, a damaged database or something that is not bbolt', () => {
    expect(hashCheckDecision({ ...base, integrity: 'mismatch' }).usable).toBe(false);
    expect(hashCheckDecision({ ...base, integrity: 'absent', structure: 'damaged' }).usable).toBe(false);
    const gz = hashCheckDecision({ ...base, kind: 'gzip', integrity: 'absent', usable: false });
    expect(gz).toMatchObject({ usable: false, skipHashCheck: false });
    expect(gz.reason).toMatch(/gzip/);
  });
});

describe('newer data than the snapshot', () => {
  it('names live members ahead of the snapshot source', () => {
    const obs = [leaderless('a', 100n), leaderless('b', 150n), failed('c')];
    expect(newerLiveMembers(obs, { node: 'a', raftAppliedIndex: '100' })).toEqual(['b']);
    expect(newerLiveMembers(obs, { node: 'b', raftAppliedIndex: '150' })).toEqual([]);
  });
  it('for a given file, every member whose etcd still answers may be newer', () => {
    expect(newerLiveMembers([leaderless('a'), failed('c')], { node: null, raftAppliedIndex: null })).toEqual(['a']);
  });
});

describe('waits', () => {
  it('names what a Waiting node waits for', () => {
    expect(waitingCause({ etcdService: 'Waiting', etcdLastEvent: 'Waiting for time sync' })).toBe('time sync');
    expect(waitingCause({ etcdService: 'Preparing', etcdLastEvent: 'Running pre state' })).toBeNull();
  });
  it('all Preparing', () => {
    expect(allPreparing([{ etcdService: 'Preparing' }, { etcdService: 'Preparing' }])).toBe(true);
    expect(allPreparing([{ etcdService: 'Preparing' }, { etcdService: 'Waiting' }])).toBe(false);
    expect(allPreparing([])).toBe(false);
  });
  it('recovery is complete only when all are Running, healthy and agree on the full member list', () => {
    expect(recoveryComplete([healthy('a'), healthy('b'), healthy('c')]).done).toBe(true);
    const partial = [healthy('a', 2), healthy('b', 2), healthy('c', 2)];
    expect(recoveryComplete(partial)).toMatchObject({ done: false, reason: expect.stringMatching(/2 of 3/) });
    const disagree = [healthy('a'), { ...healthy('b'), members: members(2) }, healthy('c')];
    expect(recoveryComplete(disagree).done).toBe(false);
    expect(recoveryComplete([healthy('a'), failed('b')]).reason).toMatch(/^b: etcd is Failed/);
  });
});

describe('AlreadyExists after an interrupted bootstrap', () => {
  const sent = { wiped: true, uploadSent: true, bootstrapSent: true };
  it('counts as done only when the journal shows wipe, upload and bootstrap and etcd is starting', () => {
    expect(bootstrapAlreadyDone({ ...sent, etcdService: 'Running' })).toBe(true);
    expect(bootstrapAlreadyDone({ ...sent, wiped: false, etcdService: 'Running' })).toBe(false);
    expect(bootstrapAlreadyDone({ ...sent, bootstrapSent: false, etcdService: 'Running' })).toBe(false);
    expect(bootstrapAlreadyDone({ ...sent, etcdService: 'Failed' })).toBe(false);
  });
});

describe('a quorum verdict without a leader rests on EtcdStatus', () => {
  it('a member that answers status with a leader is healthy even when its member list timed out', () => {
    const listTimedOut = { ...healthy('c'), members: null, membersError: 'context deadline exceeded' };
    expect(computeVerdict([healthy('a'), healthy('b'), listTimedOut]).verdict).toBe('healthy');
  });
  it('lists failing with "no leader" are explained in the reason, the freshest comes from the status', () => {
    const v = computeVerdict([leaderless('a', 10n), leaderless('b', 30n), leaderless('c', 20n)]);
    expect(v).toMatchObject({ verdict: 'lost', freshest: 'b' });
    expect(v.reason).toMatch(/etcd answers them only with a leader/);
  });
});

describe('evidence of a Reset and of a Bootstrap (Talos answers before it acts)', () => {
  const sentAt = 1_000_000;
  const up = (etcdService: string, etcdHistoryStart: number | null) => ({
    reachable: true,
    etcdService,
    etcdHistoryStart,
  });
  it('a node shows a Reset took effect once it answers with an etcd history restarted after the send', () => {
    expect(resetTookEffect(up('Preparing', sentAt - 5000), sentAt)).toBe(false);
    expect(resetTookEffect(up('Preparing', sentAt + 5000), sentAt)).toBe(true);
    // a trimmed history (null) or no send time proves nothing
    expect(resetTookEffect(up('Preparing', null), sentAt)).toBe(false);
    expect(resetTookEffect(up('Preparing', sentAt + 5000), null)).toBe(false);
  });
  it('a node that did not answer is no evidence that a Reset took effect (one timed-out read looks the same)', () => {
    expect(resetTookEffect({ reachable: false }, sentAt)).toBe(false);
    expect(resetTookEffect(null, sentAt)).toBe(false);
  });
  it('a Bootstrap landed when etcd runs or a new runner began after the send, whatever its texts', () => {
    expect(bootstrapLanded(up('Preparing', sentAt + 1), sentAt)).toBe(true);
    expect(bootstrapLanded(up('Running', sentAt - 1), sentAt)).toBe(true);
    expect(bootstrapLanded(up('Preparing', sentAt - 1), sentAt)).toBe(false);
    expect(bootstrapLanded({ reachable: false, etcdService: null }, sentAt)).toBe(false);
  });
});

describe('time to recover', () => {
  const steps = (assessStart: number | null, verifyEnd: number | null) => [
    { name: 'connect', startedAt: 0, endedAt: 1 },
    { name: 'assess', startedAt: assessStart, endedAt: null },
    { name: 'verify', startedAt: null, endedAt: verifyEnd },
  ];
  it('runs from the start of the assessment to the end of the verification, only for a recovery', () => {
    expect(timeToRecoverMs({ steps: steps(1000, 185_000), outcome: 'recovered' })).toBe(184_000);
    expect(timeToRecoverMs({ steps: steps(1000, 185_000), outcome: 'failed' })).toBeNull();
    expect(timeToRecoverMs({ steps: steps(null, 185_000), outcome: 'recovered' })).toBeNull();
  });
});

describe('a degraded verdict names each broken member, its kind and its id from a healthy node', () => {
  /** what a node whose etcd crash-loops answers: the service flaps in Waiting, EtcdStatus cannot reach etcd */
  function crashLooping(node: string): NodeObservation {
    return {
      ...failed(node),
      etcdService: 'Waiting',
      etcdLastEvent: 'Error running Containerd(etcd), going to restart forever: task "etcd" failed: exit code 2',
    };
  }
  const blank = (node: string): NodeObservation => ({ ...unreachable(node), maintenance: true });
  /** the node addresses of the fixtures' peer URLs, so a node with no hostname is matched by address */
  const at = (o: NodeObservation, i: number): NodeObservation => ({ ...o, node: `127.0.0.${i + 2}` });

  it('crash-looping etcd: etcd-failing, its member id read from a healthy node, one calm sentence', () => {
    const r = computeVerdict([healthy('a'), healthy('b'), crashLooping('c')]);
    expect(r.verdict).toBe('degraded');
    expect(r.broken).toEqual([
      {
        node: 'c',
        memberId: ids[2],
        name: 'cp-3',
        kind: 'etcd-failing',
        why: `cp-3 (c) answers, but its etcd keeps crashing and restarting; its member ${ids[2]} is read from a's member list.`,
      },
    ]);
    expect(r.reason).toBe(
      'Quorum holds (2 of 3 voting members healthy, quorum needs 2): replace the broken member (cp-3: etcd failing) instead of a full recovery.',
    );
  });

  it('Failed etcd and a Running etcd that is not healthy are etcd-failing too', () => {
    expect(computeVerdict([healthy('a'), healthy('b'), failed('c')]).broken?.[0]).toMatchObject({
      kind: 'etcd-failing',
      why: expect.stringMatching(/^cp-3 \(c\) answers, but its etcd service has Failed;/),
    });
    const unhealthy = { ...healthy('c'), etcdHealthy: false };
    expect(computeVerdict([healthy('a'), healthy('b'), unhealthy]).broken?.[0]).toMatchObject({
      kind: 'etcd-failing',
      memberId: ids[2],
    });
  });

  it('a node that does not answer is unreachable, matched by its address when its hostname is unknown', () => {
    const r = computeVerdict([at(healthy('a'), 0), at(healthy('b'), 1), at(unreachable('c'), 2)]);
    expect(r.verdict).toBe('degraded');
    expect(r.broken).toEqual([
      {
        node: '127.0.0.4',
        memberId: ids[2],
        name: 'cp-3',
        kind: 'unreachable',
        why: expect.stringMatching(/^127\.0\.0\.4 does not answer .* waited for before anything is removed;/),
      },
    ]);
  });

  it('a blank machine in maintenance mode at the address is blank; its old member comes from a healthy list', () => {
    const r = computeVerdict([healthy('a'), healthy('b'), at(blank('c'), 2)]);
    expect(r.broken).toEqual([
      expect.objectContaining({ node: '127.0.0.4', memberId: ids[2], name: 'cp-3', kind: 'blank' }),
    ]);
    expect(r.broken?.[0]?.why).toMatch(/blank machine in maintenance mode/);
  });

  it('a learner that was never promoted, listed with an empty name, is matched by its peer URL', () => {
    const unstarted = { ...members(3)[2]!, hostname: '', isLearner: true };
    const lists = [...members(2), unstarted];
    const joining = { ...at(healthy('c'), 2), hostname: null, etcdHealthy: false, members: null };
    const r = computeVerdict([
      { ...at(healthy('a'), 0), members: lists },
      { ...at(healthy('b'), 1), members: lists },
      joining,
    ]);
    expect(r.verdict).toBe('degraded');
    expect(r.broken).toEqual([
      expect.objectContaining({ node: '127.0.0.4', memberId: ids[2], name: null, kind: 'learner' }),
    ]);
  });

  it('a member a healthy node lists that matches no node given is broken with node null', () => {
    const r = computeVerdict([healthy('a', 4), healthy('b', 4), healthy('c', 4)]);
    // 3 of 4 voting members healthy: quorum (3) holds, cp-4 is a leftover
    expect(r.verdict).toBe('degraded');
    expect(r.broken).toEqual([
      {
        node: null,
        memberId: ids[3],
        name: 'cp-4',
        kind: 'unreachable',
        why: `a lists member cp-4 (${ids[3]}), which matches no node given: a machine already gone, or a node left out of the node list.`,
      },
    ]);
  });

  it('the id never comes from the broken node itself: an unreachable member cannot look removable from its own view', () => {
    // c's etcd fails, yet c claims in its own status and member list that its member is cp-1's id: a removal of that id
    // would take a healthy member out. Its id is read from a and b only, and a healthy member's id is never taken.
    const liar: NodeObservation = {
      ...crashLooping('c'),
      members: [{ ...members(3)[0]!, hostname: 'cp-3', peerUrls: ['https://c:2380'] }],
      status: { ...status(100n, ids[0], [], 'a') },
    };
    const r = computeVerdict([healthy('a'), healthy('b'), liar]);
    expect(r.broken?.map((b) => b.memberId)).toEqual([ids[2]]);

    // the healthy nodes do not list c any more, and c names a healthy member after itself: nothing is removable
    const gone = (node: string) => ({ ...healthy(node), members: members(2) });
    const impostor: NodeObservation = { ...unreachable('c'), hostname: 'cp-2' };
    const r2 = computeVerdict([gone('a'), gone('b'), impostor]);
    expect(r2.broken).toEqual([expect.objectContaining({ node: 'c', memberId: null, kind: 'unreachable' })]);
    expect(r2.broken?.[0]?.why).toMatch(/no healthy member lists a member for it/);

    // without any healthy node that lists members there is no id at all, whatever the broken node says
    const noLists = (node: string) => ({ ...healthy(node), members: null, membersError: 'context deadline exceeded' });
    const r3 = computeVerdict([noLists('a'), noLists('b'), liar]);
    expect(r3.broken).toEqual([expect.objectContaining({ node: 'c', memberId: null, kind: 'etcd-failing' })]);
    expect(r3.broken?.[0]?.why).toMatch(/no healthy member could list the members/);
  });

  it('two listed members that both match a node: neither is chosen, nor listed as a leftover', () => {
    const twins = [...members(3), { ...members(3)[2]!, id: 'bbbbbbbbbbbbbbb3', isLearner: true }];
    const r = computeVerdict([
      { ...healthy('a'), members: twins },
      { ...healthy('b'), members: twins },
      crashLooping('c'),
    ]);
    expect(r.broken).toEqual([expect.objectContaining({ node: 'c', memberId: null })]);
    expect(r.broken?.[0]?.why).toMatch(/more than one member/);
  });

  it('a five-node cluster with two broken members names both', () => {
    const r = computeVerdict([
      healthy('a', 5),
      healthy('b', 5),
      healthy('c', 5),
      crashLooping('d'),
      { ...unreachable('e'), hostname: 'cp-5' },
    ]);
    expect(r.verdict).toBe('degraded');
    expect(r.broken?.map((b) => [b.node, b.memberId, b.kind])).toEqual([
      ['d', ids[3], 'etcd-failing'],
      ['e', ids[4], 'unreachable'],
    ]);
    expect(r.reason).toMatch(/replace the broken members \(cp-4: etcd failing, cp-5: not answering\)/);
  });

  it('matches an IPv6 node by its bracketed peer URL, and a node given by a DNS name by its hostname', () => {
    const v6 = ['fd00::2', 'fd00::3', 'fd00::4'];
    const list = members(3).map((m, i) => ({ ...m, peerUrls: [`https://[${v6[i]}]:2380`] }));
    const node = (o: NodeObservation, i: number): NodeObservation => ({ ...o, node: v6[i] as string, members: list });
    const r = computeVerdict([node(healthy('a'), 0), node(healthy('b'), 1), node(unreachable('c'), 2)]);
    expect(r.broken).toEqual([expect.objectContaining({ node: 'fd00::4', memberId: ids[2], kind: 'unreachable' })]);
    const dns = { ...failed('c'), node: 'cp-3.example.net', hostname: 'cp-3' };
    expect(computeVerdict([healthy('a'), healthy('b'), dns]).broken).toEqual([
      expect.objectContaining({ node: 'cp-3.example.net', memberId: ids[2], kind: 'etcd-failing' }),
    ]);
  });

  it('while quorum holds the freshest member is a working voter, never a learner or a CORRUPT member ahead of it', () => {
    const lists = [...members(2), { ...members(3)[2]!, isLearner: true }];
    const learnerAhead = { ...healthy('c', 3, 900n), members: lists };
    const r = computeVerdict([
      { ...healthy('a', 3, 100n), members: lists },
      { ...healthy('b', 3, 200n), members: lists },
      learnerAhead,
    ]);
    expect(r).toMatchObject({ verdict: 'degraded', freshest: 'b', broken: [{ node: 'c', kind: 'learner' }] });
  });

  it('no broken list for lost or unknown quorum', () => {
    expect(computeVerdict([leaderless('a'), failed('b'), failed('c')]).broken).toBeUndefined();
    expect(computeVerdict([leaderless('a'), unreachable('b'), unreachable('c')]).broken).toBeUndefined();
  });
});

describe('alarms: NOSPACE makes the cluster read-only, CORRUPT breaks a member', () => {
  /** etcd lists every active alarm in EtcdStatus's errors as the AlarmMember's compact text (maintenance.go) */
  const alarmText = (hexId: string, alarm: string) => `memberID:${BigInt(`0x${hexId}`).toString()} alarm:${alarm}`;
  const withAlarms = (o: NodeObservation, ...alarms: [string, 'NOSPACE' | 'CORRUPT'][]): NodeObservation => ({
    ...o,
    status: o.status && { ...o.status, errors: [...o.status.errors, ...alarms.map(([id, a]) => alarmText(id, a))] },
    alarms: o.status?.leader === '0000000000000000' ? null : alarms.map(([memberId, alarm]) => ({ memberId, alarm })),
  });
  const everyMember = (o: NodeObservation) =>
    withAlarms(o, [ids[0]!, 'NOSPACE'], [ids[1]!, 'NOSPACE'], [ids[2]!, 'NOSPACE']);

  it('reads an alarm out of an EtcdStatus error, and nothing out of a real error', () => {
    expect(alarmInStatusError('memberID:10276657743932975437 alarm:NOSPACE ')).toEqual({
      memberId: '8e9e05c52164694d',
      alarm: 'NOSPACE',
    });
    expect(alarmInStatusError('etcdserver: no leader')).toBeNull();
  });

  it('NOSPACE on every member while quorum holds: nospace, the alarms named per node, not a lost quorum', () => {
    const r = computeVerdict([everyMember(healthy('a')), everyMember(healthy('b')), everyMember(healthy('c'))]);
    expect(r.verdict).toBe('nospace');
    expect(r.alarms).toEqual([
      { memberId: ids[0], node: 'a', alarm: 'NOSPACE' },
      { memberId: ids[1], node: 'b', alarm: 'NOSPACE' },
      { memberId: ids[2], node: 'c', alarm: 'NOSPACE' },
    ]);
    expect(r.broken).toEqual([]);
    expect(r.reason).toBe(
      'etcd raised a NOSPACE alarm (3 members): the database reached its space quota and the cluster is read-only until it is defragmented and the alarm disarmed; quorum holds (3 of 3 voting members healthy, quorum needs 2).',
    );
  });

  it('NOSPACE seen only in the status errors (the alarm list needs quorum and timed out) still counts', () => {
    const statusOnly = (node: string) => ({ ...withAlarms(healthy(node), [ids[0]!, 'NOSPACE']), alarms: null });
    const r = computeVerdict([statusOnly('a'), statusOnly('b'), statusOnly('c')]);
    expect(r).toMatchObject({ verdict: 'nospace', alarms: [{ memberId: ids[0], node: 'a', alarm: 'NOSPACE' }] });
  });

  it('NOSPACE with a broken member too: nospace first, the broken member still named', () => {
    const r = computeVerdict([everyMember(healthy('a')), everyMember(healthy('b')), failed('c')]);
    expect(r.verdict).toBe('nospace');
    expect(r.broken).toEqual([expect.objectContaining({ node: 'c', kind: 'etcd-failing', memberId: ids[2] })]);
  });

  it('a lost quorum stays lost with a NOSPACE alarm, which is listed', () => {
    const r = computeVerdict([everyMember(leaderless('a')), failed('b'), failed('c')]);
    expect(r.verdict).toBe('lost');
    expect(r.alarms).toHaveLength(3);
    expect(r.reason).toMatch(/A NOSPACE alarm is active too: the recovery comes first\.$/);
  });

  it('CORRUPT on one member: that member is broken (etcd-failing, corrupt), though its etcd answers well', () => {
    const corrupt = (o: NodeObservation) => withAlarms(o, [ids[2]!, 'CORRUPT']);
    const r = computeVerdict([corrupt(healthy('a')), corrupt(healthy('b')), corrupt(healthy('c'))]);
    expect(r.verdict).toBe('degraded');
    expect(r.reason).toMatch(/^Quorum holds \(2 of 3 voting members healthy, quorum needs 2\)/);
    expect(r.broken).toEqual([
      {
        node: 'c',
        memberId: ids[2],
        name: 'cp-3',
        kind: 'etcd-failing',
        why: `etcd raised a CORRUPT alarm for cp-3 (c): its data no longer matches the other members', so it is replaced; its member ${ids[2]} is read from a's member list.`,
      },
    ]);
    expect(r.alarms).toEqual([{ memberId: ids[2], node: 'c', alarm: 'CORRUPT' }]);
  });

  it("an alarm is placed on the node the healthy members say, not on a broken node claiming that member's id", () => {
    const liar: NodeObservation = { ...failed('c'), reachable: true, status: status(1n, ids[0], [], 'a') };
    const r = computeVerdict([
      withAlarms(healthy('a'), [ids[0]!, 'NOSPACE']),
      withAlarms(healthy('b'), [ids[0]!, 'NOSPACE']),
      liar,
    ]);
    expect(r.alarms).toEqual([{ memberId: ids[0], node: 'a', alarm: 'NOSPACE' }]);
  });

  it("a node's own health: its own CORRUPT alarm breaks it; NOSPACE or another member's alarm does not", () => {
    expect(memberHealth(withAlarms(healthy('c'), [ids[2]!, 'CORRUPT']))).toBe('broken');
    expect(memberHealth(withAlarms(healthy('a'), [ids[2]!, 'CORRUPT']))).toBe('healthy');
    expect(memberHealth(withAlarms(healthy('a'), [ids[0]!, 'NOSPACE']))).toBe('healthy');
    // the alarm list alone (status errors trimmed) says it too
    expect(memberHealth({ ...healthy('c'), alarms: [{ memberId: ids[2]!, alarm: 'CORRUPT' }] })).toBe('broken');
  });

  it('no alarm: no alarms field', () => {
    expect(computeVerdict([healthy('a'), healthy('b'), healthy('c')])).not.toHaveProperty('alarms');
  });
});
