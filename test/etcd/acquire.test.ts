/**
 * Acquisition's file handling, with a tiny in-process stand-in for the Talos client (only the two streams matter):
 * what lands on disk when everything works, and that nothing that looks complete is left when it does not.
 */
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { pack as tarPack } from 'tar-stream';
import { acquireSnapshot, ArrivalDigest, defaultSnapshotName, ETCD_DB_PATH } from '../../src/etcd/acquire.js';
import { digestPath } from '../../src/etcd/trailer.js';
import { buildEtcdDatabase, buildEtcdSnapshot } from '../../src/etcd/writer.js';
import type { EtcdDatabaseContent } from '../../src/etcd/writer.js';
import type { TalosClient } from '../../src/talos/types.js';
import { UserError } from '../../src/errors.js';
import { ProgressLine } from '../../src/etcd/format.js';

const content: EtcdDatabaseContent = {
  history: Array.from({ length: 60 }, (_, i) => ({
    kind: 'put' as const,
    revision: i + 2,
    key: `/registry/secrets/s${i}`,
    value: Buffer.alloc(300, i),
    createRevision: i + 2,
    version: 1,
  })),
  consistentIndex: 70,
  members: [{ id: '8e9e05c52164694d', name: 'cp-1', peerURLs: ['https://127.0.0.2:2380'], clientURLs: [] }],
};
const SNAPSHOT = buildEtcdSnapshot(content);
const DATABASE = buildEtcdDatabase(content);

/** Chunks as Talos sends them (1 KiB), optionally stopping early or failing after some bytes. */
async function* chunks(
  bytes: Buffer,
  opts: { upTo?: number; failWith?: Error; signal?: AbortSignal | undefined; onChunk?: (sent: number) => void } = {},
): AsyncGenerator<Buffer> {
  const end = opts.upTo ?? bytes.length;
  for (let at = 0; at < end; at += 1024) {
    opts.signal?.throwIfAborted();
    yield bytes.subarray(at, Math.min(at + 1024, end));
    opts.onChunk?.(at);
    await new Promise((r) => setImmediate(r));
  }
  if (opts.failWith) throw opts.failWith;
}

function fakeClient(streams: {
  snapshot?: (signal?: AbortSignal, reuseBuffers?: boolean) => AsyncIterable<Buffer>;
  copy?: (path: string) => AsyncIterable<Buffer>;
}): TalosClient {
  const client = {
    etcdSnapshot: (_node: string, opts?: { signal?: AbortSignal; reuseBuffers?: boolean }) =>
      streams.snapshot!(opts?.signal, opts?.reuseBuffers),
    copy: (_node: string, path: string) => streams.copy!(path),
  };
  return client as unknown as TalosClient;
}

async function tarGz(entries: { name: string; data: Buffer }[]): Promise<Buffer> {
  const pack = tarPack();
  for (const entry of entries) pack.entry({ name: entry.name, size: entry.data.length, mode: 0o600 }, entry.data);
  pack.finalize();
  const parts: Buffer[] = [];
  for await (const part of pack as AsyncIterable<Buffer>) parts.push(part);
  return gzipSync(Buffer.concat(parts));
}

let dir = '';
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'talos-dr-acquire-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

async function failure(promise: Promise<unknown>): Promise<UserError> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(UserError);
  return error as UserError;
}

