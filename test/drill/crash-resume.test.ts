/**
 * Crash and resume: a child process runs `talos-dr drill --autopilot`, is killed with SIGKILL at a point of the
 * procedure (between steps, in the middle of a reset, a wait, an upload, after Bootstrap was sent, during the final
 * verification), and `talos-dr resume DIR` in a new process must reach the same outcome without sending any
 * destructive call twice. The simulator counts every call per node and keeps the counts in sim-state.json, which the
 * drill saves after every step and every destructive call. Kills at random moments: random-kills.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { callSent, killAndResume, stepStarted, type KillAt } from './harness.js';

const at = (name: string, when: KillAt['when']): KillAt => ({ name, when });

/**
 * Each destructive call and transfer in flight, each wait, and one step boundary after the configs are saved. Kills
 * at the boundaries of steps 1-3 (after connect, after assess, after the snapshot) are not repeated here: they are
 * where random-kills.test.ts's loop starts (its first kill waits for record 4 and the next come a few records
 * apart; with the suite's seed its first lost-quorum drill is killed after "step 2 started", "step 3 started", the
 * snapshot sent and "step 4 started"), and resuming from a step's start is what every other boundary here proves.
 */
const KILL_POINTS: KillAt[] = [
  at('mid-snapshot', callSent('snapshot:')),
  at('after backup', stepStarted(6)),
  at('mid-reset', callSent('reset:')),
  at('mid-wait for Preparing', stepStarted(7)),
  at('mid-upload', callSent('upload:')),
  at('Bootstrap sent', callSent('bootstrap:')),
  at('mid-verify', stepStarted(9)),
];

describe('crash and resume (lost-quorum, SIGKILL at every step)', () => {
  for (const point of KILL_POINTS) {
    it(`killed ${point.name}: resume reaches the same outcome, no destructive call twice`, async () => {
      const r = await killAndResume('lost-quorum', [point]);
      expect(r.killedAt).toEqual([point.name]);
      const lines = r.last.stdout.trim().split('\n');
      expect(lines[0]).toBe(`resuming the drill in ${r.dir}`);
      expect(lines.at(-1)).toBe('outcome: recovered');
      expect(r.last.code).toBe(0);
      for (const n of r.calls) {
        expect(n.reset, `${n.address} reset`).toBeLessThanOrEqual(1);
        expect(n.bootstrap, `${n.address} bootstrap`).toBeLessThanOrEqual(1);
        expect(n.apply + n.reboot).toBe(0);
        // an upload cut by the crash is sent again from zero (Talos streams cannot resume); never a third time
        expect(n.recover).toBeLessThanOrEqual(point.name === 'mid-upload' ? 2 : 1);
      }
      expect(r.calls.reduce((a, n) => a + n.bootstrap, 0)).toBe(1);
      expect(r.calls.filter((n) => n.reset === 1)).toHaveLength(3);
    }, 120_000);
  }
});
