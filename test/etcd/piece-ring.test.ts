/**
 * The shared read of issue 16 (src/etcd/piece-ring.ts): the hashing thread reads the file into a ring and the walk
 * takes its leaves from there. First the protocol in one thread, with the two sides' steps interleaved at random and
 * the producer run as far as it may at every turn: the walk's window must hold the file's bytes until the walk moves
 * on. Then the policy (when the walk reads the file itself and gives the ring up). Then the real hashing thread
 * (compiled JavaScript: `npm run build` first) beside the walk: same status, same sentences at the same pages for
 * damaged files, same sha256, with the leaves taken from the ring.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { execFile } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { findPackageRoot } from '../../src/paths.js';
import { MISSES_BEFORE_GIVING_UP, PieceRing, RingReader, WAKE_BATCH } from '../../src/etcd/piece-ring.js';
import { checkStructure, inspectSnapshot } from '../../src/etcd/inspect.js';
import { BoltWalker, openBolt, runWalk } from '../../src/etcd/bbolt.js';
import type { BucketVisitor, TreeVisitor } from '../../src/etcd/bbolt.js';
import { StatusVisitor } from '../../src/etcd/status.js';
import { digestHandle } from '../../src/etcd/trailer.js';
import { buildEtcdDatabase, withSha256Trailer } from '../../src/etcd/writer.js';
import type { EtcdDatabaseContent, HistoryEvent } from '../../src/etcd/writer.js';
import type * as DigestSource from '../../src/etcd/digest.js';
import type * as InspectSource from '../../src/etcd/inspect.js';
import type * as RingSource from '../../src/etcd/piece-ring.js';
import { randomBytes, rng } from './seeded.js';

const run = promisify(execFile);

describe('the ring protocol, both sides in one thread', () => {
  const PIECE = 64;
  const PIECES = 2 * WAKE_BATCH + 1;

  /** The hashing thread's side, one piece a step: what digest-worker.ts does, minus the waiting and the hash. */
  function producer(ring: PieceRing, file: Buffer) {
    let next = 0;
    const last = Math.ceil(file.length / PIECE) - 1;
    return {
      step(): boolean {
        if (next > last || !ring.hasRoom(next)) return false;
        const slot = ring.slot(next);
        slot.fill(0xee);
        file.copy(slot, 0, next * PIECE, Math.min(file.length, (next + 1) * PIECE));
        ring.publish(next);
        next++;
        return true;
      },
      /** as far as the protocol lets it go: the worst case for a window the walk still reads */
      runFree(): void {
        while (this.step());
      },
    };
  }

  test.each([1, 2, 3, 4, 5, 6, 7, 8])(
    'seed %i: a window stays the file bytes until the walk moves on, whatever the hash does meanwhile',
    (seed) => {
      const random = rng(seed);
      const file = randomBytes(PIECE * 2000 + 13, random);
      const ring = PieceRing.create(file.length, PIECE, PIECES);
      const reader = new RingReader(ring, 0);
      const hash = producer(ring, file);
      let position = 0;
      let window: { base: number; valid: number; position: number } | null = null;
      let served = 0;
      const intact = (): void => {
        if (!window) return;
        const held = ring.data.subarray(window.base, window.base + window.valid);
        expect(held.equals(file.subarray(window.position, window.position + window.valid))).toBe(true);
      };
      for (let step = 0; step < 3000; step++) {
        if (random() < 0.3) hash.runFree();
        else for (let i = Math.floor(random() * 6); i > 0; i--) hash.step();
        intact();
        // The walk: mostly on through the file a "page" (16 bytes) or a few at a time, sometimes a little back or far
        // ahead.
        const move = random();
        if (move < 0.02) position = Math.max(0, position - Math.floor(random() * 2 * PIECE));
        else if (move < 0.04) position = Math.min(file.length - 16, position + Math.floor(random() * 10 * PIECE));
        else position = Math.min(file.length - 16, position + 16 * (1 + Math.floor(random() * 3)));
        position -= position % 16;
        const k = Math.floor(position / PIECE);
        if (k >= ring.held() && !ring.released()) {
          // What the hashing thread does while the walk waits for its piece (RingReader.windowAt releases first).
          ring.release(k);
          while (ring.produced() <= k && hash.step());
        }
        const taken = reader.windowAt(position, file.length);
        window = taken && { ...taken, position };
        if (taken) served++;
        intact();
      }
      expect(served).toBeGreaterThan(1000);
      expect(ring.released()).toBe(false);
    },
  );

  test('the hash may fill every slot but the ones from the walk’s mark on', () => {
    const ring = PieceRing.create(PIECE * 100, PIECE, PIECES);
    ring.release(5);
    expect(ring.hasRoom(5 + PIECES - 1)).toBe(true);
    expect(ring.hasRoom(5 + PIECES)).toBe(false);
    ring.releaseAll();
    expect(ring.hasRoom(1e9)).toBe(true);
  });
});

