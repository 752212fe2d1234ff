/**
 * Issue 16: the plain snapshot is read back and hashed while the zstd program writes it (src/etcd/digest.ts,
 * digestWhileWritten), so that once zstd is done only the tree walk is left. A wrapper on PATH runs the real zstd, then
 * before exiting watches how many bytes talos-dr (its parent) has read: with the read-back following the writer,
 * the plain file's bytes are read before zstd exits (before, the verification read them only afterwards). A zstd that
 * stops mid-file still ends the import with its sentence and no file kept: the follower does not wait for the rest.
 */
import { afterAll, describe, expect, test } from 'vitest';
import { spawnSync } from 'node:child_process';
import { createReadStream, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { importSnapshot } from '../../src/backups/decode.js';
import { SNAPSHOT, makeBackup, toolsMissing } from './fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'talos-dr-import-follow-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const NAME = 'cluster-2026-12-03T05:00:00Z.snap';
const realZstd = toolsMissing ? '' : spawnSync('sh', ['-c', 'command -v zstd'], { encoding: 'utf8' }).stdout.trim();

/** Runs `body` with `bin` first on PATH. */
async function withPath<T>(bin: string, body: () => Promise<T>): Promise<T> {
  const path = process.env.PATH;
  process.env.PATH = `${bin}:${path ?? ''}`;
  try {
    return await body();
  } finally {
    process.env.PATH = path;
  }
}

describe.skipIf(toolsMissing !== null || process.platform !== 'linux')(
  'the plain file read back as zstd writes it',
  () => {
    test('talos-dr has read the plain file back before zstd exits', async () => {
      const bin = join(dir, 'bin-watch');
      mkdirSync(bin);
      const notes = join(bin, 'notes');
      // 16 MiB after the snapshot: zstd writes them in a moment; the read-back follows.
      const plain = Buffer.concat([SNAPSHOT, Buffer.alloc(16 * 1024 * 1024, 0x5a)]);
      const want = 8 * 1024 * 1024;
      writeFileSync(
        join(bin, 'zstd'),
        [
          '#!/bin/sh',
          `rchar() { awk '/^rchar/ {print $2}' /proc/$PPID/io; }`,
          'before=$(rchar)',
          `'${realZstd}' "$@"`,
          'status=$?',
          // Up to 10 s for talos-dr to read the bytes zstd wrote; it cannot before zstd exits if it waits for it.
          'i=0',
          'while [ $i -lt 200 ]; do',
          `  if [ $(( $(rchar) - before )) -ge ${want} ]; then echo read-back > '${notes}'; exit $status; fi`,
          '  sleep 0.05; i=$((i+1))',
          'done',
          `echo not-read-back > '${notes}'`,
          'exit $status',
          '',
        ].join('\n'),
        { mode: 0o755 },
      );
      const file = makeBackup(dir, NAME, plain, { zstd: true });
      const out = join(dir, 'watch-out');
      mkdirSync(out);
      await withPath(bin, () =>
        importSnapshot(
          { name: file, file, open: () => createReadStream(file) as AsyncIterable<Uint8Array> },
          { out: join(out, NAME), sha256File: false },
        ).catch(() => null),
      );
      expect(readFileSync(notes, 'utf8').trim()).toBe('read-back');
    });

    test('a zstd that stops mid-file: its sentence, no file kept, the read-back does not wait for the rest', async () => {
      const bin = join(dir, 'bin-stop');
      mkdirSync(bin);
      // Writes the first 3 MiB of what the real zstd decodes, then fails as zstd does on a damaged frame.
      writeFileSync(
        join(bin, 'zstd'),
        `#!/bin/sh\n'${realZstd}' "$@" | head -c 3145728\necho 'zstd: error 20 : Data corruption detected' >&2\nexit 1\n`,
        { mode: 0o755 },
      );
      const plain = Buffer.concat([SNAPSHOT, Buffer.alloc(16 * 1024 * 1024, 0x5a)]);
      const file = makeBackup(dir, `stop-${NAME}`, plain, { zstd: true });
      const out = join(dir, 'stop-out');
      mkdirSync(out);
      const failure = await withPath(bin, () =>
        importSnapshot(
          { name: file, file, open: () => createReadStream(file) as AsyncIterable<Uint8Array> },
          { out: join(out, NAME) },
        ).then(
          () => null,
          (error: unknown) => error,
        ),
      );
      expect(String((failure as Error | null)?.message)).toMatch(
        /is damaged or truncated: its zstd-compressed data does not decode; use another copy of the backup \(no file was kept\)\.$/,
      );
      expect(readdirSync(out)).toEqual([]);
    });
  },
);
