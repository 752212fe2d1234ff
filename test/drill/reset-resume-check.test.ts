/**
 * A Reset cut by a crash: the journal shows it sent and never answered, and the resumed run must find out from the
 * node whether it arrived, sending it only if it did not (SAFETY rule 6: never twice). On a loaded machine the first
 * status read after a resume can time out; a node that did not answer once must not count as a node inside its reset
 * (crash-resume.test.ts's "killed mid-reset" case, run two at a time, ended 'failed: <node>: resetting EPHEMERAL
 * (attempt 3)': never reset, never sent again, waited for three times). The moment is made on purpose here: the node's
 * first Version read after the resume fails as a timed-out one does.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { readJournal } from '../../src/journal/journal.js';
import { resetNode } from '../../src/wizard/destructive.js';
import { closeGrounds, startGround, type Ground } from './harness.js';
import { effectDepsOf, losingVersionReads } from './lossy-client.js';

afterAll(closeGrounds);

const TIMING = { pollMs: 100, nodeBackTimeoutMs: 5000 };

/** What the crashed run left: the Reset journalled as about to be sent, never answered. */
function journalSentNotAnswered(g: Ground, node: string, opId: string, sentAt: number): void {
  g.journal.append({
    kind: 'action',
    phase: 'before',
    opId,
    node,
    what: 'reset EPHEMERAL (graceful=false, reboot)',
    by: g.operator,
    data: { sentAt },
  });
}

const checked = (g: Ground, opId: string) =>
  readJournal(g.incident.dir).find((r) => r.kind === 'action' && r.opId === opId && r.phase === 'after')?.result;

describe('a Reset cut by a crash, checked on resume while a status read times out', () => {
  it('the node never got it: the resume sends it (once) and sees the node reset', async () => {
    const g = await startGround('lost-quorum');
    const node = g.sim.nodes[1]!;
    const opId = `reset:${node}:0`;
    journalSentNotAnswered(g, node, opId, Date.now());
    await resetNode(effectDepsOf(g, losingVersionReads(g.client, node, 1)), TIMING, {
      node,
      labels: ['EPHEMERAL'],
      opId,
    });
    expect(checked(g, opId)).toBe('the node shows it did not happen: sending it');
    expect(g.sim.destructiveCalls().reset[node] ?? 0).toBe(1);
  }, 60_000);

  it('the node got it before the crash: the resume waits for it and never sends it again', async () => {
    const g = await startGround('lost-quorum');
    const node = g.sim.nodes[1]!;
    const opId = `reset:${node}:0`;
    const sentAt = Date.now();
    journalSentNotAnswered(g, node, opId, sentAt);
    const sent = await g.client.reset(node, { graceful: false, reboot: true, labels: ['EPHEMERAL'] });
    expect(sent.ok).toBe(true);
    await resetNode(effectDepsOf(g, losingVersionReads(g.client, node, 1)), TIMING, {
      node,
      labels: ['EPHEMERAL'],
      opId,
    });
    expect(checked(g, opId)).toBe('the node shows it happened: not sent again');
    expect(g.sim.destructiveCalls().reset[node] ?? 0).toBe(1);
  }, 60_000);
});
