/**
 * The boot id read before each Reset that the node never answers (SAFETY rule 3's order). Each node's Reset is sent
 * by its own child as soon as it is confirmed, the snapshot source's last (planPreparation), and each reads the node's
 * boot id first (destructive.ts bootIdBeforeSend, bounded by BOOT_ID_READ_MS). Here every node being reset takes
 * that Read and never answers it: the simulator holds the call open on the wire (a `hold` fault on Read, src/sim/
 * faults.ts) until the client gives up, as a node whose machined is wedged would. A wait without a bound never ends,
 * so the drill's ending at all shows the wait was bounded (in a drill the bound is the 1 s status deadline, below
 * BOOT_ID_READ_MS); the journal says which sends went without a boot id. One autopilot drill of lost-quorum, read by
 * every case.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JournalRecord } from '../../src/journal/journal.js';
import { runScenario, type DrillRun } from './harness.js';
import { lostQuorumWithHeldReads } from './interrupted.js';

let run: DrillRun;
beforeAll(async () => {
  run = await runScenario(lostQuorumWithHeldReads('boot-id-unanswered', ['cp-1', 'cp-2', 'cp-3']));
}, 120_000);
afterAll(async () => run?.sim.stop());

/** The Reset actions' journal lines, in the order they were written. */
const resetLines = (phase: 'before' | 'after'): JournalRecord[] =>
  run.journal.filter((j) => j.kind === 'action' && j.phase === phase && (j.opId ?? '').startsWith('reset:'));

const address = (hostname: string): string => run.sim.view().find((n) => n.hostname === hostname)!.address;

describe('every node being reset never answers the read of its boot id', () => {
  it('the drill still recovers, with every node wiped and the snapshot restored', () => {
    expect(run.lines.at(-1)).toBe('outcome: recovered');
    expect(run.code).toBe(0);
    expect(run.sim.dataReport().keysMatchSnapshot).toBe(true);
  });

  it('each control-plane node got exactly one Reset, the worker none', () => {
    expect(run.sim.destructiveCalls().reset).toEqual({
      [address('cp-1')]: 1,
      [address('cp-2')]: 1,
      [address('cp-3')]: 1,
      [address('worker-1')]: 0,
    });
  });

  it("the snapshot source's Reset went last", () => {
    const source = run.context.snapshot?.node;
    expect(source).toBe(address('cp-1'));
    // the order the Resets were journalled as about to be sent, each right before its send
    const sent = resetLines('before').map((j) => j.node);
    expect(sent).toHaveLength(3);
    expect(sent.at(-1)).toBe(source);
  });

  it("each Reset is journalled with its boot id unread ('no answer'), not refused and not read", () => {
    const witnesses = resetLines('before').map((j) => ({ node: j.node, data: j.data }));
    expect(witnesses).toHaveLength(3);
    for (const w of witnesses) {
      expect(w.data).toMatchObject({ bootIdUnread: 'no answer' });
      expect(w.data).not.toHaveProperty('bootId');
    }
    // a read that was only late is not a refusal: nothing was said on screen or journalled about os:admin
    expect(run.journal.some((j) => /refused to read its boot id/.test(j.result ?? ''))).toBe(false);
  });
});
