/**
 * `talos-dr inspect` and `talos-dr snapshot` as a user runs them: the built CLI (dist/, `npm run build` first), real
 * files, and for `snapshot` a Talos node on loopback speaking the real wire (mTLS, in-band errors).
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import { findPackageRoot } from '../../src/paths.js';
import {
  buildEtcdDatabase,
  buildEtcdSnapshot,
  etcdBuckets,
  withSha256Trailer,
  writeBbolt,
} from '../../src/etcd/writer.js';
import type { EtcdDatabaseContent } from '../../src/etcd/writer.js';
import { NodeFailure, makePki, startFakeTalos, writeTalosconfig } from '../talos/fake-talos.js';
import type { FakeTalos } from '../talos/fake-talos.js';
import type { inspectSnapshot as inspectSnapshotType } from '../../src/etcd/inspect.js';

const cli = join(findPackageRoot(), 'dist/src/cli.js');

interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

const content: EtcdDatabaseContent = {
  history: [
    { kind: 'put', revision: 2, key: '/registry/a', value: Buffer.from('one'), createRevision: 2, version: 1 },
    { kind: 'put', revision: 3, key: '/registry/b', value: Buffer.from('two'), createRevision: 3, version: 1 },
    { kind: 'delete', revision: 4, key: '/registry/a' },
  ],
  consistentIndex: 9,
  members: [{ id: '8e9e05c52164694d', name: 'cp-1', peerURLs: ['https://127.0.0.2:2380'], clientURLs: [] }],
};
const SNAPSHOT = buildEtcdSnapshot(content);
const DATABASE = buildEtcdDatabase(content);

let dir = '';
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'talos-dr-cmd-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function inspectCli(...args: string[]) {
  return spawnSync(process.execPath, [cli, 'inspect', ...args], { encoding: 'utf8' });
}

describe('talos-dr inspect', () => {
  test('a good API snapshot: talosctl-style line, live keys, verified, exit 0', () => {
    const file = join(dir, 'good.snapshot');
    writeFileSync(file, SNAPSHOT);
    const r = inspectCli(file);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^snapshot info: hash [0-9a-f]{8}, revision 4, total keys \d+, total size \d+$/m);
    expect(r.stdout).toMatch(/^live keys: 1 /m);
    expect(r.stdout).toMatch(/^integrity: verified/m);
    expect(r.stdout).toMatch(/^verdict: usable/m);
    expect(r.stderr).toBe('');
  });

  test('--json prints the report contract', () => {
    const file = join(dir, 'good.snapshot');
    const report = JSON.parse(inspectCli(file, '--json').stdout) as Record<string, unknown>;
    expect(Object.keys(report).sort()).toEqual(
      [
        'file',
        'size',
        'kind',
        'structure',
        'hash',
        'revision',
        'totalKeys',
        'liveKeys',
        'storageVersion',
        'totalSize',
        'integrity',
        'sha256',
        'needsSkipHashCheck',
        'usable',
        'problems',
      ].sort(),
    );
    expect(report).toMatchObject({ kind: 'bbolt', revision: 4, liveKeys: 1, integrity: 'verified', usable: true });
    expect(report.storageVersion).toBeNull();
  });

  /** What etcd 3.6+ adds to the meta bucket (etcd-io/etcd: server/storage/schema/version.go@v3.6.14:59-61). */
  const withStorageVersion = (value: string): Buffer => {
    const buckets = etcdBuckets(content);
    buckets.get('meta')?.push([Buffer.from('storageVersion'), Buffer.from(value)]);
    return withSha256Trailer(writeBbolt(buckets, { txid: 5 }));
  };

  test('a snapshot written by etcd 3.6: the storage version in text and JSON', () => {
    const file = join(dir, 'etcd36.snapshot');
    writeFileSync(file, withStorageVersion('3.6.0'));
    const text = inspectCli(file);
    expect(text.status).toBe(0);
    expect(text.stdout).toMatch(/^storage version: 3\.6\.0 \(written by etcd 3\.6 or newer\)$/m);
    const report = JSON.parse(inspectCli(file, '--json').stdout) as Record<string, unknown>;
    expect(report).toMatchObject({ storageVersion: '3.6.0', usable: true });
  });

  test('etcd 3.5 and older record no storage version; a value that is not a version reads as none, as in etcdutl', () => {
    const old = join(dir, 'etcd35.snapshot');
    writeFileSync(old, SNAPSHOT);
    expect(inspectCli(old).stdout).toMatch(/^storage version: none \(written by etcd 3\.5 or older/m);
    const odd = join(dir, 'odd-version.snapshot');
    writeFileSync(odd, withStorageVersion('3.7'));
    const report = JSON.parse(inspectCli(odd, '--json').stdout) as Record<string, unknown>;
    expect(report).toMatchObject({ storageVersion: null, usable: true });
  });

  /** Upstream's etcdutl, built from its Go module by scripts/build-peers.sh (absent: skipped). */
  const etcdutl = ['v3.6.16', 'v3.7.3']
    .map((v) => join(process.env.TALOS_DR_PEERS ?? join(homedir(), '.cache/talos-dr-peers'), 'bin', `etcdutl-${v}`))
    .filter((file) => existsSync(file));

  test.skipIf(etcdutl.length === 0)(
    `the storage version is what etcdutl snapshot status prints as version${etcdutl.length ? '' : ' (skipped: no etcdutl from scripts/build-peers.sh)'}`,
    () => {
      for (const value of ['3.6.0', '3.7.0', '3.6.0-alpha.1', '3.7', 'v3.6.0']) {
        const file = join(dir, `storage-${value}.snapshot`);
        writeFileSync(file, withStorageVersion(value));
        const ours = (JSON.parse(inspectCli(file, '--json').stdout) as { storageVersion: string | null })
          .storageVersion;
        for (const tool of etcdutl) {
          const status = spawnSync(tool, ['snapshot', 'status', file, '-w', 'json'], { encoding: 'utf8' });
          const theirs = (JSON.parse(status.stdout.trim().split('\n').pop() as string) as { version: string }).version;
          expect({ value, tool, version: ours ?? '' }).toEqual({ value, tool, version: theirs });
        }
      }
    },
  );

  test('a raw copy: usable, but warns that bootstrap will need --recover-skip-hash-check', () => {
    const file = join(dir, 'raw.db');
    writeFileSync(file, DATABASE);
    const r = inspectCli(file);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/integrity: absent/);
    expect(r.stdout).toMatch(/--recover-skip-hash-check/);
  });

  test('a compressed snapshot: says in one sentence what it is and what to do, exit 1', () => {
    const file = join(dir, 'snap.gz');
    writeFileSync(file, gzipSync(SNAPSHOT));
    const r = inspectCli(file);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim()).toBe('The file is gzip-compressed: decompress it first (gunzip) and inspect the result.');
  });

  test.each([
    ['a missing file', 'nope.snapshot', /^There is no file at .*nope\.snapshot; check the path\.$/],
    ['a directory', '.', /is a directory, not a snapshot file/],
  ])('%s: one sentence on stderr, exit 1', (_what, name, sentence) => {
    const r = inspectCli(join(dir, name));
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr.trim()).toMatch(sentence);
    expect(r.stdout).toBe('');
  });

  test('no file given: usage, exit 2', () => {
    const r = inspectCli();
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/talos-dr inspect FILE \[--identity KEYFILE\] \[--json\]/);
  });

  test('the file is never modified', () => {
    const file = join(dir, 'untouched.snapshot');
    writeFileSync(file, SNAPSHOT);
    const before = statSync(file);
    inspectCli(file);
    const after = statSync(file);
    expect(readFileSync(file).equals(SNAPSHOT)).toBe(true);
    expect(after.mtimeMs).toBe(before.mtimeMs);
  });
});

