/**
 * Resumed drills at the two moments a crash leaves the saved state behind what happened.
 *
 * 1. The saved state already waits at a prompt: the crash came after the machine asked
 * (state.json is written before anything else happens) but before the autopilot answered. The autopilot must answer
 * the prompt that is open when it starts, not only prompts that open later — otherwise the drill sits until its time
 * limit.
 * 2. The node answered a destructive call and the journal holds the answer, but the machine had not saved the step
 * it led to (the journal is written first): the resumed machine re-enters the call, which must not be sent again.
 *
 * Deterministic: the first session is stopped at the moment on purpose instead of killed at a random one.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { waitFor, type Snapshot } from 'xstate';
import { driveAutopilot } from '../../src/wizard/autopilot.js';
import { timingFor } from '../../src/wizard/run.js';
import { readJournal } from '../../src/journal/journal.js';
import type { TalosClient } from '../../src/talos/types.js';
import { closeGrounds, SPEED, startGround, startSessionOn } from './harness.js';

afterAll(closeGrounds);

describe('autopilot on a resumed drill', () => {
  // One drill takes both moments in turn (before, each ran a drill of its own): stopped at the snapshot prompt and
  // resumed (1), that resumed session stopped as Bootstrap's answer arrives and resumed again (2), to the end.
  it('answers the prompt that is already open when it starts; does not send Bootstrap again when the journal holds its answer but the saved step is still the call; the drill recovers', async () => {
    const g = await startGround('lost-quorum', 'autopilot');
    // the session whose Bootstrap is watched: the moment of (2) comes in the second session
    let watched: ReturnType<typeof startSessionOn> | null = null;
    let savedInCall: Snapshot<unknown> | null = null;
    g.client = withBootstrapHook(g.client, {
      sending: () => (savedInCall = watched?.actor.getPersistedSnapshot() ?? null),
      // the "crash": the machine stops as the answer arrives; the ledger still journals it
      answered: () => watched?.stop(),
    });

    // (1) the saved state waits at a prompt the autopilot has not answered
    const first = startSessionOn(g);
    const confirm = await waitFor(first.actor, (s) => s.context.prompt?.id === 'confirm-nodes', { timeout: 20_000 });
    first.actor.send(confirm.context.prompt!.recommended!);
    const asking = await waitFor(first.actor, (s) => s.context.prompt?.id === 'snapshot-source', {
      timeout: 20_000,
    });
    expect(asking.context.prompt?.recommended).not.toBeNull();
    const saved = first.actor.getPersistedSnapshot();
    first.stop();

    const second = startSessionOn(g, saved);
    expect(second.actor.getSnapshot().context.prompt?.id).toBe('snapshot-source');
    watched = second;
    const lines: string[] = [];
    const stopSecondPilot = pilot(second, lines);
    // the open prompt answered, the drill went on to Bootstrap (an unanswered prompt sits until the time limit)
    await waitFor(second.actor, (s) => s.status !== 'active', { timeout: 60_000 }).catch(() => undefined);
    stopSecondPilot();
    expect(lines.some((l) => l.startsWith('step 3/10 snapshot:'))).toBe(true);

    // (2) the node answered Bootstrap and the journal holds the answer; the saved step is still the call
    expect(savedInCall).not.toBeNull();
    await until(() => readJournal(g.incident.dir).some((r) => r.opId?.startsWith('bootstrap:') && r.phase === 'after'));
    watched = null;
    const third = startSessionOn(g, savedInCall!);
    const stopPilot = pilot(third, lines);
    try {
      expect((await third.settled).outcome).toBe('recovered');
    } finally {
      stopPilot();
    }
    const bootstraps = Object.values(g.sim.destructiveCalls().bootstrap).reduce((a, b) => a + b, 0);
    expect(bootstraps).toBe(1);
    const notAgain = readJournal(g.incident.dir).filter((r) => r.result === 'not sent again');
    expect(notAgain.map((r) => r.what)).toEqual([expect.stringMatching(/^bootstrap .*already answered/)]);
    // and on to step 10: autopilot answered its kubelet question with the recommended yes
    expect(lines.some((l) => l.startsWith('step 10/10 after restore: kubelet restarted on '))).toBe(true);
  }, 150_000);
});

function pilot(session: ReturnType<typeof startSessionOn>, lines: string[]): () => void {
  return driveAutopilot(session, {
    print: (l) => lines.push(l),
    timeLimitMs: 60_000,
    repeatPauseMs: timingFor(SPEED).pollMs,
  });
}

/** The real client, with a look at Bootstrap as it is sent and as its answer arrives. */
function withBootstrapHook(client: TalosClient, hook: { sending: () => void; answered: () => void }): TalosClient {
  return new Proxy(client, {
    get(target, prop, receiver) {
      const value: unknown = Reflect.get(target, prop, receiver);
      if (prop !== 'bootstrap' || typeof value !== 'function') {
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      }
      return async (...args: Parameters<TalosClient['bootstrap']>) => {
        hook.sending();
        const answer = await client.bootstrap(...args);
        hook.answered();
        return answer;
      };
    },
  });
}

/** Waits for `condition` (polling, no deadline of its own: the test's timeout bounds it). */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((r) => setTimeout(r, 25));
}
