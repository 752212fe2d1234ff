/**
 * A real etcd (Debian's 3.4.23) for tests: started on loopback with random free ports, fed through its JSON gateway,
 * snapshotted with the real etcdctl. Only 127.0.0.1 is ever used.
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { once } from 'node:events';

export const ETCD_TOOLS_PRESENT =
  spawnSync('etcd', ['--version'], { stdio: 'ignore' }).status === 0 &&
  spawnSync('etcdctl', ['version'], { stdio: 'ignore', env: { ...process.env, ETCDCTL_API: '3' } }).status === 0;

if (!ETCD_TOOLS_PRESENT) {
  console.warn(
    'etcd/etcdctl are not installed: the cross-checks against the real etcdctl are SKIPPED (install etcd-server and etcd-client to run them; CI does).',
  );
}

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  server.close();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

export class EtcdProcess {
  private child: ChildProcess | null = null;
  clientUrl = '';

  constructor(readonly dataDir: string) {}

  async start(): Promise<void> {
    const clientPort = await freePort();
    const peerPort = await freePort();
    this.clientUrl = `http://127.0.0.1:${clientPort}`;
    const peerUrl = `http://127.0.0.1:${peerPort}`;
    this.child = spawn(
      'etcd',
      [
        '--name=default',
        `--data-dir=${this.dataDir}`,
        `--listen-client-urls=${this.clientUrl}`,
        `--advertise-client-urls=${this.clientUrl}`,
        `--listen-peer-urls=${peerUrl}`,
        `--initial-advertise-peer-urls=${peerUrl}`,
        `--initial-cluster=default=${peerUrl}`,
        '--log-level=error',
      ],
      { stdio: 'ignore' },
    );
    await this.waitHealthy();
  }

  /**
   * Healthy, and past its own start-up write: etcd records the cluster version in its database a moment after it
   * starts. Until then a snapshot's content could change between two saves with nothing written by the test.
   */
  private async waitHealthy(): Promise<void> {
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      try {
        const health = await fetch(`${this.clientUrl}/health`);
        const version = (await (await fetch(`${this.clientUrl}/version`)).json()) as { etcdcluster?: string };
        if (health.ok && version.etcdcluster && version.etcdcluster !== 'not_decided') return;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error('etcd did not become healthy');
  }

  private async call(path: string, body: unknown): Promise<Record<string, unknown>> {
    const response = await fetch(`${this.clientUrl}${path}`, { method: 'POST', body: JSON.stringify(body) });
    if (!response.ok) throw new Error(`${path}: ${response.status} ${await response.text()}`);
    return (await response.json()) as Record<string, unknown>;
  }

  async put(key: string, value: string | Buffer): Promise<void> {
    await this.call('/v3/kv/put', { key: b64(key), value: b64(value) });
  }

  async del(key: string): Promise<void> {
    await this.call('/v3/kv/deleterange', { key: b64(key) });
  }

  async revision(): Promise<number> {
    const answer = await this.call('/v3/kv/range', { key: b64('\0'), count_only: true });
    return Number((answer.header as { revision: string }).revision);
  }

  async compact(revision: number): Promise<void> {
    await this.call('/v3/kv/compaction', { revision, physical: true });
  }

  etcdctl(...args: string[]): string {
    return runEtcdctl('--endpoints', this.clientUrl, ...args).stdout;
  }

  async stop(signal: NodeJS.Signals): Promise<void> {
    const child = this.child;
    this.child = null;
    if (!child || child.exitCode !== null) return;
    const exited = once(child, 'exit');
    child.kill(signal);
    await exited;
  }
}

function b64(s: string | Buffer): string {
  return Buffer.from(s).toString('base64');
}

export function runEtcdctl(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync('etcdctl', args, { env: { ...process.env, ETCDCTL_API: '3' }, encoding: 'utf8' });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

export interface EtcdctlStatus {
  hash: number;
  revision: number;
  totalKey: number;
  totalSize: number;
}

/** `etcdctl snapshot status -w json`, or null when it fails (error exit or crash). */
export function etcdctlStatus(file: string): EtcdctlStatus | null {
  const result = runEtcdctl('snapshot', 'status', file, '-w', 'json');
  if (result.status !== 0) return null;
  return JSON.parse(result.stdout) as EtcdctlStatus;
}

/** Whether `etcdctl snapshot restore` accepts the file (into a fresh data dir that is removed again). */
export function etcdctlRestoreAccepts(file: string, dataDir: string, skipHashCheck: boolean): boolean {
  const args = ['snapshot', 'restore', file, '--data-dir', dataDir];
  if (skipHashCheck) args.push('--skip-hash-check');
  const result = runEtcdctl(...args);
  spawnSync('rm', ['-rf', dataDir]);
  return result.status === 0;
}