describe('when the walk reads the file itself', () => {
  const PIECE = 4096;

  test('before the hashing thread has produced anything the walk does not wait, and lets the hash run up to it', () => {
    const ring = PieceRing.create(PIECE * 100, PIECE, 32);
    const reader = new RingReader(ring, 60_000);
    expect(reader.windowAt(40 * PIECE, PIECE * 100)).toBeNull();
    expect(ring.held()).toBe(40);
    expect(ring.hasRoom(40 + 31)).toBe(true);
  });

  test('a page behind the walk’s own mark comes from the file', () => {
    const ring = PieceRing.create(PIECE * 100, PIECE, 32);
    const reader = new RingReader(ring, 0);
    ring.release(10);
    expect(reader.windowAt(3 * PIECE, PIECE * 100)).toBeNull();
    expect(ring.held()).toBe(10);
  });

  test('a hashing thread that failed is not waited for: the ring is given up', () => {
    const ring = PieceRing.create(PIECE * 100, PIECE, 32);
    const reader = new RingReader(ring, 60_000);
    ring.slot(0).fill(1);
    ring.publish(0);
    ring.stop();
    expect(reader.windowAt(2 * PIECE, PIECE * 100)).toBeNull();
    expect(ring.released()).toBe(true);
  });

  test('a hashing thread that went silent is waited for only as long as the patience', () => {
    const ring = PieceRing.create(PIECE * 100, PIECE, 32);
    const reader = new RingReader(ring, 20);
    ring.publish(0);
    expect(reader.windowAt(2 * PIECE, PIECE * 100)).toBeNull();
    expect(ring.released()).toBe(true);
  });

  test(`after ${MISSES_BEFORE_GIVING_UP} reads from the file with no window of leaves in file order, the hash runs free`, () => {
    const ring = PieceRing.create(PIECE * 1000, PIECE, 32);
    const reader = new RingReader(ring, 0);
    for (let i = 0; i < MISSES_BEFORE_GIVING_UP - 1; i++) reader.fileRead();
    expect(ring.released()).toBe(false);
    ring.publish(0);
    expect(reader.windowAt(0, PIECE * 1000)).not.toBeNull();
    for (let i = 0; i < MISSES_BEFORE_GIVING_UP - 1; i++) reader.fileRead();
    expect(ring.released()).toBe(false);
    reader.fileRead();
    expect(ring.released()).toBe(true);
    expect(ring.hasRoom(1e9)).toBe(true);
  });
});

/** A `key` bucket of a few MiB with values from a few bytes to several pages (overflow runs cross pieces). */
function mixedContent(puts: number): EtcdDatabaseContent {
  const random = rng(99);
  const history: HistoryEvent[] = [];
  for (let i = 0; i < puts; i++) {
    const size = random() < 0.15 ? 4000 + Math.floor(random() * 60000) : 100 + Math.floor(random() * 1500);
    history.push({
      kind: 'put',
      revision: i + 2,
      key: `/registry/pods/ns-${i % 7}/pod-${String(i).padStart(6, '0')}`,
      value: Buffer.alloc(size, i % 251),
      createRevision: i + 2,
      version: 1,
    });
  }
  for (let i = 0; i < puts; i += 5) {
    history.push({
      kind: 'delete',
      revision: puts + 2 + i,
      key: `/registry/pods/ns-${i % 7}/pod-${String(i).padStart(6, '0')}`,
    });
  }
  return { history, consistentIndex: puts * 2, members: [] };
}

