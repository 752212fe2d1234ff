/** Helpers for tests that check our databases with Debian's real etcd 3.4 tools (skipped when they are absent). */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { promisify } from 'node:util';

const run = promisify(execFile);

function onPath(binary: string): boolean {
  return (process.env.PATH ?? '').split(':').some((dir) => dir !== '' && existsSync(`${dir}/${binary}`));
}

export const haveEtcdctl = onPath('etcdctl');
export const haveEtcd = onPath('etcd');
export const etcdToolsMissing =
  'etcdctl/etcd are not installed (Debian packages etcd-client and etcd-server); skipping the real-etcd checks.';

export interface EtcdctlStatus {
  hash: number;
  revision: number;
  totalKey: number;
  totalSize: number;
}

const env = { ...process.env, ETCDCTL_API: '3' };

export async function etcdctlStatus(file: string): Promise<EtcdctlStatus> {
  const { stdout } = await run('etcdctl', ['snapshot', 'status', '-w', 'json', file], { env });
  return JSON.parse(stdout) as EtcdctlStatus;
}

export async function etcdctlRestore(
  file: string,
  dataDir: string,
  peerUrl: string,
  opts: { skipHashCheck?: boolean } = {},
): Promise<{ ok: boolean; output: string }> {
  const args = ['snapshot', 'restore', file, '--data-dir', dataDir, '--name', 'sim'];
  args.push('--initial-cluster', `sim=${peerUrl}`, '--initial-advertise-peer-urls', peerUrl);
  if (opts.skipHashCheck) args.push('--skip-hash-check');
  try {
    const { stdout, stderr } = await run('etcdctl', args, { env });
    return { ok: true, output: stdout + stderr };
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string };
    return { ok: false, output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

/** A free TCP port on 127.0.0.1 (listen on 0, read it back, close). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export interface RunningEtcd {
  clientUrl: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

/** Starts a real etcd on a restored data dir, on loopback, and waits until it answers. Always stop() it. */
export async function startEtcd(dataDir: string, peerUrl: string, clientPort: number): Promise<RunningEtcd> {
  const clientUrl = `http://127.0.0.1:${clientPort}`;
  const child = spawn(
    'etcd',
    [
      '--name',
      'sim',
      '--data-dir',
      dataDir,
      '--listen-client-urls',
      clientUrl,
      '--advertise-client-urls',
      clientUrl,
      '--listen-peer-urls',
      peerUrl,
      '--initial-advertise-peer-urls',
      peerUrl,
      '--initial-cluster',
      `sim=${peerUrl}`,
    ],
    { stdio: 'ignore' },
  );
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    });
  };
  for (let attempt = 0; attempt < 100; attempt++) {
    try {
      await run('etcdctl', ['--endpoints', clientUrl, '--command-timeout=1s', 'endpoint', 'health'], { env });
      return { clientUrl, process: child, stop };
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  await stop();
  throw new Error('etcd did not become healthy within 10 s');
}

export async function etcdctlGetPrefix(clientUrl: string, prefix: string): Promise<Map<string, string>> {
  const { stdout } = await run('etcdctl', ['--endpoints', clientUrl, 'get', '--prefix', prefix, '-w', 'json'], { env });
  const parsed = JSON.parse(stdout) as { kvs?: { key: string; value: string }[] };
  const result = new Map<string, string>();
  for (const kv of parsed.kvs ?? []) {
    result.set(Buffer.from(kv.key, 'base64').toString(), Buffer.from(kv.value, 'base64').toString());
  }
  return result;
}
