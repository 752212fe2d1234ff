/**
 * The whole verification at the hash floor (issue 16): the sha256 on a thread of its own, reading small pieces, and
 * the tree walk beside it in one thread on a 2-core machine. Same digests and trailer verdicts as the hash in this
 * thread, wherever the end of the body falls against the hashing thread's pieces. The thread exists only as compiled
 * JavaScript: `npm run build` first.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { findPackageRoot } from '../../src/paths.js';
import { readOnceBesideHash, splitBesideHash } from '../../src/etcd/inspect.js';
import { digestHandle } from '../../src/etcd/trailer.js';
import type { FileDigest } from '../../src/etcd/trailer.js';
import type * as DigestSource from '../../src/etcd/digest.js';
import { buildEtcdSnapshot, withSha256Trailer } from '../../src/etcd/writer.js';

const run = promisify(execFile);

const built = join(findPackageRoot(), 'dist/src/etcd/digest.js');
let digestModule: typeof DigestSource;
let dir: string;

beforeAll(async () => {
  if (!existsSync(built)) throw new Error('dist/ is missing: run `npm run build` before these tests');
  digestModule = (await import(pathToFileURL(built).href)) as typeof DigestSource;
  dir = mkdtempSync(join(tmpdir(), 'verify-floor-'));
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function digestBoth(
  name: string,
  bytes: Buffer,
): Promise<{ thread: FileDigest; here: FileDigest; progress: number[] }> {
  const path = join(dir, name);
  writeFileSync(path, bytes);
  const handle = await open(path, 'r');
  try {
    const progress: number[] = [];
    expect(digestModule.workerAvailable()).toBe(true);
    const thread = await digestModule.digestOpenFile(handle, bytes.length, {
      inWorker: true,
      onProgress: (done) => progress.push(done),
    });
    const here = await digestHandle(handle, bytes.length);
    return { thread, here, progress };
  } finally {
    await handle.close();
  }
}

describe('the sha256 on its own thread', () => {
  const PIECE = 128 * 1024;

  test('same sha256 and trailer verdict as in this thread, wherever the body ends against its pieces', async () => {
    // A file with a trailer is 32 bytes past a multiple of 512: bodies ending a sector before, on and after a piece
    // boundary, and an empty body.
    const bodies = [0, 512, PIECE - 512, PIECE, PIECE + 512, 3 * PIECE, 40 * PIECE + 1024];
    for (const bodyLength of bodies) {
      const body = randomBytes(bodyLength);
      const good = withSha256Trailer(body);
      const { thread, here } = await digestBoth(`good-${bodyLength}`, good);
      expect(thread).toEqual(here);
      expect(thread.trailer).toBe('verified');
      expect(thread.sha256).toBe(createHash('sha256').update(good).digest('hex'));

      if (bodyLength > 0) {
        const bad = Buffer.from(good);
        bad[bodyLength - 1] = (bad[bodyLength - 1] as number) ^ 1;
        const damaged = await digestBoth(`bad-${bodyLength}`, bad);
        expect(damaged.thread).toEqual(damaged.here);
        expect(damaged.thread.trailer).toBe('mismatch');
      }
    }
    // Files without a trailer, of sizes just around a boundary.
    for (const length of [PIECE - 1, PIECE + 1, 5 * PIECE + 7]) {
      const plain = randomBytes(length);
      const { thread, here } = await digestBoth(`plain-${length}`, plain);
      expect(thread).toEqual(here);
      expect(thread.trailer).toBe('absent');
    }
  });

  test('progress reaches the whole file, told in a few steps rather than for every piece', async () => {
    const bytes = randomBytes(20 * 1024 * 1024 + 12345);
    const { thread, here, progress } = await digestBoth('progress', bytes);
    expect(thread).toEqual(here);
    expect(progress.at(-1)).toBe(bytes.length);
    expect(progress.length).toBeLessThanOrEqual(6);
    expect([...progress].sort((a, b) => a - b)).toEqual(progress);
  });
});

describe('the walk beside the hashing thread', () => {
  test('on two cores the walk stays in one thread while the sha256 has its own (three busy threads on two cores)', () => {
    expect(splitBesideHash(true, 2)).toBe(false);
    expect(splitBesideHash(true, 1)).toBe(false);
  });

  test('with a third core, or with the hash in this thread, the walk decides as before', () => {
    expect(splitBesideHash(true, 4)).toBeUndefined();
    expect(splitBesideHash(false, 2)).toBeUndefined();
  });

  test('on an idle machine the walk reads the file itself and the hash runs untied; on a busy one they share the reads', () => {
    // idle 2-core machine, this run's own threads in the load: the sha256 keeps its pace (no ring)
    expect(readOnceBesideHash(true, false, 0.3, 2)).toBe(false);
    expect(readOnceBesideHash(true, false, 2.5, 2)).toBe(false);
    expect(readOnceBesideHash(true, false, 6, 2)).toBe(false);
    // four times as much work as cores: one read, the two threads in step
    expect(readOnceBesideHash(true, false, 8, 2)).toBe(true);
    expect(readOnceBesideHash(true, false, 12, 2)).toBe(true);
    // no hashing thread to share with, or a walk split over two threads: never
    expect(readOnceBesideHash(false, false, 12, 2)).toBe(false);
    expect(readOnceBesideHash(true, undefined, 12, 2)).toBe(false);
  });
});

describe('what runs before the sha256 starts', () => {
  test('inspect loads the native CRC-32C library only once the hashing has begun, not with the module', async () => {
    // The library's loader and dlopen were ~20 ms of the CPU the CLI spent before the hashing thread started, and the
    // sha256 is the floor the whole verification is held to. Checked in a child process: a module cache is per process.
    const inspectJs = join(findPackageRoot(), 'dist/src/etcd/inspect.js');
    const snapshot = join(dir, 'lazy-crc.db');
    writeFileSync(
      snapshot,
      withSha256Trailer(
        buildEtcdSnapshot({
          history: [
            {
              kind: 'put',
              revision: 2,
              key: '/registry/a',
              value: Buffer.alloc(3000, 1),
              createRevision: 2,
              version: 1,
            },
          ],
          consistentIndex: 9,
          members: [],
        }),
      ),
    );
    const script = `
      import { createRequire } from 'node:module';
      const crcLoaded = () => Object.keys(createRequire(import.meta.url).cache).some((f) => f.includes('@node-rs/crc32'));
      const { inspectSnapshot } = await import(${JSON.stringify(pathToFileURL(inspectJs).href)});
      const atImport = crcLoaded();
      const report = await inspectSnapshot(process.argv[1]);
      console.log(JSON.stringify({ atImport, atEnd: crcLoaded(), usable: report.usable, hash: report.hash }));`;
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script, '--', snapshot], {
      timeout: 20_000,
    });
    const seen = JSON.parse(stdout) as { atImport: boolean; atEnd: boolean; usable: boolean; hash: string };
    expect(seen).toMatchObject({ atImport: false, atEnd: true, usable: true });
    expect(seen.hash).toMatch(/^[0-9a-f]{8}$/);
  });
});
