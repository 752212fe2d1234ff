/**
 * A destructive call is not sent once the run stopped. The Reset effect reads the node's boot id before it sends
 * (destructive.ts bootIdBeforeSend, up to BOOT_ID_READ_MS); a run that stops meanwhile (the user's stop, a drill's time
 * limit, SIGINT) stops the effect's actor, and before, the effect went on after the read: its Reset 'before' line came
 * after the run's outcome and the Reset was sent. Here the node holds that Read open on the wire (the simulator's
 * `hold` fault), the actor recoveryActors gives the machine is stopped while it waits, and the ledger sends nothing:
 * it journals why instead; and a whole autopilot drill given up (as its time limit does) while two such reads are
 * held journals no Reset after its outcome. Deterministic: the stop always lands inside the held reads.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { createActor } from 'xstate';
import { readJournal } from '../../src/journal/journal.js';
import { recoveryActors } from '../../src/wizard/actors.js';
import { driveAutopilot } from '../../src/wizard/autopilot.js';
import { timingFor } from '../../src/wizard/run.js';
import { closeGrounds, SPEED, startGround, startSessionOn, type Ground } from './harness.js';
import { DRILL_TIMING, lostQuorumWithHeldReads, sleep, until } from './interrupted.js';
import { effectDepsOf } from './lossy-client.js';

afterAll(closeGrounds);

const records = (g: Ground, opId: string) =>
  readJournal(g.incident.dir).filter((r) => r.opId === opId || r.data?.opId === opId);

/** cp-2's Reset actor (the step's effect as the machine invokes it), started while its boot-id Read is held. */
async function resetWithHeldRead() {
  const g = await startGround(lostQuorumWithHeldReads('stopped-before-send', ['cp-2']));
  const node = g.sim.nodes[1]!;
  const opId = `reset:${node}:0`;
  const actors = recoveryActors(effectDepsOf(g, g.client), DRILL_TIMING);
  const actor = createActor(actors.resetNode, { input: { node, labels: ['EPHEMERAL'], opId } });
  actor.start();
  return { g, node, opId, actor };
}

describe('a Reset whose actor is stopped while the boot id read before it is held', () => {
  it('is not sent: no before line, the node gets no Reset, and the journal says why', async () => {
    const { g, node, opId, actor } = await resetWithHeldRead();
    // the effect is inside its witness: the Read is held, nothing journalled for the operation yet
    await sleep(200);
    expect(records(g, opId)).toEqual([]);
    actor.stop();
    // the read gives up at its bound (the 1 s status deadline here); the effect then either sends or says it did not
    await until(() => records(g, opId).length > 0, 20);
    await sleep(300);
    const lines = records(g, opId);
    expect(lines.filter((r) => r.kind === 'action')).toEqual([]);
    expect(lines).toEqual([
      expect.objectContaining({
        kind: 'observation',
        node,
        what: 'reset EPHEMERAL (graceful=false, reboot): not sent, the run had stopped',
      }),
    ]);
    expect(g.sim.destructiveCalls().reset[node]).toBe(0);
  }, 30_000);

  it('an actor left running sends it as before (the same effect, not stopped)', async () => {
    const { g, node, opId, actor } = await resetWithHeldRead();
    await until(() => g.sim.destructiveCalls().reset[node] === 1, 20);
    const before = records(g, opId).find((r) => r.kind === 'action' && r.phase === 'before');
    expect(before?.data).toMatchObject({ bootIdUnread: 'no answer' });
    actor.stop();
  }, 30_000);
});

describe('an autopilot drill that ends at its time limit while the boot id reads before two Resets are held', () => {
  it('sends neither Reset after the outcome, and journals both as not sent', async () => {
    const g = await startGround(lostQuorumWithHeldReads('stopped-before-send', ['cp-2', 'cp-3']), 'autopilot');
    const [, cp2, cp3] = g.sim.nodes as [string, string, string];
    const session = startSessionOn(g);
    const stop = driveAutopilot(session, {
      print: () => undefined,
      timeLimitMs: 60_000,
      repeatPauseMs: timingFor(SPEED).pollMs,
    });
    try {
      // both children are sending: each is inside its held boot-id read (1 s here), the source waits its turn
      const sending = (node: string) => session.actor.getSnapshot().context.rows[node]?.prep.status === 'sending';
      await until(() => sending(cp2) && sending(cp3), 10);
      await sleep(100);
      // what autopilot's time limit sends (src/wizard/autopilot.ts)
      session.actor.send({ type: 'give-up', reason: 'the time limit of the drill was reached' });
      expect((await session.settled).outcome).toBe('failed: the time limit of the drill was reached');
    } finally {
      stop();
    }
    // past the reads' bound each effect has decided: a Reset 'before' line (sent) or the reason it was not
    const decided = (node: string) =>
      readJournal(g.incident.dir).some(
        (r) => r.node === node && (r.phase === 'before' || /not sent, the run had stopped/.test(r.what)),
      );
    await until(() => decided(cp2) && decided(cp3), 20);
    await sleep(300);
    const journal = readJournal(g.incident.dir);
    const outcome = journal.findIndex((r) => r.kind === 'outcome');
    expect(outcome).toBeGreaterThan(-1);
    const after = journal.slice(outcome + 1);
    expect(after.filter((r) => r.kind === 'action')).toEqual([]);
    expect(after.map((r) => `${r.node} ${r.what}`).sort()).toEqual(
      [cp2, cp3].map((n) => `${n} reset EPHEMERAL (graceful=false, reboot): not sent, the run had stopped`).sort(),
    );
    expect(Object.values(g.sim.destructiveCalls().reset).every((n) => n === 0)).toBe(true);
  }, 60_000);
});
