/**
 * A drill's folder is kept under $XDG_STATE_HOME/talos-dr (not the current folder), so `talos-dr resume` without DIR
 * looks there too, and names the folder it took. The real binary on a finished autopilot drill. Before: "There is no
 * incident folder" from any folder but the one the drill ran in.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { findPackageRoot } from '../../src/paths.js';

const cli = join(findPackageRoot(), 'dist/src/cli.js');
const state = mkdtempSync(join(tmpdir(), 'talos-dr-state-'));
const elsewhere = mkdtempSync(join(tmpdir(), 'talos-dr-elsewhere-'));
afterAll(() => {
  rmSync(state, { recursive: true, force: true });
  rmSync(elsewhere, { recursive: true, force: true });
});

describe('resume without DIR after a drill', () => {
  it('finds the drill under $XDG_STATE_HOME/talos-dr and names it', () => {
    const env = { ...process.env, TALOS_DR_DRILL_SPEED: '10', XDG_STATE_HOME: state };
    const drill = spawnSync(process.execPath, [cli, 'drill', '--autopilot'], {
      encoding: 'utf8',
      env,
      cwd: elsewhere,
      timeout: 240_000,
    });
    const folder = /^incident folder: (\S+)$/m.exec(drill.stdout)?.[1] as string;
    expect(folder.startsWith(join(state, 'talos-dr'))).toBe(true);
    const r = spawnSync(process.execPath, [cli, 'resume'], { encoding: 'utf8', env, cwd: elsewhere });
    expect(r.stderr).toContain(`The incident in ${folder} has already ended`);
    expect(r.status).toBe(1);
  }, 300_000);
});
