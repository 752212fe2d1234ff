/**
 * Signals (issue 18, item 4): SIGINT, SIGTERM and SIGHUP (a dropped SSH session) stop a run cleanly although
 * write-file-atomic and Ink load signal-exit, which re-raises a signal when only its own listeners are left: the state
 * is saved, the outcome is stopped-by-user, exit 3, and no partial file survives. `resume` removes a .part a crash
 * left in the incident folder, and continues.
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { filesUnder, journalReaches, runCli, sent, start, started } from './crash-helpers.js';

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

  it('resume removes the .part a crash left in the incident folder and reaches the outcome', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'talos-dr-signal-')), 'incident');
    const run = start(['drill', '--autopilot', '--scenario', 'lost-quorum', '--dir', dir]);
    expect(await journalReaches(dir, run, started(3))).toBe(true);
    run.child.kill('SIGKILL');
    await run.done;
    // what a download cut by a crash leaves: the partial file beside the snapshot's name, which blocks the re-run
    const leftovers = filesUnder(dir).filter((f) => f.startsWith('snapshots/'));
    const part = join(dir, 'snapshots', 'left-over-by-a-crash.db.part');
    writeFileSync(part, 'partial bytes');
    const resumed = await runCli(['resume', dir]);
    expect(resumed.stdout.trim().split('\n').at(-1)).toBe('outcome: recovered');
    expect(existsSync(part)).toBe(false);
    expect(filesUnder(dir).filter((f) => f.endsWith('.part'))).toEqual([]);
    for (const f of leftovers) expect(existsSync(join(dir, f))).toBe(true);
  }, 120_000);
});
