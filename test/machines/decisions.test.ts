import { describe, expect, it } from 'vitest';
import {
  allPreparing,
  bootstrapAlreadyDone,
  bootstrapLanded,
  computeVerdict,
  freshestMember,
  hashCheckDecision,
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
const status = (applied: bigint, leader = ids[0] as string, errors: string[] = []): EtcdMemberStatus => ({
  memberId: ids[0] as string,
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
    hostname: node,
    reachable: true,
    machineType: 'controlplane',
    etcdService: 'Running',
    etcdHealthy: true,
    members: members(n),
    membersError: null,
    status: status(applied),
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
    status: status(applied, '0000000000000000', ['etcdserver: no leader']),
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

  it('learners do not count as voting members', () => {
    const withLearner = (node: string) => ({
      ...healthy(node),
      members: [...members(2), { ...members(3)[2]!, isLearner: true }],
    });
    expect(computeVerdict([withLearner('a'), withLearner('b')]).verdict).toBe('healthy');
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
  it('a Reset took effect once the node went away or its etcd history restarted after the send', () => {
    expect(resetTookEffect(up('Preparing', sentAt - 5000), sentAt)).toBe(false);
    expect(resetTookEffect({ reachable: false }, sentAt)).toBe(true);
    expect(resetTookEffect(null, sentAt)).toBe(true);
    expect(resetTookEffect(up('Preparing', sentAt + 5000), sentAt)).toBe(true);
    // a trimmed history (null) or no send time proves nothing
    expect(resetTookEffect(up('Preparing', null), sentAt)).toBe(false);
    expect(resetTookEffect(up('Preparing', sentAt + 5000), null)).toBe(false);
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