describe('acquireSnapshot', () => {
  test('an API snapshot lands as FILE (0600) with FILE.sha256 beside it, verified, and no .part left', async () => {
    const got = await acquireSnapshot(fakeClient({ snapshot: () => chunks(SNAPSHOT) }), '127.0.0.2', {
      dir,
      raw: false,
      now: () => new Date('2026-11-23T23:30:00.123Z'),
    });
    expect(got.file).toBe(join(dir, 'etcd-127.0.0.2-20261123T233000Z.snapshot'));
    expect(readFileSync(got.file).equals(SNAPSHOT)).toBe(true);
    expect(statSync(got.file).mode & 0o777).toBe(0o600);
    const sha = createHash('sha256').update(SNAPSHOT).digest('hex');
    expect(readFileSync(got.sha256File, 'utf8')).toBe(`${sha}  etcd-127.0.0.2-20261123T233000Z.snapshot\n`);
    expect(got.report).toMatchObject({
      integrity: 'verified',
      usable: true,
      needsSkipHashCheck: false,
      file: got.file,
    });
    expect(got.report.revision).toBe(61);
    expect(got).toMatchObject({ method: 'api', node: '127.0.0.2', bytes: SNAPSHOT.length });
    expect(readdirSync(dir).sort()).toEqual([
      'etcd-127.0.0.2-20261123T233000Z.snapshot',
      'etcd-127.0.0.2-20261123T233000Z.snapshot.sha256',
    ]);
  });

  test('takes the snapshot stream in reused buffers: each chunk is written before the next is asked for', async () => {
    let asked: boolean | undefined;
    /** Like GrpcTalosClient with reuseBuffers: one buffer, overwritten with junk as soon as the next chunk is asked. */
    async function* reused(bytes: Buffer): AsyncGenerator<Buffer> {
      const buffer = Buffer.alloc(3000);
      for (let at = 0; at < bytes.length; at += buffer.length) {
        const length = bytes.copy(buffer, 0, at, at + buffer.length);
        yield buffer.subarray(0, length);
        buffer.fill(0xee);
        await new Promise((r) => setImmediate(r));
      }
    }
    const client = fakeClient({
      snapshot: (_signal, reuseBuffers) => {
        asked = reuseBuffers;
        return reused(SNAPSHOT);
      },
    });
    const got = await acquireSnapshot(client, '127.0.0.2', { dir, raw: false, outFile: join(dir, 's') });
    expect(asked).toBe(true);
    expect(readFileSync(got.file).equals(SNAPSHOT)).toBe(true);
    expect(got.report).toMatchObject({ integrity: 'verified', usable: true });
  });

  test('a raw copy: the single db entry of the .tar.gz, no trailer, flagged as needing skip-hash-check', async () => {
    const archive = await tarGz([{ name: 'db', data: DATABASE }]);
    let asked = '';
    const client = fakeClient({
      copy: (path) => {
        asked = path;
        return chunks(archive);
      },
    });
    const got = await acquireSnapshot(client, '127.0.0.3', { dir, raw: true, outFile: join(dir, 'raw.db') });
    expect(asked).toBe(ETCD_DB_PATH);
    expect(readFileSync(got.file).equals(DATABASE)).toBe(true);
    expect(got.report).toMatchObject({ integrity: 'absent', needsSkipHashCheck: true, usable: true, structure: 'ok' });
    expect(got.method).toBe('raw');
  });

  test('a stream cut short (ending normally, as Talos does) leaves nothing behind', async () => {
    const client = fakeClient({ snapshot: () => chunks(SNAPSHOT, { upTo: 20 * 1024 }) });
    const error = await failure(acquireSnapshot(client, '127.0.0.2', { dir, raw: false, outFile: join(dir, 's') }));
    expect(error.message).toMatch(/ended early .* it was cut; nothing was kept/);
    expect(readdirSync(dir)).toEqual([]);
  });

  test('an in-band error in the middle of the stream fails the snapshot and removes the .part', async () => {
    const inBand = new UserError('127.0.0.2: etcd snapshot failed: etcdserver: request timed out.');
    const client = fakeClient({ snapshot: () => chunks(SNAPSHOT, { upTo: 8192, failWith: inBand }) });
    const error = await failure(acquireSnapshot(client, '127.0.0.2', { dir, raw: false, outFile: join(dir, 's') }));
    expect(error.message).toMatch(/request timed out; the partial snapshot was removed and nothing was kept/);
    expect(readdirSync(dir)).toEqual([]);
  });

  test('a full disk (ENOSPC) gives one sentence and removes the .part', async () => {
    const full = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    const client = fakeClient({ snapshot: () => chunks(SNAPSHOT, { upTo: 4096, failWith: full }) });
    const error = await failure(acquireSnapshot(client, '127.0.0.2', { dir, raw: false, outFile: join(dir, 's') }));
    expect(error.message).toMatch(
      /^Writing .*s\.part failed: the disk is full \(the disk (mounted at|holding) .*\), so nothing was kept/,
    );
    expect(readdirSync(dir)).toEqual([]);
  });

  test('Ctrl-C in the middle: stopped-by-user exit code, nothing kept', async () => {
    const controller = new AbortController();
    const client = fakeClient({
      snapshot: (signal) =>
        chunks(SNAPSHOT, { signal, onChunk: (sent) => (sent >= 10 * 1024 ? controller.abort() : undefined) }),
    });
    const error = await failure(
      acquireSnapshot(client, '127.0.0.2', { dir, raw: false, outFile: join(dir, 's'), signal: controller.signal }),
    );
    expect(error.exitCode).toBe(3);
    expect(readdirSync(dir)).toEqual([]);
  });

  test('an existing target is never overwritten, and the node is not even asked', async () => {
    const target = join(dir, 'keep.snapshot');
    writeFileSync(target, 'precious');
    let asked = false;
    const client = fakeClient({
      snapshot: () => {
        asked = true;
        return chunks(SNAPSHOT);
      },
    });
    const error = await failure(acquireSnapshot(client, '127.0.0.2', { dir, raw: false, outFile: target }));
    expect(error.message).toMatch(/already exists and is never overwritten/);
    expect(readFileSync(target, 'utf8')).toBe('precious');
    expect(asked).toBe(false);
  });

  test('a target that appears during the transfer is left alone (link, not rename)', async () => {
    const target = join(dir, 'race.snapshot');
    const client = fakeClient({
      snapshot: () =>
        chunks(SNAPSHOT, { onChunk: (sent) => (sent === 0 ? writeFileSync(target, 'theirs') : undefined) }),
    });
    const error = await failure(acquireSnapshot(client, '127.0.0.2', { dir, raw: false, outFile: target }));
    expect(error.message).toMatch(/appeared while the snapshot was being taken/);
    expect(readFileSync(target, 'utf8')).toBe('theirs');
    expect(existsSync(`${target}.part`)).toBe(false);
    expect(existsSync(`${target}.sha256`)).toBe(false);
  });

  test('a raw copy with an in-band error after the archive fails the copy', async () => {
    const archive = await tarGz([{ name: 'db', data: DATABASE }]);
    const late = new UserError('127.0.0.3: copy failed: read /var/lib/etcd/member/snap/db: input/output error.');
    const client = fakeClient({ copy: () => chunks(archive, { failWith: late }) });
    const error = await failure(acquireSnapshot(client, '127.0.0.3', { dir, raw: true, outFile: join(dir, 'r.db') }));
    expect(error.message).toMatch(/input\/output error/);
    expect(readdirSync(dir)).toEqual([]);
  });

  test('a raw copy whose entry name holds terminal escapes: the sentence names it without them', async () => {
    // a hostile node's archive: an entry name that would clear the screen and print a fake all-clear
    const hostile = '\u001b[2J\u001b[Hrestore OK\r\u001b]0;title\u0007\u202edb';
    const archive = await tarGz([{ name: hostile, data: DATABASE }]);
    const client = fakeClient({ copy: () => chunks(archive) });
    const error = await failure(acquireSnapshot(client, '127.0.0.3', { dir, raw: true, outFile: join(dir, 'r.db') }));
    expect(error.message).toContain('the archive holds "restore OK db" (file)');
    // eslint-disable-next-line no-control-regex
    expect(error.message).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u202a-\u202e]/);
    expect(readdirSync(dir)).toEqual([]);
  });

  test('a raw copy that is not bbolt (a gzip bomb of zeros) is refused after its first bytes, not written out', async () => {
    // 64 MiB of zeros packs into some 64 KiB: before, all of it went to the .part before the check refused it
    const bomb = await tarGz([{ name: 'db', data: Buffer.alloc(64 * 1024 * 1024) }]);
    const client = fakeClient({ copy: () => chunks(bomb) });
    let written = 0;
    const error = await failure(
      acquireSnapshot(client, '127.0.0.3', {
        dir,
        raw: true,
        outFile: join(dir, 'r.db'),
        onProgress: (bytes) => (written = bytes),
      }),
    );
    expect(error.message).toMatch(
      /^The raw copy from 127\.0\.0\.3 is not a bbolt database: it was refused after its first \d+ bytes and nothing was kept/,
    );
    expect(written).toBeLessThan(1024 * 1024);
    expect(readdirSync(dir)).toEqual([]);
  }, 60_000);

  test.each([
    ['raw copy', true],
    ['snapshot', false],
  ])(
    "a %s whose first pages are not bbolt: the node's stream is not read on, and no .part is left",
    async (what, raw) => {
      // 16 MiB that do not compress: reading the stream on would pull all of it through the gunzip and the tar
      const data = randomBytes(16 * 1024 * 1024);
      const stream = raw ? await tarGz([{ name: 'db', data }]) : data;
      let pulled = 0;
      let closed = false;
      const source = async function* (): AsyncGenerator<Buffer> {
        try {
          yield* chunks(stream, { onChunk: (at) => (pulled = at) });
        } finally {
          closed = true;
        }
      };
      const client = fakeClient({ copy: source, snapshot: source });
      const error = await failure(acquireSnapshot(client, '127.0.0.3', { dir, raw, outFile: join(dir, 'x') }));
      expect(error.message).toMatch(
        new RegExp(
          `^The ${what} from 127\\.0\\.0\\.3 is not a bbolt database: it was refused after its first \\d+ bytes`,
        ),
      );
      expect(pulled).toBeLessThan(2 * 1024 * 1024);
      expect(closed).toBe(true);
      expect(readdirSync(dir)).toEqual([]);
    },
    60_000,
  );

  test('a raw copy cut in the middle of the gzip stream fails with a sentence', async () => {
    const archive = await tarGz([{ name: 'db', data: DATABASE }]);
    const client = fakeClient({ copy: () => chunks(archive, { upTo: Math.floor(archive.length / 2) }) });
    const error = await failure(acquireSnapshot(client, '127.0.0.3', { dir, raw: true, outFile: join(dir, 'r.db') }));
    expect(error.message).toMatch(/not a complete \.tar\.gz .* nothing was kept/);
    expect(readdirSync(dir)).toEqual([]);
  });

  test('a raw copy archive with anything but the single db file is refused', async () => {
    const archive = await tarGz([
      { name: 'db', data: DATABASE },
      { name: 'other', data: Buffer.from('x') },
    ]);
    const client = fakeClient({ copy: () => chunks(archive) });
    const error = await failure(acquireSnapshot(client, '127.0.0.3', { dir, raw: true, outFile: join(dir, 'r.db') }));
    expect(error.message).toMatch(/holds "other"/);
    expect(readdirSync(dir)).toEqual([]);
  });

  test('an API stream that is not a snapshot at all (gzip bytes with a trailer-sized length) is refused', async () => {
    const bogus = Buffer.concat([Buffer.from([0x1f, 0x8b]), Buffer.alloc(512 * 3 + 30, 1)]);
    const client = fakeClient({ snapshot: () => chunks(bogus) });
    const error = await failure(acquireSnapshot(client, '127.0.0.2', { dir, raw: false, outFile: join(dir, 's') }));
    expect(error.message).toMatch(/nothing was kept/);
    expect(readdirSync(dir)).toEqual([]);
  });

  test('-o naming an existing folder puts the default name in it', async () => {
    const got = await acquireSnapshot(fakeClient({ snapshot: () => chunks(SNAPSHOT) }), '127.0.0.2', {
      dir: '/nonexistent-cwd',
      outFile: dir,
      raw: false,
      now: () => new Date('2026-11-23T23:30:00Z'),
    });
    expect(got.file).toBe(join(dir, 'etcd-127.0.0.2-20261123T233000Z.snapshot'));
  });

  test('default names carry the node and UTC time, and stay file-system safe', () => {
    const when = new Date('2026-11-23T23:30:00Z');
    expect(defaultSnapshotName('127.0.0.2', false, when)).toBe('etcd-127.0.0.2-20261123T233000Z.snapshot');
    expect(defaultSnapshotName('127.0.0.2', true, when)).toBe('etcd-127.0.0.2-20261123T233000Z.db');
    expect(defaultSnapshotName('fd00::1', false, when)).toBe('etcd-fd00__1-20261123T233000Z.snapshot');
  });
});

