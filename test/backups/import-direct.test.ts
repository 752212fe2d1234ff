/**
 * Issue 16 (import within 1.5x of `age -d | zstd -d | openssl dgst -sha256`): the zstd program on PATH writes the new
 * plain snapshot itself, so the gigabyte it decodes never passes through talos-dr (before, zstd's stdout was a pipe
 * to talos-dr, which hashed the bytes and wrote them). A wrapper on PATH notes what zstd's stdout is, then runs the
 * real zstd; the result (chain, 0600, verified) is the same as ever.
 */
import { afterAll, describe, expect, test } from 'vitest';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  createReadStream,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { importSnapshot } from '../../src/backups/decode.js';
import { loadIdentity } from '../../src/backups/identity.js';
import { SNAPSHOT, makeBackup, makeKey, toolsMissing } from './fixtures.js';

if (toolsMissing) console.warn(`SKIPPED: the direct-write test needs age and zstd: ${toolsMissing}`);

const dir = mkdtempSync(join(tmpdir(), 'talos-dr-import-direct-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

/**
 * Puts a `tool` in `bin` that notes what its descriptor `fd` is (a file path, or pipe:/socket:) in the file returned,
 * then runs the real program.
 */
function noteDescriptor(bin: string, tool: 'age' | 'zstd', fd: 0 | 1): string {
  const notes = join(bin, `${tool}.fd${fd}`);
  const real = spawnSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).stdout.trim();
  writeFileSync(
    join(bin, tool),
    `#!/bin/sh\nwhere=$(readlink /proc/$$/fd/${fd})\necho "$where" >> '${notes}'\nexec '${real}' "$@"\n`,
    { mode: 0o755 },
  );
  return notes;
}

describe.skipIf(toolsMissing !== null || process.platform !== 'linux')('the zstd program and the plain file', () => {
  test('zstd writes the new snapshot itself (its stdout is the file, not a pipe to talos-dr); same chain', async () => {
    const bin = join(dir, 'bin');
    mkdirSync(bin);
    const notes = noteDescriptor(bin, 'zstd', 1);
    const key = makeKey(dir, 'key.txt');
    const name = 'cluster-2026-12-03T05:00:00Z.snap';
    const file = makeBackup(dir, name, SNAPSHOT, { zstd: true, age: key });
    const identity = await loadIdentity(key.file);
    const out = join(dir, 'out');
    mkdirSync(out);
    const path = process.env.PATH;
    process.env.PATH = `${bin}:${path ?? ''}`;
    try {
      const result = await importSnapshot(
        { name: file, open: () => createReadStream(file) as AsyncIterable<Uint8Array> },
        { out: join(out, name), identity },
      );
      expect(result.report.usable).toBe(true);
      expect(result.chain.map((link) => [link.stage, link.sha256])).toEqual([
        ['source', sha256(readFileSync(file))],
        ['plain', sha256(SNAPSHOT)],
      ]);
    } finally {
      process.env.PATH = path;
    }
    // zstd's stdout was the partial file in the output folder (since renamed), not pipe:[…]
    const part = `${out}/.${name}.importing-`;
    const stdout = readFileSync(notes, 'utf8').trim();
    expect(stdout.startsWith(part) ? part : stdout).toBe(part);
    expect(readdirSync(out).sort()).toEqual([name, `${name}.sha256`]);
    expect(statSync(join(out, name)).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(out, name)).equals(SNAPSHOT)).toBe(true);
  });

  test('a local file is read by age itself (its stdin is the backup file), zstd writes the snapshot; same chain', async () => {
    const bin = join(dir, 'bin-local');
    mkdirSync(bin);
    const notes = { age: noteDescriptor(bin, 'age', 0), zstd: noteDescriptor(bin, 'zstd', 1) };
    const key = makeKey(dir, 'key-local.txt');
    const name = 'cluster-2026-12-03T06:00:00Z.snap';
    const file = makeBackup(dir, name, SNAPSHOT, { zstd: true, age: key });
    const identity = await loadIdentity(key.file);
    const out = join(dir, 'out-local');
    mkdirSync(out);
    const path = process.env.PATH;
    process.env.PATH = `${bin}:${path ?? ''}`;
    try {
      const result = await importSnapshot(
        { name: file, file, open: () => createReadStream(file) as AsyncIterable<Uint8Array> },
        { out: join(out, name), identity },
      );
      expect(result.chain.map((link) => [link.stage, link.sha256])).toEqual([
        ['source', sha256(readFileSync(file))],
        ['plain', sha256(SNAPSHOT)],
      ]);
      expect(result.report.usable).toBe(true);
    } finally {
      process.env.PATH = path;
    }
    expect(readFileSync(notes.age, 'utf8').trim()).toBe(file);
    const part = `${out}/.${name}.importing-`;
    const stdout = readFileSync(notes.zstd, 'utf8').trim();
    expect(stdout.startsWith(part) ? part : stdout).toBe(part);
    expect(readdirSync(out).sort()).toEqual([name, `${name}.sha256`]);
    expect(readFileSync(join(out, name)).equals(SNAPSHOT)).toBe(true);
  });

  test('a local file that changes while age reads it: one sentence, nothing kept', async () => {
    const bin = join(dir, 'bin-touch');
    mkdirSync(bin);
    const key = makeKey(dir, 'key-touch.txt');
    const name = 'cluster-2026-12-03T07:00:00Z.snap';
    const file = makeBackup(dir, name, SNAPSHOT, { zstd: true, age: key });
    const real = spawnSync('sh', ['-c', 'command -v age'], { encoding: 'utf8' }).stdout.trim();
    // Something else touches the backup while it is read (here: the moment age starts).
    writeFileSync(join(bin, 'age'), `#!/bin/sh\nsleep 0.05\ntouch '${file}'\nexec '${real}' "$@"\n`, { mode: 0o755 });
    const identity = await loadIdentity(key.file);
    const out = join(dir, 'out-touch');
    mkdirSync(out);
    const path = process.env.PATH;
    process.env.PATH = `${bin}:${path ?? ''}`;
    try {
      const error = await importSnapshot(
        { name: file, file, open: () => createReadStream(file) as AsyncIterable<Uint8Array> },
        { out: join(out, name), identity },
      ).catch((e: unknown) => e);
      expect((error as Error).message).toBe(
        `${file} changed while it was imported; import it again once nothing writes to it.`,
      );
    } finally {
      process.env.PATH = path;
    }
    expect(readdirSync(out)).toEqual([]);
  });

  test('an .age with no zstd inside: age writes the new snapshot itself (its stdout is the file)', async () => {
    const bin = join(dir, 'bin-age-only');
    mkdirSync(bin);
    const notes = noteDescriptor(bin, 'age', 1);
    const key = makeKey(dir, 'key-age-only.txt');
    const name = 'cluster-2026-12-03T08:00:00Z.snap';
    const file = makeBackup(dir, name, SNAPSHOT, { age: key });
    const identity = await loadIdentity(key.file);
    const out = join(dir, 'out-age-only');
    mkdirSync(out);
    const path = process.env.PATH;
    process.env.PATH = `${bin}:${path ?? ''}`;
    try {
      const result = await importSnapshot(
        { name: file, file, open: () => createReadStream(file) as AsyncIterable<Uint8Array> },
        { out: join(out, name), identity },
      );
      expect(result.layers).toEqual(['age']);
      expect(result.chain.map((link) => link.sha256)).toEqual([sha256(readFileSync(file)), sha256(SNAPSHOT)]);
    } finally {
      process.env.PATH = path;
    }
    const part = `${out}/.${name}.importing-`;
    const stdout = readFileSync(notes, 'utf8').trim();
    expect(stdout.startsWith(part) ? part : stdout).toBe(part);
    expect(readFileSync(join(out, name)).equals(SNAPSHOT)).toBe(true);
    expect(statSync(join(out, name)).mode & 0o777).toBe(0o600);
  });

  test('stopped while zstd reads a local .zst itself: the program is ended, one sentence, nothing kept', async () => {
    const bin = join(dir, 'bin-stuck');
    mkdirSync(bin);
    // a zstd that never gets anywhere (a slow disk, a huge file): only the stop can end the import
    writeFileSync(join(bin, 'zstd'), '#!/bin/sh\nexec sleep 60\n', { mode: 0o755 });
    const name = 'cluster-2026-12-03T09:00:00Z.snap';
    const file = makeBackup(dir, name, SNAPSHOT, { zstd: true });
    const out = join(dir, 'out-stuck');
    mkdirSync(out);
    const stop = new AbortController();
    const path = process.env.PATH;
    process.env.PATH = `${bin}:${path ?? ''}`;
    try {
      const importing = importSnapshot(
        { name: file, file, open: () => createReadStream(file) as AsyncIterable<Uint8Array> },
        { out: join(out, name), signal: stop.signal },
      ).catch((e: unknown) => e);
      // an import that ended by itself before its file appeared is reported by the assertion below, not a time-out
      let ended = false;
      void importing.then(() => (ended = true));
      while (!ended && !readdirSync(out).some((entry) => entry.includes('.importing-'))) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      stop.abort();
      expect(((await importing) as Error).message).toBe('Stopped before the import finished; no file was written.');
    } finally {
      process.env.PATH = path;
    }
    expect(readdirSync(out)).toEqual([]);
  }, 20_000);
});
