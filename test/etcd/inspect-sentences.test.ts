/**
 * Issue 18, item 15: sentences that named the wrong cause. A kernel file (/proc, /sys) reports a size of 0 bytes but
 * has content: inspect called it empty. It is said to be what it is: not a snapshot file, with content its size does
 * not show. `talos-dr inspect` from the built CLI (dist/, `npm run build` first) and inspectSnapshot itself.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { findPackageRoot } from '../../src/paths.js';
import { inspectSnapshot } from '../../src/etcd/inspect.js';

const cli = join(findPackageRoot(), 'dist/src/cli.js');
const KERNEL_FILE = '/proc/self/status';
const SENTENCE =
  /is not a snapshot file: it reports a size of 0 bytes yet has content, as the kernel's files under \/proc and \/sys do; give the path of a snapshot file\.$/;

describe('a kernel file given to inspect', () => {
  it('is what the control says: size 0 on stat, content when read', () => {
    expect(statSync(KERNEL_FILE).size).toBe(0);
    expect(readFileSync(KERNEL_FILE).length).toBeGreaterThan(0);
  });

  it('inspect: one sentence naming what it is (not "empty"), exit 1, nothing on stdout', () => {
    const r = spawnSync(process.execPath, [cli, 'inspect', KERNEL_FILE], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(SENTENCE);
    expect(lines[0]).toContain(KERNEL_FILE);
    expect(r.stderr).not.toMatch(/empty/);
  });

  it('inspectSnapshot refuses it with the same sentence; a really empty file is still called empty', async () => {
    await expect(inspectSnapshot(KERNEL_FILE)).rejects.toThrow(SENTENCE);
    const empty = join(mkdtempSync(join(tmpdir(), 'talos-dr-empty-')), 'empty.snapshot');
    writeFileSync(empty, '');
    const report = await inspectSnapshot(empty);
    expect(report.kind).toBe('empty');
    expect(report.problems[0]).toMatch(/The file is empty \(0 bytes\)/);
  });
});