describe('the sha256 pass on its own thread (built code: the worker is compiled JavaScript)', () => {
  type Inspect = { inspectSnapshot: typeof inspectSnapshotType };
  const load = async (): Promise<Inspect> =>
    (await import(pathToFileURL(join(findPackageRoot(), 'dist/src/etcd/inspect.js')).href)) as Inspect;

  // The walk reads the file itself (an idle machine) or takes its leaves from the hashing thread's ring (a busy one).
  test.each([false, true])(
    'gives the same report as hashing in the main thread (leaves from the ring: %s)',
    async (readOnce) => {
      const { inspectSnapshot } = await load();
      for (const bytes of [SNAPSHOT, DATABASE, gzipSync(SNAPSHOT)]) {
        const file = join(dir, 'worker-check');
        writeFileSync(file, bytes);
        const inWorker = await inspectSnapshot(file, { hashInWorker: true, readOnce });
        const inThread = await inspectSnapshot(file, { hashInWorker: false });
        expect(inWorker).toEqual(inThread);
      }
      const bad = Buffer.from(SNAPSHOT);
      bad[bad.length - 1] = (bad[bad.length - 1] as number) ^ 1;
      writeFileSync(join(dir, 'worker-bad'), bad);
      expect((await inspectSnapshot(join(dir, 'worker-bad'), { hashInWorker: true, readOnce })).integrity).toBe(
        'mismatch',
      );
    },
  );

  test.each([false, true])(
    'an aborted inspection rejects and leaves the file as it was (leaves from the ring: %s)',
    async (readOnce) => {
      const { inspectSnapshot } = await load();
      const file = join(dir, 'abort.snapshot');
      writeFileSync(file, SNAPSHOT);
      const controller = new AbortController();
      controller.abort();
      await expect(
        inspectSnapshot(file, { hashInWorker: true, readOnce, signal: controller.signal }),
      ).rejects.toThrow();
      expect(readFileSync(file).equals(SNAPSHOT)).toBe(true);
    },
  );
});

