/**
 * Issue 16: the import's plain snapshot is hashed while zstd writes it (src/etcd/digest.ts, digestWhileWritten), so
 * once the decoder is done only the tree walk is left. The file is written here in random pieces with turns of the
 * event loop between them (as a decoder in another process writes it): the sha256 and the trailer verdict must be
 * those of the whole file read afterwards (trailer.ts's digestHandle), whatever the size (with a trailer or without,
 * the trailer straddling the follower's reads). A writer that stops mid-file ends the follower; a file longer than
 * the writer announced is hashed again by inspect, whole.
 */
import { afterAll, describe, expect, test } from 'vitest';
import { createHash } from 'node:crypto';
import { appendFileSync, closeSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FollowStopped, GrowingFile, digestWhileWritten } from '../../src/etcd/digest.js';
import { inspectSnapshot } from '../../src/etcd/inspect.js';
import { digestHandle } from '../../src/etcd/trailer.js';
import { SNAPSHOT } from '../backups/fixtures.js';
import { randomBytes, rng } from './seeded.js';

const dir = mkdtempSync(join(tmpdir(), 'talos-dr-follow-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A body of `length` bytes with etcd's trailer after it (size % 512 == 32 when the body is whole sectors). */
function withTrailer(body: Buffer, good = true): Buffer {
  const trailer = createHash('sha256').update(body).digest();
  if (!good) trailer[0] = (trailer[0] as number) ^ 1;
  return Buffer.concat([body, trailer]);
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Writes `content` to `path` in random pieces, a turn of the event loop (or a few) between them. */
async function writeInPieces(fd: number, content: Buffer, random: () => number): Promise<void> {
  for (let at = 0; at < content.length;) {
    const n = Math.min(content.length - at, 1 + Math.floor(random() * 300_000));
    writeSync(fd, content, at, n, at);
    at += n;
    const turns = Math.floor(random() * 3);
    for (let i = 0; i < turns; i++) await turn();
  }
}

async function reference(path: string): Promise<ReturnType<typeof digestHandle>> {
  const handle = await open(path, 'r');
  try {
    return await digestHandle(handle, (await handle.stat()).size);
  } finally {
    await handle.close();
  }
}

describe('the sha256 of a file hashed while it is written', () => {
  const cases: Array<[string, (random: () => number) => Buffer]> = [
    ['with a trailer', (random) => withTrailer(randomBytes(512 * 2_500, random))],
    ['with a trailer straddling two reads', (random) => withTrailer(randomBytes(128 * 1024 * 9 - 512 * 3, random))],
    ['with a trailer that does not match', (random) => withTrailer(randomBytes(512 * 1_100, random), false)],
    ['without a trailer (size % 512 != 32)', (random) => randomBytes(1_300_007, random)],
    ['a trailer and nothing before it', () => withTrailer(Buffer.alloc(0))],
    ['empty', () => Buffer.alloc(0)],
  ];
  for (const [name, make] of cases) {
    test(`${name}: the same sha256 and trailer verdict as the whole file read afterwards`, async () => {
      for (const seed of [1, 2, 3]) {
        const random = rng(seed * 7919);
        const content = make(random);
        const path = join(dir, `grow-${name.replace(/\W+/g, '-')}-${seed}`);
        const writer = openSync(path, 'wx', 0o600);
        const reader = openSync(path, 'r');
        try {
          const file = new GrowingFile();
          const following = digestWhileWritten(reader, file);
          await writeInPieces(writer, content, random);
          file.finish(content.length);
          const followed = await following;
          expect(followed.size, `seed ${seed}`).toBe(content.length);
          expect(followed.digest, `seed ${seed}`).toEqual(await reference(path));
        } finally {
          closeSync(reader);
          closeSync(writer);
        }
      }
    });
  }

  test('it hashes what is there before the writer is done (all but the last 32 bytes it sees)', async () => {
    const content = withTrailer(randomBytes(512 * 40_000, rng(5)));
    const path = join(dir, 'early');
    const half = 12 * 1024 * 1024;
    writeFileSync(path, content.subarray(0, half), { mode: 0o600 });
    const reader = openSync(path, 'r');
    try {
      const file = new GrowingFile();
      let hashed = 0;
      let reached: () => void = () => undefined;
      const reachedHalf = new Promise<void>((resolve) => (reached = resolve));
      const following = digestWhileWritten(reader, file, {
        onProgress: (bytes) => {
          hashed = bytes;
          if (bytes >= 8 * 1024 * 1024) reached();
        },
      });
      // Progress comes every 8 MiB: it passes 8 MiB with the file still at 12 MiB and no final size told.
      await reachedHalf;
      expect(file.size).toBeNull();
      expect(hashed).toBeLessThanOrEqual(half - 32);
      appendFileSync(path, content.subarray(half));
      file.finish(content.length);
      expect((await following).digest).toEqual(await reference(path));
    } finally {
      closeSync(reader);
    }
  });

  test('a writer that stops mid-file ends the follower (FollowStopped): it does not wait for the rest', async () => {
    const path = join(dir, 'stopped');
    writeFileSync(path, randomBytes(3 * 1024 * 1024, rng(9)), { mode: 0o600 });
    const reader = openSync(path, 'r');
    try {
      const file = new GrowingFile();
      const following = digestWhileWritten(reader, file);
      await turn();
      file.stop();
      await expect(following).rejects.toBeInstanceOf(FollowStopped);
    } finally {
      closeSync(reader);
    }
  });

  test('a final size below what was already hashed fails (the file became shorter), never a digest', async () => {
    const path = join(dir, 'shorter');
    writeFileSync(path, randomBytes(2 * 1024 * 1024, rng(11)), { mode: 0o600 });
    const reader = openSync(path, 'r');
    try {
      const file = new GrowingFile();
      const following = digestWhileWritten(reader, file);
      // It hashes the 2 MiB there (but the last 32 bytes) on its first turn, then waits for more.
      await turn();
      file.finish(1024);
      await expect(following).rejects.toThrow(/became shorter/);
    } finally {
      closeSync(reader);
    }
  });
});

describe('inspect with the digest of the file as written', () => {
  const snapshot = SNAPSHOT;

  test('a file that grew past the size the writer announced is hashed again, whole', async () => {
    const path = join(dir, 'grew.snap');
    writeFileSync(path, snapshot, { mode: 0o600 });
    const reader = openSync(path, 'r');
    try {
      const file = new GrowingFile();
      const following = digestWhileWritten(reader, file);
      file.finish(snapshot.length);
      expect((await following).size).toBe(snapshot.length);
      // Something wrote on after the writer said it was done.
      appendFileSync(path, Buffer.alloc(512, 7));
      const report = await inspectSnapshot(path, { hashedWhileWritten: following });
      const whole = createHash('sha256')
        .update(Buffer.concat([snapshot, Buffer.alloc(512, 7)]))
        .digest('hex');
      expect(report.sha256).toBe(whole);
      expect(report.size).toBe(snapshot.length + 512);
    } finally {
      closeSync(reader);
    }
  });

  test('the digest as written is the report’s when it covers the file (same report as inspect alone)', async () => {
    const path = join(dir, 'same.snap');
    writeFileSync(path, snapshot, { mode: 0o600 });
    const reader = openSync(path, 'r');
    try {
      const file = new GrowingFile();
      const following = digestWhileWritten(reader, file);
      file.finish(snapshot.length);
      const report = await inspectSnapshot(path, { hashedWhileWritten: following });
      expect(report).toEqual(await inspectSnapshot(path));
      expect(report.usable).toBe(true);
    } finally {
      closeSync(reader);
    }
  });
});
