/**
 * Issue 17 item 5, "a retry prompt defaults to retrying": a failure's "Try again?" recommends trying again, which is
 * what Enter does on the screen (test/components/retry-enter.test.tsx), and autopilot agrees: it takes that answer
 * once at a question, so a failure that clears on the next round of tries does not end a drill, and gives up when the
 * same failure comes back (a person is needed), with the failure's own sentence as the outcome.
 */
import { describe, expect, it } from 'vitest';
import { createActor, fromPromise, waitFor } from 'xstate';
import { fakeCluster, NODES } from '../components/fake-cluster.js';
import { driveAutopilot } from '../../src/wizard/autopilot.js';
import type { ConnectOutput } from '../../machines/recovery.js';

const CA = 'the talosconfig CA does not match';

/** The in-memory cluster whose connect refuses the first `failures` calls (not retryable on its own). */
function connectFailing(failures: number) {
  const cluster = fakeCluster();
  let calls = 0;
  const machine = cluster.machine.provide({
    actors: {
      connect: fromPromise<ConnectOutput, { nodes: string[] }>(async ({ input }) => {
        calls++;
        if (calls <= failures) throw Object.assign(new Error(CA), { retryable: false });
        return { nodes: input.nodes.map((node) => ({ node, ok: true, version: 'v1.11.2', error: null })) };
      }),
    },
  });
  const actor = createActor(machine, {
    input: { nodes: NODES, operator: 'autopilot', mode: 'drill', timing: { pollMs: 5, backoffMs: 5 } },
  });
  return { actor, calls: () => calls };
}

const autopilot = (actor: ReturnType<typeof connectFailing>['actor']) =>
  driveAutopilot({ actor } as never, { print: () => {}, timeLimitMs: 60_000, repeatPauseMs: 0 });

describe('a retry prompt', () => {
  it('recommends trying again', async () => {
    const { actor } = connectFailing(1);
    actor.start();
    const s = await waitFor(actor, (x) => x.context.prompt !== null, { timeout: 3000 });
    expect(s.context.prompt).toMatchObject({ id: 'retry:connect', kind: 'yes-no', recommended: { type: 'retry' } });
    actor.stop();
  });

  it('autopilot takes it: a failure that clears on the next try does not end the drill', async () => {
    const { actor, calls } = connectFailing(1);
    const stop = autopilot(actor);
    actor.start();
    const s = await waitFor(actor, (x) => x.status === 'done', { timeout: 10_000 });
    stop();
    expect(s.context.outcome).toBe('recovered');
    expect(calls()).toBeGreaterThan(1);
    actor.stop();
  });

  it('autopilot gives up when the same failure comes back, with its sentence', async () => {
    const { actor, calls } = connectFailing(Infinity);
    const stop = autopilot(actor);
    actor.start();
    const s = await waitFor(actor, (x) => x.status === 'done', { timeout: 10_000 });
    stop();
    expect(s.context.outcome).toBe(`failed: ${CA}`);
    // the first try, and the one try autopilot asked for at the question
    expect(calls()).toBe(2);
    actor.stop();
  });
});
