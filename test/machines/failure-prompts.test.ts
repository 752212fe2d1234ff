/**
 * Every failure's "Try again?" takes the same answers, however they come: yes, `retry` or the option "retry" tries
 * again; no or the option "stop" stops (resumable). The screens ask it as y/N (test/components/app.test.tsx); the
 * option form is what a prompt saved as a list before failure prompts became yes/no questions is answered with.
 */
import { describe, expect, it } from 'vitest';
import { createActor, waitFor } from 'xstate';
import { fakeCluster, NODES } from '../components/fake-cluster.js';
import { failingOnce } from './scripted-cluster.js';
import type { RecoveryEvent } from '../../machines/recovery.js';

/** A cluster whose connect fails once, and whose first Reset fails once. */
function failingOnceActor() {
  const machine = failingOnce(fakeCluster());
  const actor = createActor(machine, {
    input: { nodes: NODES, operator: 'alice', mode: 'recover', timing: { pollMs: 5, backoffMs: 5 } },
  });
  actor.start();
  return actor;
}

type Actor = ReturnType<typeof failingOnceActor>;

/** Answers every question with its recommended answer until the one with this id is asked. */
async function until(actor: Actor, id: RegExp) {
  for (;;) {
    const s = await waitFor(actor, (x) => x.context.prompt !== null, { timeout: 3000 });
    const p = s.context.prompt;
    if (p && id.test(p.id)) return p;
    actor.send(p?.recommended as RecoveryEvent);
    await waitFor(actor, (x) => x.context.promptSeq !== s.context.promptSeq || x.context.prompt === null, {
      timeout: 3000,
    });
  }
}

const AGAIN: RecoveryEvent[] = [{ type: 'answer.yes' }, { type: 'retry' }, { type: 'choose', option: 'retry' }];
const STOP: RecoveryEvent[] = [{ type: 'answer.no' }, { type: 'choose', option: 'stop' }];

describe('failure prompts', () => {
  for (const answer of AGAIN)
    it(`${JSON.stringify(answer)} tries again: a step's failure and a node's failed preparation`, async () => {
      const actor = failingOnceActor();
      const connect = await until(actor, /^retry:connect$/);
      expect(connect.kind).toBe('yes-no');
      actor.send(answer);
      const prep = await until(actor, /^prepare-failed$/);
      expect(prep).toMatchObject({ kind: 'yes-no', recommended: { type: 'retry' } });
      expect(prep.question).toMatch(/failed\. Try again\?$/);
      actor.send(answer);
      await until(actor, /^bootstrap:/);
      actor.stop();
    });

  for (const answer of STOP)
    it(`${JSON.stringify(answer)} stops, resumable, at either`, async () => {
      const first = failingOnceActor();
      await until(first, /^retry:connect$/);
      first.send(answer);
      expect(first.getSnapshot().value).toBe('stoppedByUser');
      first.stop();
      const second = failingOnceActor();
      await until(second, /^retry:connect$/);
      second.send({ type: 'retry' });
      await until(second, /^prepare-failed$/);
      second.send(answer);
      expect(second.getSnapshot().context.outcome).toBe('stopped-by-user');
      second.stop();
    });
});
