/**
 * Every failure's "Try again?" takes the same answers, however they come: yes, `retry` or the option "retry" tries
 * again; no or the option "stop" stops (resumable). The screens ask it as y/N (test/components/app.test.tsx); the
 * option form is what a prompt saved as a list before failure prompts became yes/no questions is answered with.
 */
import { describe, expect, it } from 'vitest';
import { createActor, fromPromise, waitFor } from 'xstate';
import { fakeCluster, NODES } from '../components/fake-cluster.js';
import { prepareNodeMachine } from '../../machines/prepare-node.js';
import type { ConnectOutput, NodeView, RecoveryEvent } from '../../machines/recovery.js';

const failure = (message: string) => Object.assign(new Error(message), { retryable: false });

/** A cluster whose connect fails once, and whose first Reset fails once. */
function failingOnce() {
  const cluster = fakeCluster();
  let connectFailures = 1;
  let resetFailures = 1;
  const machine = cluster.machine.provide({
    actors: {
      connect: fromPromise<ConnectOutput, { nodes: string[] }>(async ({ input }) => {
        if (connectFailures-- > 0) throw failure('the talosconfig CA does not match');
        return { nodes: input.nodes.map((node) => ({ node, ok: true, version: 'v1.11.2', error: null })) };
      }),
      prepareNode: prepareNodeMachine.provide({
        actors: {
          observe: fromPromise(async ({ input }: { input: { nodes: string[] } }) => cluster.refresh(input.nodes)),
          resetNode: fromPromise<void, { node: string; labels: string[]; opId: string }>(async ({ input }) => {
            if (resetFailures-- > 0) throw failure('connection refused');
            cluster.views.set(input.node, {
              ...(cluster.views.get(input.node) as NodeView),
              etcdService: 'Preparing',
              etcdHealthy: null,
            });
          }),
        },
      }),
    },
  });
  const actor = createActor(machine, {
    input: { nodes: NODES, operator: 'alice', mode: 'recover', timing: { pollMs: 5, backoffMs: 5 } },
  });
  actor.start();
  return actor;
}

type Actor = ReturnType<typeof failingOnce>;

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
      const actor = failingOnce();
      const connect = await until(actor, /^retry:connect$/);
      expect(connect.kind).toBe('yes-no');
      actor.send(answer);
      const prep = await until(actor, /^prepare-failed$/);
      expect(prep).toMatchObject({ kind: 'yes-no', recommended: null });
      expect(prep.question).toMatch(/failed\. Try again\?$/);
      actor.send(answer);
      await until(actor, /^bootstrap:/);
      actor.stop();
    });

  for (const answer of STOP)
    it(`${JSON.stringify(answer)} stops, resumable, at either`, async () => {
      const first = failingOnce();
      await until(first, /^retry:connect$/);
      first.send(answer);
      expect(first.getSnapshot().value).toBe('stoppedByUser');
      first.stop();
      const second = failingOnce();
      await until(second, /^retry:connect$/);
      second.send({ type: 'retry' });
      await until(second, /^prepare-failed$/);
      second.send(answer);
      expect(second.getSnapshot().context.outcome).toBe('stopped-by-user');
      second.stop();
    });
});
