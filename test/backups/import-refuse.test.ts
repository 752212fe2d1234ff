/**
 * Issue 18 item 12 for imports: what decodes to something that is not bbolt (here random bytes, zstd-compressed) is
 * refused from its first pages with the one sentence, without the verification reading it all again (no "verifying"
 * progress at all), and no file is kept. Before: the decoded junk was hashed to its end first.
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createReadStream } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { importSnapshot } from '../../src/backups/decode.js';
import { makeBackup, toolsMissing } from './fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'talos-dr-refuse-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test.skipIf(toolsMissing !== null)('decoded junk: one sentence, no verification pass, nothing kept', async () => {
  const src = join(dir, 'src');
  const out = join(dir, 'out');
  mkdirSync(src);
  mkdirSync(out);
  const file = makeBackup(src, 'junk-2026-12-02T10:00:00Z.snap', randomBytes(4 * 1024 * 1024), { zstd: true });
  const verified: number[] = [];
  const error = await importSnapshot(
    { name: file, open: () => createReadStream(file) as AsyncIterable<Uint8Array> },
    { out: join(out, 'junk.snap'), onVerifyProgress: (bytes) => verified.push(bytes) },
  ).catch((e: unknown) => e);
  expect((error as Error).message).toMatch(
    /is not an etcd snapshot after decompression \(.*\); check that it is a talos-backup file\.$/,
  );
  expect(verified).toEqual([]);
  expect(readdirSync(out)).toEqual([]);
});
