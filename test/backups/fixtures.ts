/**
 * talos-backup files made the way talos-backup makes them (siderolabs/talos-backup@0b3984d: zstd-compress the .snap,
 * then age-encrypt to one X25519 recipient), with Debian's `zstd` and `age` command-line tools (apt-get install age
 * zstd). Tests that need them say they were skipped when the tools are absent.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { findPackageRoot } from '../../src/paths.js';
import { buildEtcdSnapshot } from '../../src/etcd/writer.js';
import type { EtcdDatabaseContent } from '../../src/etcd/writer.js';

export const cli = join(findPackageRoot(), 'dist/src/cli.js');

function has(tool: string): boolean {
  return spawnSync(tool, ['--version'], { encoding: 'utf8' }).status === 0;
}

/** Why the age/zstd tests cannot run here, or null when they can. */
export const toolsMissing: string | null = (() => {
  const missing = ['age', 'age-keygen', 'zstd'].filter((tool) => !has(tool));
  return missing.length === 0 ? null : `${missing.join(', ')} not installed (apt-get install age zstd)`;
})();

export const content: EtcdDatabaseContent = {
  history: [
    { kind: 'put', revision: 2, key: '/registry/a', value: Buffer.from('one'), createRevision: 2, version: 1 },
    { kind: 'put', revision: 3, key: '/registry/b', value: Buffer.from('two'), createRevision: 3, version: 1 },
    { kind: 'delete', revision: 4, key: '/registry/a' },
  ],
  consistentIndex: 9,
  members: [{ id: '8e9e05c52164694d', name: 'cp-1', peerURLs: ['https://127.0.0.2:2380'], clientURLs: [] }],
};

export const SNAPSHOT = buildEtcdSnapshot(content);

function run(command: string, args: string[]): string {
  const r = spawnSync(command, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${command} ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

export interface AgeKey {
  file: string;
  recipient: string;
}

/** age-keygen's identity file and its public key. */
export function makeKey(dir: string, name: string): AgeKey {
  const file = join(dir, name);
  run('age-keygen', ['-o', file]);
  return { file, recipient: run('age-keygen', ['-y', file]).trim() };
}

/** `<dir>/<base>` with `bytes`, then `.zst` (zstd) and/or `.age` (age -r) on top, as talos-backup layers them. */
export function makeBackup(dir: string, base: string, bytes: Buffer, layers: { zstd?: boolean; age?: AgeKey }): string {
  let file = join(dir, base);
  writeFileSync(file, bytes);
  if (layers.zstd) {
    run('zstd', ['-q', '-f', file, '-o', `${file}.zst`]);
    file = `${file}.zst`;
  }
  if (layers.age) {
    run('age', ['-r', layers.age.recipient, '-o', `${file}.age`, file]);
    file = `${file}.age`;
  }
  return file;
}

export function readBytes(file: string): Buffer {
  return readFileSync(file);
}
