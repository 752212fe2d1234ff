/**
 * Issue 18, item 8's leftover: a run stopped by a failed local write printed `outcome: stopped-by-user`, as if the
 * operator had pressed q. Its outcome line says the disk failed and what to do (the same sentence as on stderr), and
 * the stopped recovery still resumes once the disk is fixed.
 */
import { mkdtempSync, rmdirSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { journalReaches, runCli, start, started } from '../journal/crash-helpers.js';

describe('a drill stopped by the local disk', () => {
  it('ends with an outcome line naming the disk failure and how to continue, not a stop by the user', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'talos-dr-disk-outcome-')), 'incident');
    const run = start(['drill', '--autopilot', '--scenario', 'lost-quorum', '--dir', dir]);
    expect(await journalReaches(dir, run, started(1))).toBe(true);
    // the backups' folder becomes a file: the config backup's write fails
    rmdirSync(join(dir, 'configs'));
    writeFileSync(join(dir, 'configs'), '');
    const r = await run.done;
    expect(r.code).toBe(1);
    const sentence = r.stderr.trim();
    expect(sentence).toMatch(/^The local disk failed while backing up the machine configurations: /);
    const last = r.stdout.trim().split('\n').at(-1);
    expect(last).not.toContain('stopped-by-user');
    expect(last).toBe(`outcome: failed: ${sentence}`);
    expect(last).toContain(`fix the local disk, then continue with "talos-dr resume ${dir}"`);

    // what the line says to do works: the disk fixed, resume finishes the recovery
    rmSync(join(dir, 'configs'));
    mkdirSync(join(dir, 'configs'), { mode: 0o700 });
    const resumed = await runCli(['resume', dir]);
    expect(resumed.stdout.trim().split('\n').at(-1)).toBe('outcome: recovered');
    expect(resumed.code).toBe(0);
  }, 120_000);
});
