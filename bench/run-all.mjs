// `npm run bench`: runs every benchmark one after the other (never side by side: they would measure each other),
// passes their env knobs through, collects each one's final JSON line and prints a summary table and, last, one JSON
// line with all of them. Exit 0 when every target passes, 1 otherwise.
//
// Env: BENCH_ONLY (comma list of inspect,transfer,startup,fanout), BENCH_RUNS, and each script's own knobs
// (BENCH_INSPECT_SIZES_MB, BENCH_TRANSFER_MB, BENCH_SIM_MB, BENCH_STARTUP_RUNS, BENCH_FANOUT_NODES, ...).
// BENCH_SMALL=1 picks small sizes for a quick check (results are then not the reference numbers).
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { provenance, requireBuilt, root } from './lib.mjs';

requireBuilt();
const measured = provenance();
const all = ['inspect', 'transfer', 'startup', 'fanout'];
const only = process.env.BENCH_ONLY ? process.env.BENCH_ONLY.split(',') : all;
const small =
  process.env.BENCH_SMALL === '1'
    ? {
        BENCH_INSPECT_SIZES_MB: '64,256',
        BENCH_TRANSFER_MB: '64',
        BENCH_SIM_MB: '16',
        BENCH_RUNS: '3',
        BENCH_STARTUP_RUNS: '5',
        BENCH_FANOUT_NODES: '1,5,50',
      }
    : {};

const results = [];
for (const name of all.filter((n) => only.includes(n))) {
  console.error(`bench: ${name} ...`);
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [join(root, 'bench', `${name}.mjs`)], {
    env: { ...small, ...process.env },
    stdio: ['ignore', 'pipe', 'inherit'],
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  const last = (r.stdout || '').trim().split('\n').pop() ?? '';
  let line;
  try {
    line = JSON.parse(last);
  } catch {
    line = { bench: name, ratio: null, target: null, peakRssMb: null, pass: false, error: `exited ${r.status}` };
  }
  line.seconds = Math.round((Date.now() - t0) / 1000);
  results.push(line);
  console.log(JSON.stringify(line));
}

console.error('\nbench        ratio   target  peak RSS MB  pass');
for (const r of results) {
  console.error(
    `${String(r.bench).padEnd(12)} ${String(r.ratio).padEnd(7)} ${String(r.target).padEnd(7)} ${String(r.peakRssMb).padEnd(12)} ${r.pass}`,
  );
}
const pass = results.every((r) => r.pass);
console.log(
  JSON.stringify({
    bench: 'all',
    pass,
    ...measured,
    results: results.map(({ bench, ratio, target, peakRssMb, pass: p }) => ({
      bench,
      ratio,
      target,
      peakRssMb,
      pass: p,
    })),
  }),
);
process.exitCode = pass ? 0 : 1;
