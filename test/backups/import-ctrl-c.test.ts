/**
 * Ctrl-C at a terminal signals the whole foreground process group. The age and zstd programs the import runs must not
 * be in talos-dr's group: one that died of the user's Ctrl-C before talos-dr saw it made a stopped import read as a
 * damaged backup ("its encrypted data does not authenticate") instead of "Stopped before the import finished".
 * Wrappers on PATH note the process group each program runs in, then run the real one.
 */
import { afterAll, describe, expect, test } from 'vitest';
import { spawnSync } from 'node:child_process';
import { createReadStream, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { importSnapshot } from '../../src/backups/decode.js';
import { loadIdentity } from '../../src/backups/identity.js';
import { SNAPSHOT, makeBackup, makeKey, toolsMissing } from './fixtures.js';

if (toolsMissing) console.warn(`SKIPPED: the process-group test needs age and zstd: ${toolsMissing}`);

const dir = mkdtempSync(join(tmpdir(), 'talos-dr-import-group-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The process group of a process, from /proc (field 5 of stat, after the command name in parentheses). */
function groupOf(pid: number | 'self'): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2] as string;
}

/** A wrapper for `tool` on PATH in `bin` that appends its process group to `<bin>/<tool>.groups`, then runs the tool. */
function noteGroup(bin: string, tool: string): string {
  const real = spawnSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).stdout.trim();
  const notes = join(bin, `${tool}.groups`);
  writeFileSync(
    join(bin, tool),
    `#!/bin/sh\nstat=$(cat /proc/$$/stat)\nrest=\${stat##*) }\necho "$rest" | cut -d' ' -f3 >> '${notes}'\nexec '${real}' "$@"\n`,
    { mode: 0o755 },
  );
  return notes;
}

describe.skipIf(toolsMissing !== null || process.platform !== 'linux')('the decoding programs and Ctrl-C', () => {
  test('age and zstd run in a process group of their own, so a terminal Ctrl-C reaches only talos-dr', async () => {
    const bin = join(dir, 'bin');
    mkdirSync(bin);
    const ageGroups = noteGroup(bin, 'age');
    const zstdGroups = noteGroup(bin, 'zstd');
    const key = makeKey(dir, 'key.txt');
    const file = makeBackup(dir, 'cluster-2026-12-03T05:00:00Z.snap', SNAPSHOT, { zstd: true, age: key });
    const identity = await loadIdentity(key.file);
    const path = process.env.PATH;
    process.env.PATH = `${bin}:${path ?? ''}`;
    try {
      const result = await importSnapshot(
        { name: file, open: () => createReadStream(file) as AsyncIterable<Uint8Array> },
        { out: join(dir, 'plain.snap'), identity },
      );
      expect(result.report.usable).toBe(true);
    } finally {
      process.env.PATH = path;
    }
    const ours = groupOf('self');
    const groups = [readFileSync(ageGroups, 'utf8').trim(), readFileSync(zstdGroups, 'utf8').trim()];
    // both programs ran (the control), each in a group that is not talos-dr's
    expect(groups.every((g) => /^\d+$/.test(g))).toBe(true);
    expect(groups).not.toContain(ours);
  });
});
