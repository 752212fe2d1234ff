/**
 * The NOSPACE playbook, killed and resumed (issue 15: "resumes after a kill at every step with no destructive call
 * twice"): a child process runs `talos-dr drill --autopilot --scenario nospace`, is killed with SIGKILL at a point of
 * the playbook (the snapshot verified, a defragment sent, between two defragments, the leader's sent, at the disarm,
 * the disarm sent, after it), and `talos-dr resume DIR` in a new process (the drill harness's killAndResume) must end
 * nospace-cleared having defragmented each member once and sent the disarm once. The simulator counts every call per
 * node and keeps the counts in sim-state.json, which the drill saves after every step and every destructive call.
 *
 * Not reached by these kills: a defragment the member finished before the kill whose answer was not journalled yet
 * (the simulator saves its counts after the call and the journal's "after" line follows within a millisecond); a
 * kill at "sent" lands before the simulator saved it, and the resume's check journals "did not happen: sending it".
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { killAndResume, runsSaid, stepStarted, type KillAt } from './harness.js';

interface JournalLine {
  kind?: string;
  what?: string;
  phase?: string;
  opId?: string;
  ok?: boolean;
}

const linesOf = (journal: string): JournalLine[] =>
  journal
    .split('\n')
    .filter((l) => l.trim() !== '')
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as JournalLine];
      } catch {
        return []; // a line cut by the kill
      }
    });

/** The defragment and disarm counts per node (the harness's savedCalls counts the recovery's calls only). */
const spaceCalls = (dir: string) =>
  (
    JSON.parse(readFileSync(join(dir, 'sim-state.json'), 'utf8')) as {
      nodes: { state: { hostname: string }; calls: Record<string, number> }[];
    }
  ).nodes.map((n) => ({
    hostname: n.state.hostname,
    defragment: n.calls.defragment ?? 0,
    alarmDisarm: n.calls.alarmDisarm ?? 0,
  }));

/** The journal holds a call's "before" lines for `count` different operations (opIds starting with `prefix`). */
const sent =
  (prefix: string, count = 1) =>
  (journal: string) =>
    new Set(
      linesOf(journal)
        .filter((x) => x.kind === 'action' && x.phase === 'before' && x.opId?.startsWith(prefix))
        .map((x) => x.opId),
    ).size >= count;

/**
 * The journal shows a call done (an "after" line with ok: true, from its answer or from a resume's check that found
 * it happened). A resume's check that found it did not happen also writes an "after" line, with ok: false: that one
 * is not the call done.
 */
const done =
  (prefix: string) =>
  (journal: string): boolean =>
    linesOf(journal).some(
      (x) => x.kind === 'action' && x.phase === 'after' && x.ok === true && x.opId?.startsWith(prefix),
    );

// the playbook's steps: 3 snapshot, 4 defragment (followers, then the leader), 5 disarm alarm, 6 check space; in
// this order, so that each resume is killed further on than the run before it
const KILL_POINTS: KillAt[] = [
  { name: 'after the snapshot', when: stepStarted(4) },
  { name: 'the first defragment sent', when: sent('defragment:') },
  { name: 'between two defragments', when: done('defragment:') },
  { name: "the leader's defragment sent", when: sent('defragment:', 3) },
  { name: 'at the disarm', when: stepStarted(5) },
  { name: 'the disarm sent', when: sent('alarm-disarm') },
  { name: 'after the disarm', when: done('alarm-disarm') },
];

/**
 * One drill takes every kill in turn: the drill is killed at the first point, its resume at the second, and so on,
 * then resumed to its end (as crash-resume.test.ts does for lost-quorum). Each point is still a kill of a running
 * process followed by a resume from the same state.json; before, each point ran a drill of its own. A resume that
 * re-sends a call writes a second "before" line for it, so the points count operations, not lines.
 */
describe('NOSPACE playbook: SIGKILL at every step, then resume', () => {
  it(`killed ${KILL_POINTS.map((k) => k.name).join(', ')}, each resumed: nospace-cleared, each member defragmented once, the disarm sent once`, async () => {
    const r = await killAndResume('nospace', KILL_POINTS);
    // every kill landed inside the playbook, before its end (else its point proves nothing)
    expect(r.killedAt, runsSaid(r)).toEqual(KILL_POINTS.map((k) => k.name));
    expect(r.runs).toHaveLength(KILL_POINTS.length + 1);
    for (const run of r.runs.slice(0, -1)) expect(linesOf(run.journal).some((x) => x.kind === 'outcome')).toBe(false);
    expect(r.last.stdout.trim().split('\n').at(-1), `stderr: ${r.last.stderr}`).toBe('outcome: nospace-cleared');
    expect(r.last.code).toBe(0);
    // every member's file rewritten exactly once (the worker has no etcd), the alarm disarmed by one call
    expect(spaceCalls(r.dir).map((n) => `${n.hostname} ${n.defragment}`)).toEqual([
      'cp-1 1',
      'cp-2 1',
      'cp-3 1',
      'worker-1 0',
    ]);
    expect(spaceCalls(r.dir).reduce((a, n) => a + n.alarmDisarm, 0)).toBe(1);
    expect(r.calls.reduce((a, n) => a + n.reset + n.bootstrap + n.removeMember + n.apply, 0)).toBe(0);
    // the journal across all runs: one defragment done per member, one disarm done (a resume's check of a call
    // interrupted before is journalled too, as not done: "the node shows it did not happen: sending it")
    const doneLines = (prefix: string) =>
      linesOf(r.last.journal).filter(
        (x) => x.kind === 'action' && x.phase === 'after' && x.ok === true && x.opId?.startsWith(prefix),
      );
    expect(new Set(doneLines('defragment:').map((x) => x.opId)).size).toBe(3);
    expect(doneLines('defragment:')).toHaveLength(3);
    expect(doneLines('alarm-disarm')).toHaveLength(1);
  }, 300_000);
});
