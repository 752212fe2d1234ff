/**
 * Signals (issue 18, item 4): SIGINT, SIGTERM and SIGHUP (a dropped SSH session) stop a run cleanly although
 * write-file-atomic and Ink load signal-exit, which re-raises a signal when only its own listeners are left: the state
 * is saved, the outcome is stopped-by-user, exit 3, and no partial file survives. That `resume` removes a .part a
 * crash left in the incident folder, and continues: lock.test.ts (the pid-reuse case, on the same kind of crash).
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { CLI, ENV, filesUnder, journalReaches, sent, start } from './crash-helpers.js';

describe('a stop signal during a drill', () => {
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    it(`${signal} during the snapshot: state saved, outcome stopped-by-user, exit 3, no partial file`, async () => {
      const dir = join(mkdtempSync(join(tmpdir(), 'talos-dr-signal-')), 'incident');
      const run = start(['drill', '--autopilot', '--scenario', 'lost-quorum', '--dir', dir]);
      expect(await journalReaches(dir, run, sent('snapshot:'))).toBe(true);
      run.child.kill(signal);
      const r = await run.done;
      expect(r.signal).toBeNull();
      expect(r.code).toBe(3);
      expect(r.stdout.trim().split('\n').at(-1)).toBe('outcome: stopped-by-user');
      expect(r.stderr).toBe('');
      expect(filesUnder(dir).filter((f) => f.endsWith('.part'))).toEqual([]);
      const state = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')) as { snapshot: { value: unknown } };
      expect(state.snapshot.value).toBe('stoppedByUser');
      expect(existsSync(join(dir, 'lock.json'))).toBe(false);
    }, 90_000);
  }
});

/** The pid of a process's child (the CLI under `script`), from /proc. */
function childOf(pid: number): number | null {
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) return Number(name);
    } catch {
      // gone meanwhile
    }
  }
  return null;
}

const hasScript =
  spawnSync('script', ['--version'], { encoding: 'utf8' }).status === 0 && existsSync('/proc/self/stat');

describe.skipIf(!hasScript)('a dropped SSH session under the wizard (Ink loaded)', () => {
  it('SIGHUP at a prompt: the interactive drill saves, journals stopped-by-user and exits 3', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'talos-dr-signal-')), 'incident');
    const env: NodeJS.ProcessEnv = { ...ENV, TERM: 'xterm' };
    delete env.CI;
    // util-linux `script` gives the wizard a pseudo-terminal, as an SSH session would; -e returns the CLI's exit code
    const pty = spawn(
      'script',
      ['-qfec', `stty cols 100 rows 40; exec ${process.execPath} ${CLI} drill --dir ${dir}`, '/dev/null'],
      { env, stdio: ['pipe', 'pipe', 'pipe'] },
    );
    let screen = '';
    pty.stdout.on('data', (chunk: Buffer) => (screen += chunk.toString('utf8')));
    pty.stderr.resume();
    const exited = new Promise<number | null>((resolve) => pty.on('close', (code) => resolve(code)));
    // the drill opens on the scenario's briefing: Enter begins it
    await vi.waitFor(() => expect(screen).toContain('Briefing'), { timeout: 30_000, interval: 100 });
    pty.stdin.write('\r');
    const running = { child: pty, done: exited.then(() => ({ code: null, signal: null, stdout: '', stderr: '' })) };
    // the wizard then asks whether to go ahead: the session drops while it waits for the answer
    expect(await journalReaches(dir, running, (j) => j.includes('"what":"step 1 done"'))).toBe(true);
    const cli = childOf(pty.pid as number);
    expect(cli).not.toBeNull();
    process.kill(cli as number, 'SIGHUP');
    expect(await exited).toBe(3);
    const journal = readFileSync(join(dir, 'journal.jsonl'), 'utf8').trim().split('\n');
    expect(JSON.parse(journal.at(-1) as string)).toMatchObject({ kind: 'outcome', result: 'stopped-by-user' });
    const state = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')) as { snapshot: { value: unknown } };
    expect(state.snapshot.value).toBe('stoppedByUser');
    expect(existsSync(join(dir, 'lock.json'))).toBe(false);
    pty.stdin.end();
  }, 90_000);
});
