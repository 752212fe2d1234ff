/**
 * Upstream's own binaries — talosctl, etcd, etcdutl — built from their Go modules by scripts/build-peers.sh into a
 * cache outside the repository. A test that needs one asks here; when it is absent the test is skipped and its name
 * says why (README's test command must pass on a machine with Node only).
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export const PEERS_DIR = process.env.TALOS_DR_PEERS ?? join(homedir(), '.cache', 'talos-dr-peers');
const BIN = join(PEERS_DIR, 'bin');

export type Peer = 'talosctl' | 'etcd' | 'etcdutl' | 'etcd-v3.6' | 'etcdutl-v3.6';

const FILES: Record<Peer, string> = {
  talosctl: 'talosctl',
  etcd: 'etcd',
  etcdutl: 'etcdutl',
  'etcd-v3.6': 'etcd-v3.6.16',
  'etcdutl-v3.6': 'etcdutl-v3.6.16',
};

/** The binary's path, or null when it was not built. */
export function peer(name: Peer): string | null {
  const path = join(BIN, FILES[name]);
  return existsSync(path) ? path : null;
}

/** A suffix for a describe() title: empty when every peer is there, else why the suite is skipped. */
export function skipReason(...names: Peer[]): string {
  const missing = names.filter((n) => !peer(n));
  if (missing.length === 0) return '';
  return ` (skipped: ${missing.join(', ')} not built; run scripts/build-peers.sh, which needs Go)`;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a peer binary; never rejects on a non-zero exit (the exit code is part of what a test asserts). */
export function runPeer(
  name: Peer,
  args: string[],
  opts: { env?: Record<string, string>; timeoutMs?: number; cwd?: string } = {},
): Promise<RunResult> {
  const bin = peer(name);
  if (!bin) throw new Error(`${name} is not built`);
  return new Promise((resolve) => {
    execFile(
      bin,
      args,
      {
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', ...opts.env },
        timeout: opts.timeoutMs ?? 60_000,
        maxBuffer: 64 << 20,
        cwd: opts.cwd,
      },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
  });
}

export interface StoppedRun extends RunResult {
  /** What the binary had printed on stdout when it was asked to stop. */
  stdoutBeforeStop: string;
}

/**
 * Runs a peer that never ends by itself (a watch, a follow) and stops it as a person at a terminal would: SIGINT after
 * `stopAfterMs`, with its output still read, so what it writes while stopping is kept (execFile's timeout closes the
 * pipes first, and a table talosctl flushes on the way out then dies of SIGPIPE, printing nothing).
 */
export function runPeerUntilStopped(
  name: Peer,
  args: string[],
  opts: { stopAfterMs: number; cwd?: string },
): Promise<StoppedRun> {
  const bin = peer(name);
  if (!bin) throw new Error(`${name} is not built`);
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root' },
      cwd: opts.cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let stdoutBeforeStop = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const stop = setTimeout(() => {
      stdoutBeforeStop = stdout;
      child.kill('SIGINT');
    }, opts.stopAfterMs);
    // a binary that ignores the request is ended for good a while later (never the case for talosctl)
    const hard = setTimeout(() => child.kill('SIGKILL'), opts.stopAfterMs + 30_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(stop);
      clearTimeout(hard);
      resolve({ code: code ?? (signal ? -1 : 0), stdout, stderr, stdoutBeforeStop });
    });
  });
}
