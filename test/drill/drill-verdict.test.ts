/**
 * Issue 17, the drill as a trainer runs it: at the end the run is compared with the scenario's expected outcome and
 * right answer — "✓ correct call: …" or "✗ <the concrete reason>" with the right answer — in autopilot's printed
 * lines, in score.json and in report.md. A right wait or a right stop scores as right, not as "not recovered".
 * The verdict in words, in memory, here; the verdict of whole drills is asserted where those drills already run:
 * lost-quorum in scenarios.test.ts, member-unreachable in replace-member.test.ts, quorum-intact's time limit in
 * scenarios.test.ts, stuck-waiting in scenarios.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { judgeDrill, verdictLines } from '../../src/wizard/outcome.js';
import type { RecoveryContext, SnapshotInfo } from '../../machines/recovery-types.js';

describe('the verdict in words', () => {
  // the assessment read a live member's status (its freshest), or none answered with data
  const live = { verdict: 'lost', freshest: '127.0.0.2' } as RecoveryContext['verdict'];
  const none = { verdict: 'lost', freshest: null } as RecoveryContext['verdict'];
  const fromFile = { method: 'file' } as SnapshotInfo;
  const ctx = (over: Partial<RecoveryContext>) =>
    ({ outcome: 'recovered', snapshot: null, verdict: null, ...over }) as Pick<
      RecoveryContext,
      'outcome' | 'snapshot' | 'verdict' | 'replace'
    >;
  const expectRecovered = { expectedOutcome: 'recovered' as const, rightAnswer: 'take a snapshot from cp-1, …' };

  it('an old file restored while a live member could be snapshotted: ✗ a fresher snapshot was available', () => {
    const v = judgeDrill(ctx({ snapshot: fromFile, verdict: live }), expectRecovered, 40);
    expect(v.correct).toBe(false);
    expect(verdictLines(v)).toEqual([
      '✗ a fresher snapshot was available: 40 revisions lost',
      'right answer: take a snapshot from cp-1, …',
    ]);
  });

  it('no member answered with its data (single-node, wiped): the given file is no mistake, even untried raw copies offered', () => {
    const v = judgeDrill(ctx({ snapshot: fromFile, verdict: none }), expectRecovered, 12);
    expect(v.line).toBe(
      '✓ correct call: etcd is back from the freshest data there was (12 revisions lost, no fresher source was available)',
    );
  });

  it('a full recovery where quorum held is the wrong call, though etcd ended healthy', () => {
    const v = judgeDrill(ctx({}), { expectedOutcome: 'member-replaced', rightAnswer: 'replace cp-3' }, 0);
    expect(verdictLines(v)).toEqual([
      '✗ quorum held: a full recovery (every member wiped and restored) was not needed',
      'right answer: replace cp-3',
    ]);
  });

  it('removing a member that would have come back is wrong; waiting for it is right', () => {
    const expectWait = { expectedOutcome: 'nothing-to-do' as const, rightAnswer: 'wait for cp-3' };
    expect(judgeDrill(ctx({ outcome: 'member-replaced' }), expectWait, null).line).toBe(
      '✗ the member would have come back by itself: removing it was not needed',
    );
    expect(judgeDrill(ctx({ outcome: 'nothing-to-do' }), expectWait, null).correct).toBe(true);
  });

  it('a planned swap of a healthy member where nothing was needed is named as such, not as a removal', () => {
    const expectWait = { expectedOutcome: 'nothing-to-do' as const, rightAnswer: 'wait for cp-3' };
    const swapped = {
      outcome: 'member-replaced',
      replace: { swap: { node: '127.0.0.4', name: 'cp-3', memberId: null, via: null } },
    } as unknown as Partial<RecoveryContext>;
    expect(judgeDrill(ctx(swapped), expectWait, null).line).toBe(
      '✗ the cluster was healthy: replacing a healthy member is planned maintenance, not needed here',
    );
  });

  it('stopping where the scenario expects the replacement: the reason says what was left undone', () => {
    const v = judgeDrill(
      ctx({ outcome: 'stopped-quorum-intact' }),
      { expectedOutcome: 'member-replaced', rightAnswer: 'replace cp-3' },
      null,
    );
    expect(v.line).toBe('✗ stopped while quorum held: the broken member was not replaced');
  });

  it('a right stop scores as right', () => {
    const v = judgeDrill(
      ctx({ outcome: 'stopped-quorum-intact' }),
      { expectedOutcome: 'stopped-quorum-intact', rightAnswer: 'stop' },
      null,
    );
    expect(v.line).toBe('✓ correct call: quorum held and you stopped: nothing was wiped');
  });
});
