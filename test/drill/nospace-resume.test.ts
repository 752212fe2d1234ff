/**
 * The NOSPACE playbook, killed and resumed (issue 15: "resumes after a kill at every step with no destructive call
 * twice"): a child process runs `talos-dr drill --autopilot --scenario nospace`, is killed with SIGKILL at a point of
 * the playbook (the snapshot verified, a defragment sent, between two defragments, at the disarm, the disarm sent,
 * after it), and `talos-dr resume DIR` in a new process must end nospace-cleared having defragmented each member once
 * (a defragment that landed before the kill is read back from the member's file size, not sent again) and sent the
 * disarm once. The simulator counts every call per node and keeps the counts in sim-state.json, which the drill saves
 * after every step and every destructive call.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const CLI = join(process.cwd(), 'dist', 'src', 'cli.js');
// as fast as the simulator goes: the playbook has no reboot to wait for, only polls (floored at 100 ms)
const ENV = { ...process.env, TALOS_DR_DRILL_SPEED: '400', CI: '1' };

interface JournalLine {
  kind?: string;
  what?: string;
  phase?: string;
  opId?: string;
  node?: string | null;
  result?: string;
  ok?: boolean;
}

const journalOf = (dir: string): JournalLine[] => {
  const file = join(dir, 'journal.jsonl');
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as JournalLine];
      } catch {
        return []; // a line cut by the kill
      }
    });
};

/** Runs the CLI; SIGKILL as soon as the incident's journal satisfies `killWhen` (then says what it held). */
function run(args: string[], killWhen?: (journal: JournalLine[]) => boolean, dir?: string) {
  return new Promise<{ code: number | null; stdout: string; killedAfter: JournalLine[] | null }>((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: ENV, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let killedAfter: JournalLine[] | null = null;
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    const timer =
      killWhen && dir
        ? setInterval(() => {
            if (killedAfter) return;
            const journal = journalOf(dir);
            if (killWhen(journal)) {
              killedAfter = journal;
              child.kill('SIGKILL');
            }
          }, 10)
        : null;
    child.on('exit', (code) => {
      if (timer) clearInterval(timer);
      resolve({ code, stdout, killedAfter });
    });
  });
}

interface SimNodeCalls {
  state: { address: string; hostname: string; type: string };
  calls: { defragment: number; alarmDisarm: number; reset: number; bootstrap: number; removeMember: number };
}
const simCalls = (dir: string): SimNodeCalls[] =>
  (JSON.parse(readFileSync(join(dir, 'sim-state.json'), 'utf8')) as { nodes: SimNodeCalls[] }).nodes;

const started = (n: number) => (j: JournalLine[]) => j.some((x) => x.what === `step ${n} started`);
const action =
  (phase: 'before' | 'after', prefix: string, count = 1) =>
  (j: JournalLine[]) =>
    j.filter((x) => x.kind === 'action' && x.phase === phase && x.opId?.startsWith(prefix)).length >= count;

// the playbook's steps: 3 snapshot, 4 defragment (followers, then the leader), 5 disarm alarm, 6 check space
const KILL_POINTS: [string, (j: JournalLine[]) => boolean][] = [
  ['after the snapshot', started(4)],
  ['the first defragment sent', action('before', 'defragment:')],
  ['between two defragments', action('after', 'defragment:')],
  ['the leader last, sent', action('before', 'defragment:', 3)],
  ['at the disarm', started(5)],
  ['the disarm sent', action('before', 'alarm-disarm')],
  ['after the disarm', action('after', 'alarm-disarm')],
];

describe('NOSPACE playbook: SIGKILL at every step, then resume', () => {
  for (const [name, when] of KILL_POINTS) {
    it(`killed ${name}: resume ends nospace-cleared, each member defragmented once, the disarm sent once`, async () => {
      const dir = join(mkdtempSync(join(tmpdir(), 'talos-dr-nospace-crash-')), 'incident');
      const first = await run(['drill', '--autopilot', '--scenario', 'nospace', '--dir', dir], when, dir);
      // the kill landed inside the playbook, before its end (else this point proves nothing)
      expect(first.killedAfter).not.toBeNull();
      expect(first.killedAfter?.some((x) => x.kind === 'outcome')).toBe(false);
      const second = await run(['resume', dir]);
      expect(second.stdout.trim().split('\n').at(-1)).toBe('outcome: nospace-cleared');
      expect(second.code).toBe(0);
      const calls = simCalls(dir);
      // every member's file was rewritten exactly once (the worker has no etcd), and the alarm disarmed by one call
      expect(calls.map((n) => `${n.state.hostname} ${n.calls.defragment}`)).toEqual([
        'cp-1 1',
        'cp-2 1',
        'cp-3 1',
        'worker-1 0',
      ]);
      expect(calls.reduce((a, n) => a + n.calls.alarmDisarm, 0)).toBe(1);
      expect(calls.reduce((a, n) => a + n.calls.reset + n.calls.bootstrap + n.calls.removeMember, 0)).toBe(0);
      // the journal across both runs: one defragment done per member, one disarm done (a resume's check of a call
      // interrupted before is journalled too, as not done: "the node shows it did not happen: sending it")
      const done = (prefix: string) =>
        journalOf(dir).filter(
          (x) => x.kind === 'action' && x.phase === 'after' && x.ok === true && x.opId?.startsWith(prefix),
        );
      expect(new Set(done('defragment:').map((x) => x.opId)).size).toBe(3);
      expect(done('defragment:')).toHaveLength(3);
      expect(done('alarm-disarm')).toHaveLength(1);
    }, 120_000);
  }
});