describe('ArrivalDigest', () => {
  /** Feeds `bytes` in pieces of the given sizes, cycling through them. */
  function digestInPieces(bytes: Buffer, sizes: number[]) {
    const digest = new ArrivalDigest();
    for (let at = 0, i = 0; at < bytes.length; i++) {
      const size = sizes[i % sizes.length] as number;
      digest.update(bytes.subarray(at, at + size));
      at += size;
    }
    return digest.digest();
  }

  test.each([
    ['an API snapshot (trailer verified)', SNAPSHOT],
    ['a raw database (no trailer)', DATABASE],
    [
      'a trailer that does not match',
      Buffer.concat([SNAPSHOT.subarray(0, -1), Buffer.from([(SNAPSHOT.at(-1) as number) ^ 1])]),
    ],
    ['a trailer and nothing else (32 bytes)', createHash('sha256').update(Buffer.alloc(0)).digest()],
    ['fewer bytes than a trailer', Buffer.from('short')],
    ['nothing', Buffer.alloc(0)],
  ])('computes what the digest of the written file says, for %s, however the bytes arrive', async (_what, bytes) => {
    const file = join(dir, 'f');
    writeFileSync(file, bytes);
    const expected = await digestPath(file);
    for (const sizes of [[bytes.length || 1], [1], [31, 1, 32, 33], [1024], [7, 4096, 13], [40, 5]]) {
      expect(digestInPieces(bytes, sizes)).toEqual(expected);
    }
  });
});

describe('progress on stderr', () => {
  test('drawn in place on a terminal, with bytes and rate; nothing at all when not a terminal', () => {
    let clock = 0;
    const written: string[] = [];
    const tty = { isTTY: true, write: (s: string) => written.push(s) };
    const line = new ProgressLine(tty, 'snapshot from 127.0.0.2', () => clock);
    clock = 1000;
    line.update(3 * 1024 * 1024);
    clock = 1100;
    line.update(4 * 1024 * 1024);
    line.done();
    expect(written[0]).toBe('\r\x1b[2Ksnapshot from 127.0.0.2: 3.0 MiB, 3.0 MiB/s');
    expect(written).toHaveLength(2);
    expect(written[1]).toBe('\r\x1b[2K');
    const piped: string[] = [];
    const quiet = new ProgressLine({ isTTY: false, write: (s: string) => piped.push(s) }, 'x', () => clock);
    quiet.update(1);
    quiet.done();
    expect(piped).toEqual([]);
  });
});
