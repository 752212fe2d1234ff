// bench/fanout: `talos-dr status --json` against simulated clusters of 1, 5, 50 and 200 healthy control-plane nodes,
// each simulator in its own process (`talos-dr sim` with a generated scenario), all started up front so the status
// runs can be interleaved; medians; ratio of each to the 1-node time. A size the simulator refuses is reported as
// skipped with its reason. Also reported per size: the simulator's start-up (spawn to its ready line) and its peak
// RSS (VmHWM at the end, after all the status runs).
//
// Env: BENCH_FANOUT_NODES (default "1,5,50,200"; the simulator takes up to 256 nodes), BENCH_RUNS (default 7).
// PRODUCT.md §5 target: 50 nodes within 3× of 1 node.
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { alternate, cli, fmt, median, report, requireBuilt, startBackground, timed } from './lib.mjs';

requireBuilt();
const sizes = (process.env.BENCH_FANOUT_NODES ?? '1,5,50,200')
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

/** A running process's peak resident set (VmHWM), in MB; null where /proc cannot say. */
function peakRssMb(pid) {
  try {
    const kb = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb ? fmt(Number(kb) / 1024, 1) : null;
  } catch {
    return null;
  }
}

const sims = new Map();
const skipped = {};
try {
  // Each cluster on its own /16 of loopback: 127.<k>.0.2 upwards (node addresses run on past .255).
  let k = 40;
  for (const n of sizes) {
    const simDir = join(dir, `sim-${n}`);
    mkdirSync(simDir);
    const started = process.hrtime.bigint();
    const sim = await startBackground([
      'node',
      cli,
      'sim',
      '--scenario',
      scenarioFile(n),
      '--dir',
      simDir,
      '--address-base',
      `127.${k++}.0.2`,
      '--port',
      '0',
    ]);
    try {
      const m = await sim.waitFor(/^ready endpoints=(\S+) nodes=(\S+) talosconfig=(\S+)/m, 300000);
      const startupSec = fmt(Number(process.hrtime.bigint() - started) / 1e9);
      sims.set(n, { sim, talosconfig: m[3], nodes: m[2].split(','), startupSec });
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
  // How many of the timed runs (per size) saw some node not answer: those times are bounded by status's deadlines.
  const unhealthyRuns = {};
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
          if (problem) {
            unhealthy[n] = problem;
            unhealthyRuns[n] = (unhealthyRuns[n] ?? 0) + 1;
          }
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
  const simStartupSecByNodes = Object.fromEntries([...sims].map(([n, s]) => [n, s.startupSec]));
  const simPeakRssMbByNodes = Object.fromEntries([...sims].map(([n, s]) => [n, peakRssMb(s.sim.proc.pid)]));
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
    simStartupSecByNodes,
    simPeakRssMbByNodes,
    skipped,
    unhealthy,
    unhealthyRuns,
  });
} finally {
  for (const { sim } of sims.values()) await sim.stop();
  rmSync(dir, { recursive: true, force: true });
}
