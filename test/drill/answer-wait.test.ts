/**
 * Issue 17: report.md splits a step's time into the machine's and the time waiting for a person. The session
 * journals each answer with how long its question stood on screen; here a person takes 600 ms to answer the first
 * question of a real session (real client, simulated cluster).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { waitFor } from 'xstate';
import { closeGrounds, startGround, startSessionOn } from './harness.js';
import { readJournal } from '../../src/journal/journal.js';

afterAll(closeGrounds);

describe('answers carry the time they waited for a person', () => {
  it('the first question answered after 600 ms is journalled with waitedMs of at least that', async () => {
    const g = await startGround('lost-quorum', 'alice');
    const session = startSessionOn(g);
    const asked = await waitFor(session.actor, (s) => s.context.prompt !== null, { timeout: 30_000 });
    await new Promise((r) => setTimeout(r, 600));
    session.actor.send(asked.context.prompt?.recommended ?? { type: 'answer.yes' });
    await waitFor(session.actor, (s) => s.context.promptSeq !== asked.context.promptSeq || s.context.prompt === null, {
      timeout: 10_000,
    });
    const answer = readJournal(g.incident.dir).find((r) => r.kind === 'confirmation');
    expect(answer?.by).toBe('alice');
    expect(answer?.data?.waitedMs).toBeGreaterThanOrEqual(590);
    session.stop();
  }, 60_000);
});
