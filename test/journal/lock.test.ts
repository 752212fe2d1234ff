/**
 * One process per incident folder (issue 18, item 2): two `resume`s of one incident both ran and the last writer
 * rewrote state.json, report.md and sim-state.json. The second process is refused and told who holds the incident and
 * since when; a holder that crashed (SIGKILL) does not keep it.
 */
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'vitest';
import { journalReaches, runCli, start, started, filesUnder } from './crash-helpers.js';

// The three cases run side by side (each its own incident folder and processes; the first two are each a whole drill
// that mostly waits on the nodes' deadlines): their assertions use the test's own expect, as concurrent tests must.
describe.concurrent('the incident lock', () => {
  it('refuses a second process while the first runs, names it, and is taken over once the first was killed', async ({
    expect,
  }) => {
    const dir = join(mkdtempSync(join(tmpdir(), 'talos-dr-lock-')), 'incident');
    const first = start(['drill', '--autopilot', '--scenario', 'lost-quorum', '--dir', dir]);
    expect(await journalReaches(dir, first, started(3))).toBe(true);
    // frozen, not dead: it still holds the incident
    first.child.kill('SIGSTOP');
    const second = await runCli(['resume', dir]);
    expect(second.code).toBe(2);
    const sentence = second.stderr.trim();
    expect(sentence.split('\n')).toHaveLength(1);
    expect(sentence).toContain(`in use by another talos-dr (drill, pid ${first.child.pid}`);
    expect(sentence).toMatch(/since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC/);
    expect(second.stdout).not.toContain('resuming');

    first.child.kill('SIGKILL');
    const killed = await first.done;
    expect(killed.signal).toBe('SIGKILL');
    // the crashed drill left its lock behind; it is stale, and resume continues the incident to its outcome
    expect(existsSync(join(dir, 'lock.json'))).toBe(true);
    const third = await runCli(['resume', dir]);
    expect(third.stdout.trim().split('\n').at(-1)).toBe('outcome: recovered');
    expect(third.code).toBe(0);
    // released at the end: nothing of the lock remains
    expect(filesUnder(dir).filter((f) => f.includes('lock'))).toEqual([]);
  }, 120_000);

  it('takes over a lock whose pid now belongs to another process (pid reused after a crash or reboot), and removes the .part the crash left', async ({
    expect,
  }) => {
    const dir = join(mkdtempSync(join(tmpdir(), 'talos-dr-lock-')), 'incident');
    const first = start(['drill', '--autopilot', '--scenario', 'lost-quorum', '--dir', dir]);
    expect(await journalReaches(dir, first, started(3))).toBe(true);
    first.child.kill('SIGKILL');
    await first.done;
    // this test's own process is alive: the lock names its pid but another start time
    const lock = JSON.parse(readFileSync(join(dir, 'lock.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(join(dir, 'lock.json'), JSON.stringify({ ...lock, pid: process.pid, start: 'another-process' }));
    // The same crash also leaves what a download cut by it leaves: a partial file beside the snapshot's name, which
    // would block the re-run; resume removes it and keeps the rest (issue 18, item 4; formerly a drill of its own in
    // signals.test.ts, killed at the same moment)
    const leftovers = filesUnder(dir).filter((f) => f.startsWith('snapshots/'));
    const part = join(dir, 'snapshots', 'left-over-by-a-crash.db.part');
    writeFileSync(part, 'partial bytes');
    const resumed = await runCli(['resume', dir]);
    expect(resumed.stdout.trim().split('\n').at(-1)).toBe('outcome: recovered');
    expect(existsSync(part)).toBe(false);
    expect(filesUnder(dir).filter((f) => f.endsWith('.part'))).toEqual([]);
    for (const f of leftovers) expect(existsSync(join(dir, f))).toBe(true);
  }, 120_000);

  it('refuses a live holder on another machine (it cannot be checked from here) and says where it runs', async ({
    expect,
  }) => {
    const dir = join(mkdtempSync(join(tmpdir(), 'talos-dr-lock-')), 'incident');
    mkdirSync(dir);
    writeFileSync(join(dir, 'state.json'), '{}');
    const since = '2026-11-30T01:02:03.000Z';
    writeFileSync(
      join(dir, 'lock.json'),
      JSON.stringify({
        pid: 1,
        start: 'x',
        host: `not-${hostname()}`,
        user: 'alice',
        command: 'resume',
        since,
        token: 't',
      }),
    );
    const r = await runCli(['resume', dir]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`(resume, pid 1 on not-${hostname()}, user alice) since 2026-11-30 01:02:03 UTC`);
  });
});
