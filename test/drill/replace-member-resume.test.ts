/**
 * Member replacement, killed and resumed: a child process runs `talos-dr drill --autopilot --scenario
 * member-crashloop`, is killed with SIGKILL at a point of the replacement (the removal sent, the Reset sent, mid-join),
 * and `talos-dr resume DIR` in a new process must end member-replaced without sending the removal or the Reset twice.
 * The simulator counts every call per node and keeps the counts in sim-state.json.
 *
 * One drill takes the three kills in turn (the drill killed at the first point, its resume at the second, that
 * resume's at the third, then resumed to its end), as crash-resume.test.ts does for lost-quorum: each point is still a
 * kill of a running process followed by a resume from the same state.json. Before, each point ran a drill of its own.
 */
import { describe, expect, it } from 'vitest';
import { callSent, killAndResume, runsSaid, stepStarted, type KillAt, type SavedCalls } from './harness.js';

const at = (name: string, when: KillAt['when']): KillAt => ({ name, when });

/**
 * The moments only a replacement has, in the replacement's order: its two destructive calls in flight (the removal,
 * the old machine's Reset) and its wait for the rejoining member. Kills at a step's start (the removal prompt, after
 * the removal) resume from a saved step like any other step, which crash-resume.test.ts proves for lost-quorum and
 * random-kills.test.ts at random moments of this scenario; a kill in the final check is another wait re-armed, as
 * mid-join.
 */
const KILL_POINTS: KillAt[] = [
  at('removal sent', callSent('remove-member:')),
  at('Reset sent', callSent('replace-reset:')),
  at('mid-join', stepStarted(7)),
];

describe('member replacement: SIGKILL at every phase, then resume', () => {
  it(`killed ${KILL_POINTS.map((p) => p.name).join(', ')}, each resumed: ends member-replaced, removal and Reset sent once`, async () => {
    const r = await killAndResume('member-crashloop', KILL_POINTS);
    // every point was reached by a running process (a kill that came after its run had ended is not counted)
    expect(r.killedAt, runsSaid(r)).toEqual(KILL_POINTS.map((p) => p.name));
    expect(r.runs).toHaveLength(KILL_POINTS.length + 1);
    expect(r.last.stdout.trim().split('\n').at(-1), `stderr: ${r.last.stderr}`).toBe('outcome: member-replaced');
    expect(r.last.code).toBe(0);
    const total = (k: keyof Omit<SavedCalls, 'address'>) => r.calls.reduce((a, n) => a + n[k], 0);
    expect(total('removeMember')).toBe(1);
    expect(total('reset')).toBe(1);
    expect(total('bootstrap') + total('apply')).toBe(0);
  }, 240_000);
});
