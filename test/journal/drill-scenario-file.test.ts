/**
 * `drill` with a bad scenario file (issue 18, item 9) created the incident folder before validating the file; the
 * re-run with the file fixed was then refused because the folder held files.
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { findPackageRoot } from '../../src/paths.js';
import { runCli } from './crash-helpers.js';

describe('drill with a scenario file', () => {
  it('a bad file is refused before the incident folder exists, and the fixed file then runs in that folder', async () => {
    const temp = mkdtempSync(join(tmpdir(), 'talos-dr-scenario-'));
    const file = join(temp, 'mine.yaml');
    const dir = join(temp, 'incident');
    writeFileSync(file, 'name: mine\nnodes: 7\n');
    const bad = await runCli(['drill', '--autopilot', '--scenario', file, '--dir', dir]);
    expect(bad.code).toBe(1);
    expect(bad.stderr.trim()).toMatch(/^Scenario .*mine\.yaml: .*nodes must be a list; fix the file/);
    expect(existsSync(dir)).toBe(false);

    writeFileSync(file, readFileSync(join(findPackageRoot(), 'scenarios', 'lost-quorum.yaml')));
    const fixed = await runCli(['drill', '--autopilot', '--scenario', file, '--dir', dir]);
    expect(fixed.stderr).toBe('');
    expect(fixed.stdout.trim().split('\n').at(-1)).toBe('outcome: recovered');
  }, 90_000);
});
