// bench/inspect: `talos-dr inspect` of a large etcd snapshot against `etcdctl snapshot status -w json` (the status
// fields) and `sha256sum` / `openssl dgst -sha256` (the whole verification), page cache warm for all, interleaved runs, medians; peak RSS.
// Also the status walk alone (bench/status-only.mjs: inspect's checkStructure without the sha256), because inspect has
// no flag that computes only the status fields: as inspect runs it (statusOnly: two threads from 64 MiB on while a
// core is idle), in one thread (statusOneThread) and always in two (statusTwoThreads); `node -e 0` (nodeStart: Node's
// own start-up, part of every Node figure); and bench/read-floor.mjs, a Node process that only reads and CRCs the file
// (what any Node reader must at least do), to separate Node's floor from the reader's own cost. Several sizes show
// that time grows linearly and memory stays flat.
//
// Env: BENCH_INSPECT_SIZES_MB (default "256,1024,4096"; the 1 GiB one — or the one nearest it — carries the targets),
//      BENCH_RUNS (default 5), BENCH_DIR (scratch directory, default a new one under /tmp), BENCH_KEEP=1 keeps the files,
//      BENCH_INSPECT_BASE=/path/to/cli.js adds an earlier build's inspect to the same interleaved rounds (its wall and
//      CPU against openssl and against this build's), so a before/after is measured under the same load.
// Targets: issue 16 — whole verification within 1.1× of `openssl dgst -sha256` (the hash alone, the physical floor)
// and peak RSS ≤ 100 MB at every size; PRODUCT.md §5 — status no slower than etcdctl (ratio ≤ 1.0), whole
// verification ≤ 1.3× sha256sum. Wall-clock ratios are only meaningful on a quiet machine: on a busy 2-core box every
// thread gets a slice of a core and the wall ratio drifts toward the ratio of CPU time (user + system), so that one is
// printed beside it (cpuVsOpensslRatio), with the load average.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, statfsSync, openSync, readSync, closeSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { alternate, cli, fmt, median, report, requireBuilt, root } from './lib.mjs';

