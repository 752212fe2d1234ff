/**
 * Issue 17, the report an SRE pastes into the review: the real binary runs an autopilot drill to its end; report.md
 * says who confirmed what in the screen's words (never the machine's event names: answer.yes, choose, abort), and its
 * time to recover is the score line's figure; and the trainer's verdict with the scenario's right answer is printed and
 * in the report (issue 17, the drill as a trainer runs it). Before: "→ answer.yes", "chose api:127.0.0.3", and a "Time to
 * recovery" measured from the session's start.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { findPackageRoot } from '../../src/paths.js';

const cli = join(findPackageRoot(), 'dist/src/cli.js');
const work = mkdtempSync(join(tmpdir(), 'talos-dr-report-words-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('report.md of a finished drill', () => {
  it('names answers by their words and gives the score line time to recover', () => {
    const dir = join(work, 'incident');
    const r = spawnSync(process.execPath, [cli, 'drill', '--autopilot', '--dir', dir], {
      encoding: 'utf8',
      env: { ...process.env, TALOS_DR_DRILL_SPEED: '10' },
      timeout: 240_000,
    });
    expect(r.stdout.trim().split('\n').at(-1)).toBe('outcome: recovered');
    const ttr = /score: time to recover ([^;]+);/.exec(r.stdout)?.[1];
    expect(ttr).toBeDefined();
    const report = readFileSync(join(dir, 'report.md'), 'utf8');
    expect(report).toContain(`- Time to recover: ${ttr} `);
    const confirmations = report.slice(
      report.indexOf('## Confirmations and overrides'),
      report.indexOf('## Actions sent to the cluster'),
    );
    expect(confirmations).toMatch(/→ answered yes \(by autopilot\)/);
    expect(confirmations).toMatch(/→ chose "take a consistent snapshot from \S+/);
    expect(confirmations).not.toMatch(/answer\.yes|answer\.no|→ chose [^"]|\babort\b/);
    // the trainer's verdict: printed just above the score line, and in the report with the right answer
    const lines = r.stdout.trim().split('\n');
    expect(lines.at(-3)).toBe('verdict: ✓ correct call: etcd is back from the freshest data, nothing lost');
    const score = report.slice(report.indexOf('## Drill score'));
    expect(score).toContain('- call: ✓ correct call: etcd is back from the freshest data, nothing lost');
    expect(score).toMatch(/- right answer: take a snapshot from the survivor cp-1/);
    expect(score).toContain(`- time to recover: ${ttr}`);
  }, 300_000);
});