describe('the walk over a ring filled ahead of it (one thread)', () => {
  let dir = '';
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'piece-ring-walk-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /**
   * Walks `bytes` reading the file itself, and again with a ring the whole file was read into beforehand (so the walk
   * never waits); `atLeaf` runs after the second walk's n-th leaf was visited.
   */
  async function walkBothWays(bytes: Buffer, atLeaf?: (n: number, ring: PieceRing, reader: RingReader) => void) {
    const path = join(dir, 'walk.db');
    writeFileSync(path, bytes);
    const fd = openSync(path, 'r');
    try {
      const opened = openBolt(fd, bytes.length);
      if (!opened.ok) throw new Error(opened.problem);
      const walkWith = async (reader: RingReader | null, ring: PieceRing | null) => {
        const status = new StatusVisitor();
        let leaves = 0;
        const visitor: TreeVisitor = {
          bucket(buf, start, end, isBucket) {
            const inner = status.bucket(buf, start, end, isBucket);
            if (!inner) return null;
            const counted: BucketVisitor = {
              leaf(page) {
                inner.leaf(page);
                if (reader && ring) atLeaf?.(++leaves, ring, reader);
              },
            };
            return counted;
          },
        };
        const walk = await runWalk(new BoltWalker(fd, bytes.length, opened.db, visitor, undefined, null, reader));
        return { walk, problems: status.problems, fields: walk.problems.length === 0 ? status.fields() : null };
      };
      const alone = await walkWith(null, null);
      const pieceBytes = 128 * 1024;
      const ring = PieceRing.create(
        bytes.length,
        pieceBytes,
        Math.max(2 * WAKE_BATCH + 1, Math.ceil(bytes.length / pieceBytes)),
      );
      for (let k = 0; k * pieceBytes < bytes.length; k++) {
        bytes.copy(ring.slot(k), 0, k * pieceBytes, Math.min(bytes.length, (k + 1) * pieceBytes));
        ring.publish(k);
      }
      const reader = new RingReader(ring, 0);
      const shared = await walkWith(reader, ring);
      return { alone, shared, reader };
    } finally {
      closeSync(fd);
    }
  }

  test('leaves taken from the ring: the same walk as reading the file', async () => {
    const { alone, shared, reader } = await walkBothWays(buildEtcdDatabase(mixedContent(800)));
    expect(shared.fields).toEqual(alone.fields);
    expect(shared.walk.problems).toEqual(alone.walk.problems);
    expect(shared.walk.pagesReachable).toBe(alone.walk.pagesReachable);
    expect(reader.servedWindows).toBeGreaterThan(3);
    expect(shared.walk.bytesRead).toBeLessThan(alone.walk.bytesRead / 4);
  });

  test('a walk that gives the ring up half way never reads the ring again, even inside the window it took', async () => {
    let gaveUpAt = -1;
    const { alone, shared } = await walkBothWays(buildEtcdDatabase(mixedContent(800)), (n, ring, reader) => {
      if (n !== 40) return;
      // The walk stops following the hash (reads from the file with no window in file order)...
      for (let i = 0; i < MISSES_BEFORE_GIVING_UP; i++) reader.fileRead();
      gaveUpAt = n;
      // ...and the hash, free now, overwrites every slot.
      ring.data.fill(0x55);
    });
    expect(gaveUpAt).toBe(40);
    expect(shared.walk.problems).toEqual([]);
    expect(shared.fields).toEqual(alone.fields);
  });
});