/** lib.mjs's timed, plus the CPU time (user + system) of the command and its threads. */
function timed(argv, opts = {}) {
  const out = mkdtempSync(join(tmpdir(), 'bench-cpu-'));
  try {
    const timeFile = join(out, 'time');
    const r = spawnSync('/usr/bin/time', ['-f', '%e %M %U %S', '-o', timeFile, ...argv], {
      env: { ...process.env, ...opts.env },
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
    });
    if (r.status !== 0)
      throw new Error(`${argv.join(' ')} exited ${r.status}: ${(r.stderr || '').trim().slice(0, 400)}`);
    const [wall, rssKb, user, sys] = readFileSync(timeFile, 'utf8').trim().split('\n').pop().split(' ').map(Number);
    return { wallSec: wall, peakRssMb: rssKb / 1024, cpuSec: user + sys, stdout: r.stdout, stderr: r.stderr };
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

requireBuilt();
// Whether inspect's walk takes its leaves from the hashing thread's ring depends on the load when it starts (src/etcd/
// inspect.ts readOnceBesideHash): each inspect sample records which way it ran.
const { readOnceBesideHash } = await import(pathToFileURL(join(root, 'dist/src/etcd/inspect.js')).href);
const sizes = (process.env.BENCH_INSPECT_SIZES_MB ?? '256,1024,4096')
  .split(',')
  .map(Number)
  .filter((n) => n > 0);
const runs = Number(process.env.BENCH_RUNS ?? 5);
const dir = process.env.BENCH_DIR ?? mkdtempSync(join(tmpdir(), 'bench-inspect-'));
mkdirSync(dir, { recursive: true });
const keep = process.env.BENCH_KEEP === '1';

const freeMb = () => {
  const s = statfsSync(dir);
  return (s.bavail * s.bsize) / 1024 / 1024;
};

/** Reads the whole file once so every measured command starts with a warm page cache. */
function warm(file) {
  const fd = openSync(file, 'r');
  const buf = Buffer.allocUnsafe(8 << 20);
  try {
    while (readSync(fd, buf, 0, buf.length, null) > 0);
  } finally {
    closeSync(fd);
  }
}

function generate(sizeMb) {
  const file = join(dir, `snapshot-${sizeMb}m.db`);
  const r = spawnSync(
    process.execPath,
    [join(root, 'bench/gen-snapshot.mjs'), '--size-mb', String(sizeMb), '--out', file],
    {
      encoding: 'utf8',
    },
  );
  if (r.status !== 0) throw new Error(`generating ${sizeMb} MiB failed: ${r.stderr}`);
  return { file, ...JSON.parse(r.stdout.trim().split('\n').pop()) };
}

function measure(sizeMb) {
  // Room for the file plus a margin for the other engineers on this disk.
  const needMb = sizeMb * 1.05 + 2048;
  if (freeMb() < needMb) {
    console.error(
      `inspect: skipping ${sizeMb} MiB: ${Math.round(freeMb())} MiB free in ${dir}, ${Math.round(needMb)} needed`,
    );
    return null;
  }
  const gen = generate(sizeMb);
  console.error(`inspect: ${sizeMb} MiB: ${gen.bytes} bytes, ${gen.revisions} revisions, generated in ${gen.seconds}s`);
  try {
    // Same answers first: etcdctl's status fields and inspect's must agree, sha256 must agree with sha256sum.
    const ours = JSON.parse(timed(['node', cli, 'inspect', '--json', gen.file]).stdout);
    const theirs = JSON.parse(timed(['etcdctl', 'snapshot', 'status', '-w', 'json', gen.file]).stdout);
    const sha = timed(['sha256sum', gen.file]).stdout.split(' ')[0];
    const agree =
      ours.usable &&
      ours.integrity === 'verified' &&
      ours.revision === theirs.revision &&
      ours.totalKeys === theirs.totalKey &&
      ours.totalSize === theirs.totalSize &&
      parseInt(ours.hash, 16) === theirs.hash &&
      ours.sha256 === sha;
    if (!agree) throw new Error(`inspect and the references disagree: ${JSON.stringify({ ours, theirs, sha })}`);
    warm(gen.file);
    const base = process.env.BENCH_INSPECT_BASE;
    const s = alternate(
      {
        inspect: () => {
          const ring = readOnceBesideHash(true, false);
          return { ...timed(['node', cli, 'inspect', '--json', gen.file]), ring };
        },
        ...(base ? { inspectBase: () => timed(['node', base, 'inspect', '--json', gen.file]) } : {}),
        etcdctl: () => timed(['etcdctl', 'snapshot', 'status', '-w', 'json', gen.file]),
        sha256sum: () => timed(['sha256sum', gen.file]),
        // issue 16's floor: OpenSSL's sha256 (SHA-NI where the CPU has it), the hash alone on the same warm file
        openssl: () => timed(['openssl', 'dgst', '-sha256', gen.file]),
        statusOnly: () => timed(['node', join(root, 'bench/status-only.mjs'), gen.file]),
        statusOneThread: () =>
          timed(['node', join(root, 'bench/status-only.mjs'), gen.file], { env: { BENCH_STATUS_SPLIT: '0' } }),
        statusTwoThreads: () =>
          timed(['node', join(root, 'bench/status-only.mjs'), gen.file], { env: { BENCH_STATUS_SPLIT: '1' } }),
        nodeStart: () => timed(['node', '-e', '0']),
        readFloor: () => timed(['node', join(root, 'bench/read-floor.mjs'), gen.file]),
        // Node's own floor for the whole verification: start, read and sha256, nothing else
        hashFloor: () => timed(['node', join(root, 'bench/read-floor.mjs'), gen.file, '--sha256']),
      },
      runs,
    );
    const med = (name) => median(s[name].map((x) => x.wallSec));
    const peak = (name) => Math.max(...s[name].map((x) => x.peakRssMb));
    const cpu = (name) => median(s[name].map((x) => x.cpuSec));
    const row = {
      sizeMb,
      bytes: gen.bytes,
      inspectSec: med('inspect'),
      etcdctlSec: med('etcdctl'),
      sha256sumSec: med('sha256sum'),
      opensslSec: med('openssl'),
      statusOnlySec: med('statusOnly'),
      statusOneThreadSec: med('statusOneThread'),
      statusTwoThreadsSec: med('statusTwoThreads'),
      nodeStartSec: med('nodeStart'),
      readFloorSec: med('readFloor'),
      hashFloorSec: med('hashFloor'),
      inspectCpuSec: fmt(cpu('inspect')),
      opensslCpuSec: fmt(cpu('openssl')),
      hashFloorCpuSec: fmt(cpu('hashFloor')),
      cpuVsOpensslRatio: fmt(cpu('inspect') / cpu('openssl')),
      hashFloorVsOpensslRatio: fmt(med('hashFloor') / med('openssl')),
      verifyRatio: fmt(med('inspect') / med('sha256sum')),
      verifyVsOpensslRatio: fmt(med('inspect') / med('openssl')),
      inspectVsEtcdctl: fmt(med('inspect') / med('etcdctl')),
      statusRatio: fmt(med('statusOnly') / med('etcdctl')),
      statusOneThreadRatio: fmt(med('statusOneThread') / med('etcdctl')),
      statusTwoThreadsRatio: fmt(med('statusTwoThreads') / med('etcdctl')),
      floorRatio: fmt(med('readFloor') / med('etcdctl')),
      inspectPeakRssMb: fmt(peak('inspect'), 1),
      statusOnlyPeakRssMb: fmt(peak('statusOnly'), 1),
      statusOneThreadPeakRssMb: fmt(peak('statusOneThread'), 1),
      statusTwoThreadsPeakRssMb: fmt(peak('statusTwoThreads'), 1),
      etcdctlPeakRssMb: fmt(peak('etcdctl'), 1),
      inspectSecPerGiB: fmt(med('inspect') / (gen.bytes / 2 ** 30)),
      // runs whose walk took its leaves from the hashing thread's ring (a busy machine), of `runs`
      inspectRingRuns: s.inspect.filter((x) => x.ring).length,
      ...(base
        ? {
            base,
            baseSec: med('inspectBase'),
            baseCpuSec: fmt(cpu('inspectBase')),
            baseVsOpensslRatio: fmt(med('inspectBase') / med('openssl')),
            baseCpuVsOpensslRatio: fmt(cpu('inspectBase') / cpu('openssl')),
            inspectVsBaseRatio: fmt(med('inspect') / med('inspectBase')),
            basePeakRssMb: fmt(peak('inspectBase'), 1),
          }
        : {}),
    };
    console.error(`inspect: ${JSON.stringify(row)}`);
    return row;
  } finally {
    if (!keep) rmSync(gen.file, { force: true });
  }
}

const rows = [];
for (const sizeMb of sizes) {
  const row = measure(sizeMb);
  if (row) rows.push(row);
}
if (!process.env.BENCH_DIR && !keep) rmSync(dir, { recursive: true, force: true });
if (rows.length === 0) {
  report({
    bench: 'inspect',
    ratio: null,
    target: 1.1,
    peakRssMb: null,
    pass: false,
    error: 'no size could be measured',
  });
  process.exit(1);
}

// The targets are stated for 1 GiB: take the size nearest to it.
const main = rows.reduce((a, b) => (Math.abs(b.sizeMb - 1024) < Math.abs(a.sizeMb - 1024) ? b : a));
const peakRssMb = Math.max(...rows.map((r) => r.inspectPeakRssMb));
const verifyPass = main.verifyVsOpensslRatio <= 1.1;
const statusPass = main.statusRatio <= 1.0;
const rssPass = peakRssMb <= 100;
// Linear or better: seconds per GiB of the largest size no more than 25% above the smallest's (the small sizes carry
// Node's fixed start-up, so per-GiB time usually falls with size).
const perGiB = rows.map((r) => r.inspectSecPerGiB);
report({
  bench: 'inspect',
  ratio: main.verifyVsOpensslRatio,
  target: 1.1,
  peakRssMb: fmt(peakRssMb, 1),
  pass: verifyPass && statusPass && rssPass,
  sizeMb: main.sizeMb,
  runs,
  verifyPass,
  cpuVsOpensslRatio: main.cpuVsOpensslRatio,
  hashFloorVsOpensslRatio: main.hashFloorVsOpensslRatio,
  verifyVsSha256sumRatio: main.verifyRatio,
  verifyVsSha256sumTarget: 1.3,
  statusRatio: main.statusRatio,
  statusTarget: 1.0,
  statusPass,
  statusOneThreadRatio: main.statusOneThreadRatio,
  statusTwoThreadsRatio: main.statusTwoThreadsRatio,
  loadAvg: loadavg().map((x) => fmt(x, 1)),
  floorRatio: main.floorRatio,
  inspectVsEtcdctl: main.inspectVsEtcdctl,
  rssPass,
  secPerGiB: Object.fromEntries(rows.map((r) => [r.sizeMb, r.inspectSecPerGiB])),
  peakRssBySizeMb: Object.fromEntries(rows.map((r) => [r.sizeMb, r.inspectPeakRssMb])),
  statusRatioBySizeMb: Object.fromEntries(rows.map((r) => [r.sizeMb, r.statusRatio])),
  linear: perGiB.length < 2 || perGiB[perGiB.length - 1] <= perGiB[0] * 1.25,
  sizes: rows,
});
