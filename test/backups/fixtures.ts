/**
 * talos-backup files made the way talos-backup makes them (siderolabs/talos-backup@0b3984d: zstd-compress the .snap,
 * then age-encrypt to one X25519 recipient), with Debian's `zstd` and `age` command-line tools (apt-get install age
 * zstd). Tests that need them say they were skipped when the tools are absent.
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
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

/** The S3-compatible server scripts/build-s3.sh builds (gofakes3's own command), or $TALOS_DR_S3_SERVER. */
export const S3_SERVER =
  process.env.TALOS_DR_S3_SERVER ??
  join(
    process.env.TALOS_DR_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'talos-dr'),
    's3-v1.2.0/bin/gofakes3',
  );

/** Why the S3 tests cannot run here (no server, or no age/zstd to make the backups), or null when they can. */
export const s3Missing: string | null = !existsSync(S3_SERVER)
  ? `no S3 server at ${S3_SERVER} (run scripts/build-s3.sh)`
  : toolsMissing;

/** The credentials the server is given and the tests' clients sign with. */
export const S3_CREDENTIALS = { accessKeyId: 'talosdr', secretAccessKey: 'talosdr-secret' };

/**
 * The AWS settings the SDK reads, for the fake server: its credentials and region from the environment, no shared
 * files (they are looked for in `dir`, where there are none) and no instance-metadata lookup (it would leave loopback).
 */
export function s3TestEnv(dir: string): Record<string, string> {
  return {
    AWS_ACCESS_KEY_ID: S3_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: S3_CREDENTIALS.secretAccessKey,
    AWS_REGION: 'us-east-1',
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_SHARED_CREDENTIALS_FILE: join(dir, 'no-credentials'),
    AWS_CONFIG_FILE: join(dir, 'no-config'),
  };
}

/** Go's time.RFC3339 of a moment, in UTC, as talos-backup names its files. */
export const rfc3339 = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

export interface FakeS3 {
  /** http://127.0.0.1:PORT */
  endpoint: string;
  /** PutObject of `body` at `key` in the bucket, as talos-backup uploads */
  put(key: string, body: Uint8Array): Promise<void>;
  stop(): void;
}

/**
 * gofakes3 on 127.0.0.1 (a port of its choosing, memory backend) with one bucket, `backups` unless named; resolves
 * once it says which port it listens on.
 */
export async function startFakeS3(bucket = 'backups'): Promise<FakeS3> {
  // The SDK's once-per-process notice that its 2027 releases need Node 22 (the CLI turns it off the same way).
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
  const server: ChildProcess = spawn(
    S3_SERVER,
    ['-backend', 'memory', '-host', '127.0.0.1:0', '-initialbucket', bucket, '-quiet'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const port = await new Promise<number>((resolve, reject) => {
    let seen = '';
    server.stderr?.on('data', (chunk: Buffer) => {
      seen += chunk.toString();
      const match = /using port: (\d+)/.exec(seen);
      if (match) resolve(Number(match[1]));
    });
    server.on('exit', (code) => reject(new Error(`gofakes3 exited (${code}): ${seen}`)));
  });
  const endpoint = `http://127.0.0.1:${port}`;
  const client = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: S3_CREDENTIALS });
  return {
    endpoint,
    put: async (key, body) => {
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
    },
    stop: () => {
      client.destroy();
      server.kill();
    },
  };
}
