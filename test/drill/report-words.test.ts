/**
 * Issue 17, the report an SRE pastes into the review: the real binary runs an autopilot drill to its end; report.md
 * says who confirmed what in the screen's words (never the machine's event names: answer.yes, choose, abort), and its
 * time to recover is the score line's figure; and the trainer's verdict with the scenario's right answer is printed and
 * in the report (issue 17, the drill as a trainer runs it). Before: "→ answer.yes", "chose api:127.0.0.3", and a "Time to
 * recovery" measured from the session's start.
 *
 * The same finished drill also shows where a drill's folder is kept: under $XDG_STATE_HOME/talos-dr (not the current
 * folder), so `talos-dr resume` without DIR looks there too, and names the folder it took. Before: "There is no
 * incident folder" from any folder but the one the drill ran in. (The two cases ran two identical drills in two files.)
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findPackageRoot } from '../../src/paths.js';

const cli = join(findPackageRoot(), 'dist/src/cli.js');
const state = mkdtempSync(join(tmpdir(), 'talos-dr-state-'));
const elsewhere = mkdtempSync(join(tmpdir(), 'talos-dr-elsewhere-'));
afterAll(() => {
  rmSync(state, { recursive: true, force: true });
  rmSync(elsewhere, { recursive: true, force: true });
});
const env = { ...process.env, TALOS_DR_DRILL_SPEED: '100', XDG_STATE_HOME: state };

/** `talos-dr drill --autopilot`, no --dir, run from a folder of its own: the drill's folder goes under the state home. */
let drill: SpawnSyncReturns<string>;
let folder: string;
beforeAll(() => {
  drill = spawnSync(process.execPath, [cli, 'drill', '--autopilot'], {
    encoding: 'utf8',
    env,
    cwd: elsewhere,
    timeout: 240_000,
  });
  folder = /^incident folder: (\S+)$/m.exec(drill.stdout)?.[1] as string;
}, 300_000);

describe('report.md of a finished drill', () => {
  it('names answers by their words and gives the score line time to recover', () => {
    expect(drill.stdout.trim().split('\n').at(-1)).toBe('outcome: recovered');
    const ttr = /score: time to recover ([^;]+);/.exec(drill.stdout)?.[1];
    expect(ttr).toBeDefined();
    const report = readFileSync(join(folder, 'report.md'), 'utf8');
    expect(report).toContain(`- Time to recover: ${ttr} `);
    const confirmations = report.slice(
      report.indexOf('## Confirmations and overrides'),
      report.indexOf('## Actions sent to the cluster'),
    );
    expect(confirmations).toMatch(/→ answered yes \(by autopilot\)/);
    expect(confirmations).toMatch(/→ chose "take a consistent snapshot from \S+/);
    expect(confirmations).not.toMatch(/answer\.yes|answer\.no|→ chose [^"]|\babort\b/);
    // the trainer's verdict: printed just above the score line, and in the report with the right answer
    const lines = drill.stdout.trim().split('\n');
    expect(lines.at(-3)).toBe('verdict: ✓ correct call: etcd is back from the freshest data, nothing lost');
    const score = report.slice(report.indexOf('## Drill score'));
    expect(score).toContain('- call: ✓ correct call: etcd is back from the freshest data, nothing lost');
    expect(score).toMatch(/- right answer: take a snapshot from the survivor cp-1/);
    expect(score).toContain(`- time to recover: ${ttr}`);
  });
});

describe('resume without DIR after a drill', () => {
  it('finds the drill under $XDG_STATE_HOME/talos-dr and names it', () => {
    expect(folder.startsWith(join(state, 'talos-dr'))).toBe(true);
    const r = spawnSync(process.execPath, [cli, 'resume'], { encoding: 'utf8', env, cwd: elsewhere });
    expect(r.stderr).toContain(`The incident in ${folder} has already ended`);
    expect(r.status).toBe(1);
  });
});
