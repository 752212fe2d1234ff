/**
 * A resumed autopilot drill whose saved state already waits at a prompt: the crash came after the machine asked
 * (state.json is written before anything else happens) but before the autopilot answered. The autopilot must answer
 * the prompt that is open when it starts, not only prompts that open later — otherwise the drill sits until its time
 * limit. Deterministic: the first session is stopped at the prompt on purpose instead of killed at a random moment.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { waitFor } from 'xstate';
import { driveAutopilot } from '../../src/commands/recovery-session.js';
import { timingFor } from '../../src/commands/recovery-run.js';
import { closeGrounds, SPEED, startGround, startSessionOn } from './harness.js';

afterAll(closeGrounds);

describe('autopilot on a resumed drill', () => {
  it('answers the prompt that is already open when it starts, and the drill recovers', async () => {
    const g = await startGround('lost-quorum', 'autopilot');
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
    const lines: string[] = [];
    const stopPilot = driveAutopilot(second, g.journal, {
      print: (l) => lines.push(l),
      timeLimitMs: 60_000,
      repeatPauseMs: timingFor(SPEED).pollMs,
    });
    try {
      const context = await second.settled;
      expect(context.outcome).toBe('recovered');
    } finally {
      stopPilot();
    }
    expect(lines.some((l) => l.startsWith('step 3/9 snapshot:'))).toBe(true);
  }, 90_000);
});