describe('the real hashing thread beside the walk (built dist/)', () => {
  const root = findPackageRoot();
  const distUrl = (name: string): string => pathToFileURL(join(root, 'dist/src/etcd', name)).href;
  let built: { digest: typeof DigestSource; inspect: typeof InspectSource; ring: typeof RingSource };
  let dir = '';
  let database: Buffer;

  beforeAll(async () => {
    if (!existsSync(join(root, 'dist/src/etcd/piece-ring.js'))) {
      throw new Error('dist/ is missing or old: run `npm run build` before these tests');
    }
    built = {
      digest: (await import(distUrl('digest.js'))) as typeof DigestSource,
      inspect: (await import(distUrl('inspect.js'))) as typeof InspectSource,
      ring: (await import(distUrl('piece-ring.js'))) as typeof RingSource,
    };
    dir = mkdtempSync(join(tmpdir(), 'piece-ring-'));
    database = buildEtcdDatabase(mixedContent(2500));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** The walk and the hash with the ring, and the walk alone reading the file, on the same bytes. */
  async function bothWays(name: string, bytes: Buffer) {
    const path = join(dir, name);
    writeFileSync(path, bytes);
    const handle = await open(path, 'r');
    try {
      const ring = built.ring.PieceRing.create(bytes.length);
      const reader = new built.ring.RingReader(ring);
      const digesting = built.digest.digestOpenFile(handle, bytes.length, { inWorker: true, ring });
      // A walk that starts before the hashing thread has booted reads the file itself until the hash has begun (and
      // a file of a few MiB may be walked by then): start it once the hash is under way, as a large file's walk is.
      for (let i = 0; i < 2000 && ring.produced() === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
      const shared = await built.inspect.checkStructure(handle.fd, bytes.length, { split: false, ring: reader });
      const digest = await digesting;
      const alone = await checkStructure(handle.fd, bytes.length, { split: false });
      return { shared, alone, digest, digestAlone: await digestHandle(handle, bytes.length), reader };
    } finally {
      await handle.close();
    }
  }

  test('a sound snapshot: same status and sha256, the leaves taken from the hashing thread’s pieces', async () => {
    const bytes = withSha256Trailer(database);
    expect(bytes.length).toBeGreaterThan(8 * 128 * 1024 * 4);
    const { shared, alone, digest, digestAlone, reader } = await bothWays('sound.db', bytes);
    expect(shared.ok).toBe(true);
    expect(shared.status).toEqual(alone.status);
    expect(shared.problems).toEqual(alone.problems);
    expect(shared.walk?.pagesReachable).toBe(alone.walk?.pagesReachable);
    expect(digest).toEqual(digestAlone);
    expect(digest.trailer).toBe('verified');
    // The walk read from the file only what it could not take from the ring: most of it came from there.
    expect(reader.servedWindows).toBeGreaterThan(10);
    expect(shared.walk?.bytesRead).toBeLessThan(bytes.length / 4);
    expect(alone.walk?.bytesRead).toBeGreaterThan(bytes.length / 2);
  });

  test('damaged snapshots: the same sentences, naming the same pages, as the walk that reads the file itself', async () => {
    const random = rng(4242);
    const pages = database.length / 4096;
    let damaged = 0;
    for (let i = 0; i < 16; i++) {
      const bytes = Buffer.from(database);
      for (let j = 0; j < 1 + (i % 3); j++) {
        // Page headers and element tables most of the time: that is where structure lives.
        const page = 2 + Math.floor(random() * (pages - 2));
        const at = page * 4096 + (random() < 0.7 ? Math.floor(random() * 64) : Math.floor(random() * 4096));
        bytes[at] = Math.floor(random() * 256);
      }
      const { shared, alone, digest, digestAlone } = await bothWays(`damaged-${i}.db`, withSha256Trailer(bytes));
      expect(shared.ok).toBe(alone.ok);
      expect(shared.problems).toEqual(alone.problems);
      expect(shared.status).toEqual(alone.status);
      expect(digest).toEqual(digestAlone);
      if (!alone.ok) damaged++;
    }
    expect(damaged).toBeGreaterThan(2);
  });

  test('a file cut short: the same sentence', async () => {
    const bytes = database.subarray(0, database.length - 3 * 4096);
    const { shared, alone } = await bothWays('short.db', bytes);
    expect(shared.ok).toBe(false);
    expect(shared.problems).toEqual(alone.problems);
    expect(shared.problems[0]).toMatch(/cut short/);
  });

  test('talos-dr inspect of a damaged 40 MiB snapshot (hash on its own thread) says what inspect in one thread says', async () => {
    // Large enough for the hashing thread (32 MiB); whether the walk reads from its ring depends on the machine's load
    // (readOnceBesideHash): both ways are checked through inspectSnapshot in commands.test.ts.
    const big = buildEtcdDatabase(mixedContent(4000 * 5));
    expect(big.length).toBeGreaterThan(32 * 1024 * 1024);
    const bytes = withSha256Trailer(big);
    // A leaf deep in the file gets an impossible page type.
    const page = Math.floor(big.length / 4096 / 2);
    let leaf = page;
    while ((bytes.readUInt16LE(leaf * 4096 + 8) & 0x02) === 0) leaf++;
    bytes.writeUInt16LE(0x40, leaf * 4096 + 8);
    const path = join(dir, 'big-damaged.db');
    writeFileSync(path, bytes);
    const { stdout } = await run(process.execPath, [join(root, 'dist/src/cli.js'), 'inspect', '--json', path], {
      timeout: 60_000,
    }).catch((error: { stdout: string }) => ({ stdout: error.stdout }));
    const viaCli = JSON.parse(stdout) as { problems: string[]; usable: boolean; sha256: string };
    const inOneThread = await inspectSnapshot(path, { hashInWorker: false });
    expect(viaCli.usable).toBe(false);
    expect(viaCli.problems).toEqual(inOneThread.problems);
    expect(viaCli.problems.join(' ')).toContain(`page ${leaf} has an invalid type`);
    expect(viaCli.sha256).toBe(inOneThread.sha256);
  });
});
