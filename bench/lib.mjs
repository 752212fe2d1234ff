// Shared helpers for the benchmarks: run a command under GNU time, alternate a measured command with its reference
// on the same machine, report medians and ratios. Absolute times on these shared machines are noise; ratios of
// interleaved runs are what we compare (PRODUCT.md §5).
import { spawnSync } from 'node:child_process';
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
