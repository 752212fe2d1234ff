/**
 * The snapshot source is wiped last (SAFETY rule 3) even when the other nodes' boot-id reads hang and the source's
 * answers. Each node's Reset reads the node's boot id first (destructive.ts bootIdBeforeSend, bounded by
 * BOOT_ID_READ_MS; a drill's 1 s status deadline), and autopilot confirms the nodes about 0.1 s apart: with cp-2's and
 * cp-3's Read held open on the wire (the simulator's `hold` fault) and cp-1's answered at once, confirmation order
 * alone let the source's Reset go out about 0.8 s before theirs. Step 6 now starts the source's Reset only once every
 * other planned node's Reset was answered. One autopilot drill of lost-quorum, read by every case.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JournalRecord } from '../../src/journal/journal.js';
import { runScenario, type DrillRun } from './harness.js';
import { lostQuorumWithHeldReads } from './interrupted.js';

let run: DrillRun;
beforeAll(async () => {
  run = await runScenario(lostQuorumWithHeldReads('source-last', ['cp-2', 'cp-3']));
}, 120_000);
afterAll(async () => run?.sim.stop());

const resetLines = (phase: 'before' | 'after'): JournalRecord[] =>
  run.journal.filter((j) => j.kind === 'action' && j.phase === phase && (j.opId ?? '').startsWith('reset:'));

const address = (hostname: string): string => run.sim.view().find((n) => n.hostname === hostname)!.address;

describe('the other nodes never answer the read of their boot id, the snapshot source does', () => {
  it('the drill recovers, with one Reset per control-plane node', () => {
    expect(run.lines.at(-1)).toBe('outcome: recovered');
    expect(run.code).toBe(0);
    expect(run.sim.destructiveCalls().reset).toEqual({
      [address('cp-1')]: 1,
      [address('cp-2')]: 1,
      [address('cp-3')]: 1,
      [address('worker-1')]: 0,
    });
  });

  it("the source's Reset is sent only after every other node's Reset was answered", () => {
    const source = run.context.snapshot?.node;
    expect(source).toBe(address('cp-1'));
    const sourceSent = run.journal.indexOf(resetLines('before').find((j) => j.node === source)!);
    expect(sourceSent).toBeGreaterThan(-1);
    const othersAnswered = resetLines('after').filter((j) => j.node !== source);
    expect(othersAnswered.map((j) => j.node).sort()).toEqual([address('cp-2'), address('cp-3')].sort());
    for (const answered of othersAnswered) expect(run.journal.indexOf(answered)).toBeLessThan(sourceSent);
  });

  it("the journal tells the reads apart: the others' boot ids unread ('no answer'), the source's read", () => {
    const witness = (node: string) => resetLines('before').find((j) => j.node === node)?.data;
    expect(witness(address('cp-2'))).toMatchObject({ bootIdUnread: 'no answer' });
    expect(witness(address('cp-3'))).toMatchObject({ bootIdUnread: 'no answer' });
    expect(witness(address('cp-1'))).toMatchObject({ bootId: expect.stringMatching(/^[0-9a-f-]{36}$/) });
  });
});