describe('talos-dr snapshot', () => {
  let talos: FakeTalos;
  let talosconfig = '';

  beforeAll(async () => {
    const pki = await makePki();
    talos = await startFakeTalos(pki, {
      streams: {
        EtcdSnapshot: (node) =>
          (async function* () {
            if (node === 'worker') throw new NodeFailure(12, 'etcd snapshot is only available on control plane nodes');
            const pause = node === '127.0.0.9' ? 50 : 0;
            for (let at = 0; at < SNAPSHOT.length; at += 1024) {
              yield SNAPSHOT.subarray(at, at + 1024);
              if (pause) await new Promise((r) => setTimeout(r, pause));
            }
          })(),
      },
    });
    talosconfig = writeTalosconfig(pki, [talos.address]);
  });
  afterAll(async () => talos?.stop());

  /** Runs the CLI without blocking this process (the fake node answers from here). */
  function snapshotCli(cwd: string, ...args: string[]): Promise<CliResult> {
    return runCli(cwd, args, () => undefined);
  }

  function runCli(cwd: string, args: string[], whileRunning: (child: ChildProcess) => void): Promise<CliResult> {
    return new Promise((resolve) => {
      const child = spawn(process.execPath, [cli, 'snapshot', '--talosconfig', talosconfig, ...args], { cwd });
      whileRunning(child);
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('close', (status) => resolve({ status, stdout, stderr }));
    });
  }

  test('takes, verifies and writes a snapshot named after the node and time, with its .sha256', async () => {
    const cwd = mkdtempSync(join(dir, 'snap-'));
    const r = await snapshotCli(cwd, '-n', '127.0.0.1');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const files = readdirSync(cwd).sort();
    expect(files).toHaveLength(2);
    expect(files[0]).toMatch(/^etcd-127\.0\.0\.1-\d{8}T\d{6}Z\.snapshot$/);
    expect(files[1]).toBe(`${files[0]}.sha256`);
    expect(readFileSync(join(cwd, files[0]!)).equals(SNAPSHOT)).toBe(true);
    expect(r.stdout).toMatch(/^etcd snapshot saved to ".*" \(\d+ bytes/m);
    expect(r.stdout).toMatch(/^snapshot info: hash [0-9a-f]{8}, revision 4, total keys/m);
  });

  test('--json -o FILE prints the AcquiredSnapshot', async () => {
    const cwd = mkdtempSync(join(dir, 'snap-'));
    const r = await snapshotCli(cwd, '-n', '127.0.0.1', '-o', 'mine.snapshot', '--json');
    expect(r.status).toBe(0);
    const got = JSON.parse(r.stdout) as { file: string; method: string; report: { usable: boolean } };
    expect(got).toMatchObject({ file: join(cwd, 'mine.snapshot'), method: 'api', report: { usable: true } });
  });

  test('an in-band error from the node: one sentence, exit 1, no file', async () => {
    const cwd = mkdtempSync(join(dir, 'snap-'));
    const r = await snapshotCli(cwd, '-n', 'worker');
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/worker is not a control-plane node.*nothing was kept/);
    expect(readdirSync(cwd)).toEqual([]);
  });

  test('Ctrl-C in the middle of the transfer: exit 3, one sentence, no file left', async () => {
    const cwd = mkdtempSync(join(dir, 'snap-'));
    const r = await runCli(cwd, ['-n', '127.0.0.9', '-o', 'cut.snapshot'], (child) => {
      // Interrupt once the transfer has visibly started (the .part exists), not after a fixed time.
      const poll = setInterval(() => {
        if (existsSync(join(cwd, 'cut.snapshot.part'))) {
          clearInterval(poll);
          setTimeout(() => child.kill('SIGINT'), 100);
        }
      }, 20);
      child.on('close', () => clearInterval(poll));
    });
    expect(r.status).toBe(3);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/Stopped by you: the partial snapshot was removed and nothing was kept/);
    expect(readdirSync(cwd)).toEqual([]);
  });

  test.each([[[]], [['-n', '127.0.0.1,127.0.0.2']]])('needs exactly one node (%j): usage, exit 2', async (nodes) => {
    const cwd = mkdtempSync(join(dir, 'snap-'));
    const r = await snapshotCli(cwd, ...nodes);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/exactly one node/);
    expect(existsSync(join(cwd, 'x'))).toBe(false);
  });
});
