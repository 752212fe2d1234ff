// Shared helpers for the benchmarks: run a command under GNU time, alternate a measured command with its reference
// on the same machine, report medians and ratios. Absolute times on these shared machines are noise; ratios of
// interleaved runs are what we compare (PRODUCT.md §5).
import { spawnSync } from 'node:child_process';
import { setTimeout, clearTimeout } from 'node:timers';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const cli = join(root, 'dist/src/cli.js');

/** Runs argv once under /usr/bin/time; returns wall seconds and peak RSS in MB. Throws when the command fails. */
export function timed(argv, { env, cwd, input, allowExit = [0] } = {}) {
  const out = mkdtempSync(join(tmpdir(), 'bench-time-'));
  const timeFile = join(out, 'time');
  try {
    const r = spawnSync('/usr/bin/time', ['-f', '%e %M', '-o', timeFile, ...argv], {
      env: { ...process.env, ...env },
      cwd,
      input,
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
    });
    if (!allowExit.includes(r.status ?? -1))
      throw new Error(`${argv.join(' ')} exited ${r.status}: ${(r.stderr || '').trim().slice(0, 400)}`);
    const [wall, rssKb] = readFileSync(timeFile, 'utf8').trim().split('\n').pop().split(' ').map(Number);
    return { wallSec: wall, peakRssMb: rssKb / 1024, stdout: r.stdout, stderr: r.stderr };
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

/** High-resolution wall time of a command (GNU time has 10 ms resolution; start-up needs better). */
export function wallMs(argv, { env } = {}) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(argv[0], argv.slice(1), { env: { ...process.env, ...env }, encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${argv.join(' ')} exited ${r.status}: ${(r.stderr || '').slice(0, 400)}`);
  return ms;
}

export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/**
 * Alternates the given named thunks `runs` times (order rotated every round so neither always goes first) and returns
 * the samples of each by name.
 */
export function alternate(named, runs) {
  const names = Object.keys(named);
  const samples = Object.fromEntries(names.map((n) => [n, []]));
  for (let i = 0; i < runs; i++) {
    const order = i % 2 === 0 ? names : [...names].reverse();
    for (const n of order) samples[n].push(named[n]());
  }
  return samples;
}

export function requireBuilt() {
  if (!existsSync(cli)) {
    console.error('bench: build first (npm run build).');
    process.exit(2);
  }
}

/** The one JSON line every bench script ends with. */
export function report(fields) {
  console.log(JSON.stringify(fields));
}

export const fmt = (x, d = 2) => Number(x.toFixed(d));

// ---- servers, PKI and the Go reference binaries (transfer, fanout) ----

/** The Go reference client and server (../shared/tools/talos-ref), built into bench/out/ when missing. */
export function refBinaries() {
  const candidates = [process.env.TALOS_REF_BIN, join(root, 'bench/out/talos-ref')].filter(Boolean);
  for (const d of candidates) {
    if (existsSync(join(d, 'talos-ref-client')) && existsSync(join(d, 'talos-ref-server'))) {
      return { client: join(d, 'talos-ref-client'), server: join(d, 'talos-ref-server') };
    }
  }
  const out = join(root, 'bench/out/talos-ref');
  const script = process.env.TALOS_REF_SRC ?? join(root, '../shared/tools/talos-ref/build.sh');
  const r = spawnSync('bash', [script, out], { encoding: 'utf8', stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0) throw new Error(`building the Go reference binaries with ${script} failed`);
  return { client: join(out, 'talos-ref-client'), server: join(out, 'talos-ref-server') };
}

/**
 * A CA, a server certificate for `ips`, an os:admin client certificate (plain `PRIVATE KEY` PEM labels, as the Go
 * binaries need) and a talosconfig for `endpoints`/`nodes`, written into `dir`. Returns the file paths.
 */
export async function writePki(dir, { ips, endpoints, nodes }) {
  const { writeFileSync } = await import('node:fs');
  const { pathToFileURL } = await import('node:url');
  const pki = await import(pathToFileURL(join(root, 'dist/src/talos/pki.js')).href);
  const ca = await pki.generateCa();
  const server = await pki.issueServerCert(ca, { ips });
  const client = await pki.issueClientCert(ca, { roles: ['os:admin'] });
  const files = {
    ca: join(dir, 'ca.crt'),
    serverCrt: join(dir, 'server.crt'),
    serverKey: join(dir, 'server.key'),
    clientCrt: join(dir, 'client.crt'),
    clientKey: join(dir, 'client.key'),
    talosconfig: join(dir, 'talosconfig'),
  };
  writeFileSync(files.ca, ca.certPem);
  writeFileSync(files.serverCrt, server.certPem);
  writeFileSync(files.serverKey, pki.normalizeKeyPem(server.keyPem), { mode: 0o600 });
  writeFileSync(files.clientCrt, client.certPem);
  writeFileSync(files.clientKey, pki.normalizeKeyPem(client.keyPem), { mode: 0o600 });
  writeFileSync(
    files.talosconfig,
    pki.talosconfigYaml({ context: 'bench', endpoints, nodes, ca: { certPem: ca.certPem, keyPem: ca.keyPem }, client }),
    { mode: 0o600 },
  );
  return files;
}

/** A port that was free on `host` a moment ago (loopback only). */
export async function freePort(host = '127.0.0.1') {
  const { createServer } = await import('node:net');
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Resolves once something accepts TCP connections on host:port; gives up after `timeoutMs`. */
export async function waitForPort(host, port, timeoutMs = 15000) {
  const { connect } = await import('node:net');
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const ok = await new Promise((resolve) => {
      const sock = connect({ host, port });
      sock.once('connect', () => {
        sock.destroy();
        resolve(true);
      });
      sock.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`nothing listens on ${host}:${port} after ${timeoutMs} ms`);
}

/** Starts a long-running process in the background; `stop()` ends exactly that process (SIGTERM, then SIGKILL). */
export async function startBackground(argv, { env, cwd } = {}) {
  const { spawn } = await import('node:child_process');
  const proc = spawn(argv[0], argv.slice(1), {
    env: { ...process.env, ...env },
    cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  proc.stdout.on('data', (d) => (stdout += d));
  proc.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  return {
    proc,
    output: () => ({ stdout, stderr }),
    exited,
    /** Waits until stdout has a line matching `re` (or the process exits). */
    async waitFor(re, timeoutMs = 20000) {
      const until = Date.now() + timeoutMs;
      while (Date.now() < until) {
        const m = stdout.match(re);
        if (m) return m;
        if (proc.exitCode !== null)
          throw new Error(`${argv.join(' ')} exited ${proc.exitCode}: ${stderr.slice(0, 400)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`${argv.join(' ')}: no line matching ${re} after ${timeoutMs} ms`);
    },
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    },
  };
}

/** Which code was measured: the commit, and whether src/ (compiled into dist/) had uncommitted changes. */
export function provenance() {
  const git = (args) => spawnSync('git', args, { cwd: root, encoding: 'utf8' }).stdout.trim();
  return {
    commit: git(['rev-parse', '--short', 'HEAD']),
    srcDirty: git(['status', '--porcelain', '--', 'src', 'components', 'machines']) !== '',
    date: new Date().toISOString(),
  };
}
