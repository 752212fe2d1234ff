// bench/fanout: `talos-dr status --json` against simulated clusters of 1, 5, 50 and 200 healthy control-plane nodes,
// each simulator in its own process (`talos-dr sim` with a generated scenario), all started up front so the status
// runs can be interleaved; medians; ratio of each to the 1-node time. A size the simulator refuses is reported as
// skipped with its reason.
//
// Env: BENCH_FANOUT_NODES (default "1,5,50,64,200"; 64 is the simulator's MAX_NODES), BENCH_RUNS (default 7).
// PRODUCT.md §5 target: 50 nodes within 3× of 1 node.
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { alternate, cli, fmt, median, report, requireBuilt, startBackground, timed } from './lib.mjs';

requireBuilt();
const sizes = (process.env.BENCH_FANOUT_NODES ?? '1,5,50,64,200')
  .split(',')
  .map(Number)
  .filter((n) => n > 0);
if (!sizes.includes(1)) sizes.unshift(1);
const runs = Number(process.env.BENCH_RUNS ?? 7);
const dir = mkdtempSync(join(tmpdir(), 'bench-fanout-'));

function scenarioFile(n) {
  const file = join(dir, `fanout-${n}.yaml`);
  const lines = [
    `name: bench-fanout-${n}`,
    `description: ${n} healthy control-plane nodes, for the status fan-out benchmark.`,
    'expectedOutcome: nothing-to-do',
    'rightAnswer: nothing to do; etcd is healthy.',
    'timeLimitSec: 600',
    'nodes:',
    ...Array.from({ length: n }, (_, i) => `  - { hostname: cp-${i + 1}, type: controlplane, etcd: healthy }`),
    '',
  ];
  writeFileSync(file, lines.join('\n'));
  return file;
}

const sims = new Map();
const skipped = {};
try {
  // Each cluster on its own /24 of loopback: 127.0.<k>.1 upwards (a /24 holds the 200 nodes).
  let k = 40;
  for (const n of sizes) {
    const simDir = join(dir, `sim-${n}`);
    mkdirSync(simDir);
    const sim = await startBackground([
      'node',
      cli,
      'sim',
      '--scenario',
      scenarioFile(n),
      '--dir',
      simDir,
      '--address-base',
      `127.0.${k++}.1`,
    ]);
    try {
      const m = await sim.waitFor(/^ready endpoints=(\S+) nodes=(\S+) talosconfig=(\S+)/m, 300000);
      sims.set(n, { sim, talosconfig: m[3], nodes: m[2].split(',') });
    } catch (error) {
      await sim.stop();
      skipped[n] = error.message.split('\n')[0].slice(0, 300);
      console.error(`fanout: ${n} nodes skipped: ${skipped[n]}`);
    }
  }
  if (!sims.has(1)) throw new Error(`the 1-node simulator did not start: ${skipped[1]}`);

  // Each status must see every node healthy, or its time is that of deadlines, not of work: said in `unhealthy`.
  const status = (s) => timed(['node', cli, '--talosconfig', s.talosconfig, 'status', '--json'], { allowExit: [0, 1] });
  const unhealthy = {};
  const check = (n, r) => {
    let out;
    try {
      out = JSON.parse(r.stdout);
    } catch {
      return `no JSON: ${r.stderr.trim().slice(0, 200)}`;
    }
    const healthy = out.nodes.filter((x) => x.reachable && x.healthy).length;
    if (out.verdict === 'healthy' && out.nodes.length === n && healthy === n) return null;
    const errors = [...new Set(out.nodes.map((x) => x.error).filter(Boolean))].slice(0, 2);
    return `verdict ${out.verdict}, ${healthy}/${out.nodes.length} healthy: ${errors.join(' | ').slice(0, 300)}`;
  };
  for (const [n, s] of sims) {
    const problem = check(n, status(s));
    if (problem) {
      unhealthy[n] = problem;
      console.error(`fanout: ${n} nodes: ${problem}`);
    }
  }
  const samples = alternate(
    Object.fromEntries(
      [...sims].map(([n, s]) => [
        n,
        () => {
          const r = status(s);
          const problem = check(n, r);
          if (problem) unhealthy[n] = problem;
          return r;
        },
      ]),
    ),
    runs,
  );
  const med = Object.fromEntries(Object.entries(samples).map(([n, xs]) => [n, median(xs.map((x) => x.wallSec))]));
  const rss = Object.fromEntries(
    Object.entries(samples).map(([n, xs]) => [n, fmt(Math.max(...xs.map((x) => x.peakRssMb)), 1)]),
  );
  const ratios = Object.fromEntries(Object.entries(med).map(([n, s]) => [n, fmt(s / med[1])]));
  const ratio50 = ratios[50] ?? null;
  report({
    bench: 'fanout',
    ratio: ratio50,
    target: 3,
    peakRssMb: Math.max(...Object.values(rss)),
    pass: ratio50 !== null && ratio50 <= 3 && !unhealthy[50],
    runs,
    medianSecByNodes: med,
    ratioByNodes: ratios,
    peakRssMbByNodes: rss,
    skipped,
    unhealthy,
  });
} finally {
  for (const { sim } of sims.values()) await sim.stop();
  rmSync(dir, { recursive: true, force: true });
}
