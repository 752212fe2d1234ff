/**
 * A full disk while writing FILE.sha256 (issue 18, item 6) left an empty .sha256 that blocked the re-run, and the
 * sentence blamed the .part. Here the disk is a real one that fills up: a tmpfs just large enough for the snapshot,
 * mounted in a private mount namespace (`unshare -rm`, no privilege needed), so the snapshot lands and its .sha256 meets
 * ENOSPC. Nothing half-written may survive, and the sentence names the file and the disk.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findPackageRoot } from '../../src/paths.js';
import { buildEtcdSnapshot } from '../../src/etcd/writer.js';
import { makePki, startFakeTalos, writeTalosconfig, type FakeTalos } from '../talos/fake-talos.js';

const cli = join(findPackageRoot(), 'dist/src/cli.js');
const SNAPSHOT = buildEtcdSnapshot({
  history: [
    { kind: 'put', revision: 2, key: '/registry/a', value: Buffer.alloc(3000, 1), createRevision: 2, version: 1 },
  ],
  consistentIndex: 9,
  members: [{ id: '8e9e05c52164694d', name: 'cp-1', peerURLs: ['https://127.0.0.2:2380'], clientURLs: [] }],
});

const canMount =
  spawnSync('unshare', ['-rm', 'sh', '-c', 'mount -t tmpfs -o size=4k tmpfs /mnt'], { encoding: 'utf8' }).status === 0;

describe.skipIf(!canMount)('a disk that fills up while the snapshot is saved', () => {
  let talos: FakeTalos;
  let talosconfig = '';
  let dir = '';

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'talos-dr-full-'));
    const pki = await makePki();
    talos = await startFakeTalos(pki, {
      streams: {
        EtcdSnapshot: () =>
          (async function* () {
            for (let at = 0; at < SNAPSHOT.length; at += 1024) yield SNAPSHOT.subarray(at, at + 1024);
          })(),
      },
    });
    talosconfig = writeTalosconfig(pki, [talos.address]);
  });
  afterAll(async () => {
    await talos?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the .sha256 meets ENOSPC: nothing is left, and the sentence names the .sha256 and the disk', async () => {
    const mnt = join(dir, 'disk');
    mkdirSync(mnt);
    // exactly the snapshot's pages: the .part (linked to its final name, no copy) fits, the .sha256's page does not
    const size = Math.ceil(SNAPSHOT.length / 4096) * 4096;
    const script = [
      `mount -t tmpfs -o size=${size} tmpfs "${mnt}" || exit 99`,
      `"${process.execPath}" "${cli}" snapshot --talosconfig "${talosconfig}" -n 127.0.0.1 -o "${mnt}/snap.db"`,
      'echo "exit=$?"',
      `ls -A "${mnt}"`,
    ].join('\n');
    const r = await new Promise<{ stdout: string; stderr: string }>((resolve) => {
      const child = spawn('unshare', ['-rm', 'sh', '-c', script]);
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('close', () => resolve({ stdout, stderr }));
    });
    expect(r.stdout).toContain('exit=1\n');
    // nothing survives on the disk: no snapshot without its .sha256, no empty .sha256, no .part
    expect(r.stdout.slice(r.stdout.indexOf('exit=1\n') + 7).trim()).toBe('');
    const sentence = r.stderr.trim();
    expect(sentence.split('\n')).toHaveLength(1);
    expect(sentence).toContain(`${mnt}/snap.db.sha256`);
    expect(sentence).toContain('the disk is full');
    expect(sentence).toContain(`the disk mounted at ${mnt} (tmpfs)`);
    expect(sentence).not.toContain('.part');
  }, 60_000);
});
