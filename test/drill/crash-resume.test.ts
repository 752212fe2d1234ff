/**
 * Crash and resume: a child process runs `talos-dr drill --autopilot`, is killed with SIGKILL at a point of the
 * procedure (between steps, in the middle of a reset, a wait, an upload, after Bootstrap was sent, during the final
 * verification, between two kubelet restarts), and `talos-dr resume DIR` in a new process must reach the same outcome
 * without sending any destructive call twice. The simulator counts every call per node and keeps the counts in
 * sim-state.json, which the drill saves after every step and every destructive call. Kills at random moments:
 * random-kills.test.ts.
 *
 * One drill takes every kill in turn: the drill is killed at the first point, its resume at the second, and so on,
 * then resumed to its end. Each point is still a kill of a running process with a resume after it; what a point
 * proves does not depend on whether the killed process was the drill or an earlier resume (both continue from the
 * same state.json), and the counts saved after each run say which run sent what. Before, each point ran a whole drill
 * of its own (7 drills here and one more in after-restore.test.ts: 122 s here at load 2-3; one drill is ~12 s of it).
 */
import { describe, expect, it } from 'vitest';
import { callSent, killAndResume, runsSaid, stepStarted, type KillAt, type SavedCalls } from './harness.js';

const at = (name: string, when: KillAt['when']): KillAt => ({ name, when });

/**
 * Each destructive call and transfer in flight, each wait, and one step boundary after the configs are saved, in the
 * procedure's order (each point's moment comes after the previous one's, so every resume is killed further on). Kills
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
  // step 10 (issue 15; formerly after-restore.test.ts): killed while the kubelets are restarted one at a time
  at('after the first kubelet restart', (j) => j.includes('"phase":"after","opId":"kubelet-restart:')),
];

const uploads = (calls: SavedCalls[] | null | undefined) => (calls ?? []).map((n) => `${n.address} ${n.recover}`);

describe('crash and resume (lost-quorum, SIGKILL at every step)', () => {
  it(`killed ${KILL_POINTS.map((p) => p.name).join(', ')}, each resumed: the same outcome, no destructive call twice`, async () => {
    const r = await killAndResume('lost-quorum', KILL_POINTS);
    // every point was reached by a running process (a kill that came after its run had ended is not counted)
    expect(r.killedAt, runsSaid(r)).toEqual(KILL_POINTS.map((p) => p.name));
    expect(r.runs).toHaveLength(KILL_POINTS.length + 1);
    const lines = r.last.stdout.trim().split('\n');
    expect(lines[0]).toBe(`resuming the drill in ${r.dir}`);
    expect(lines.at(-1), `stderr: ${r.last.stderr}`).toBe('outcome: recovered');
    expect(r.last.code).toBe(0);
    // the kubelet restarted just before the last kill comes up on its node all the same: step 10's health check finds
    // every kubelet Running. Before, when the kill came before the next save, the resumed simulator left that kubelet
    // where the save caught it (Waiting, or Running unhealthy): a 5 s wait, then "1 thing still wrong" (1 run of 3)
    expect(lines).toContain(
      'step 10/10 after restore: kubelet restarted on 4 of 4 nodes; control plane healthy, kubelet Running everywhere',
    );
    for (const n of r.calls) {
      expect(n.reset, `${n.address} reset`).toBeLessThanOrEqual(1);
      expect(n.bootstrap, `${n.address} bootstrap`).toBeLessThanOrEqual(1);
      expect(n.apply + n.reboot).toBe(0);
      // an upload cut by the crash is sent again from zero (Talos streams cannot resume); never a third time
      expect(n.recover, `${n.address} uploads`).toBeLessThanOrEqual(2);
      // every kubelet (the worker's too) restarted once, however the restarts were cut
      expect(n.serviceRestart, `${n.address} kubelet restarts`).toBe(1);
    }
    expect(r.calls).toHaveLength(4);
    expect(r.calls.reduce((a, n) => a + n.bootstrap, 0)).toBe(1);
    expect(r.calls.filter((n) => n.reset === 1)).toHaveLength(3);
    // which run sent the uploads: none before the upload was cut but the cut one, and none after Bootstrap was sent
    // (the kills at Bootstrap sent, mid-verify and between the restarts each resumed without uploading again)
    const killedAt = (name: string) => r.runs[KILL_POINTS.findIndex((p) => p.name === name)];
    for (const n of killedAt('mid-upload')?.calls ?? []) expect(n.recover, n.address).toBeLessThanOrEqual(1);
    expect(uploads(r.calls)).toEqual(uploads(killedAt('Bootstrap sent')?.calls));
  }, 300_000);
});
