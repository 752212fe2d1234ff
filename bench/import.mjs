// bench/import: `talos-dr import FILE.snap.zst.age --identity KEY` (decrypt, decompress, write 0600, verify with the
// sha256 read back) against the pipeline an engineer would type, `age -d -i KEY | zstd -d | openssl dgst -sha256`
// (decode and hash only, nothing written), on a talos-backup file made the way talos-backup makes it (Debian's zstd,
// then age to an X25519 recipient). Page cache warm, interleaved runs, medians; peak RSS of talos-dr.
//
// Env: BENCH_IMPORT_SIZE_MB (default 1024), BENCH_RUNS (default 3), BENCH_DIR (scratch, default a new one under /tmp).
// Issue 16's target: within 1.5x of the pipeline at 1 GiB. BENCH_IMPORT_BASE=/path/to/cli.js adds that build's import
// (a copy of an earlier dist/, e.g. bench/out/dist-before/src/cli.js) to the same interleaved rounds, for before/after.
// Each round prints its 1-minute load; CPU is user + system of the whole process tree (age and zstd included).
//
// BENCH_IMPORT_STAGES=1 adds each layer on its own, for where the time goes: `talos-dr import` of the .zst alone
// (decoded by the zstd program on PATH, and again with a PATH without it, so by fzstd) against `zstd -d | openssl dgst
// -sha256`, of an .age of the plain file (the age program on PATH decrypting the payload, and again with a PATH
// without it, so age-encryption's JavaScript) against `age -d | openssl dgst -sha256`,
// and `talos-dr inspect` of the plain file (the verification every import ends with) against `openssl dgst -sha256`.
// Each stage's ratio bounds the whole import from below: the stages run one after another on a busy machine, and
// overlapping them on threads gains nothing once every core is taken.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { alternate, cli, fmt, median, report, requireBuilt, root, timed } from './lib.mjs';

/** timed, with the CPU (user + system, waited-for children included) of the run. */
function timedCpu(argv) {
  const out = mkdtempSync(join(tmpdir(), 'bench-cpu-'));
  const timeFile = join(out, 'time');
  try {
    const r = spawnSync('/usr/bin/time', ['-f', '%e %M %U %S', '-o', timeFile, ...argv], {
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
    });
    if (r.status !== 0) throw new Error(`${argv.join(' ')} exited ${r.status}: ${(r.stderr || '').slice(0, 400)}`);
    const [wall, rssKb, user, sys] = readFileSync(timeFile, 'utf8').trim().split('\n').pop().split(' ').map(Number);
    return { wallSec: wall, peakRssMb: rssKb / 1024, cpuSec: user + sys, load: loadavg()[0], stdout: r.stdout };
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

requireBuilt();
for (const tool of ['age', 'age-keygen', 'zstd', 'openssl']) {
  if (spawnSync(tool, ['--version']).status !== 0 && spawnSync(tool, ['version']).status !== 0) {
    console.error(`bench/import: ${tool} is not installed (apt-get install age zstd openssl); skipped.`);
    process.exit(0);
  }
}
const sizeMb = Number(process.env.BENCH_IMPORT_SIZE_MB ?? 1024);
const runs = Number(process.env.BENCH_RUNS ?? 3);
const dir = process.env.BENCH_DIR ?? mkdtempSync(join(tmpdir(), 'bench-import-'));
mkdirSync(dir, { recursive: true });

const sh = (script) => {
  const r = spawnSync('bash', ['-c', script], { encoding: 'utf8', maxBuffer: 16 << 20 });
  if (r.status !== 0) throw new Error(`${script}: ${r.stderr}`);
  return r.stdout;
};

/** One layer at a time: talos-dr against the Go/C tool for the same layer, medians of interleaved runs. */
function measureStages(plain, key, recipient, expected) {
  sh(`age -r ${recipient} -o '${plain}.age' '${plain}'`);
  let n = 0;
  const ours = (argv, env) => () => {
    const out = join(dir, `stage-${n++}.snap`);
    const r = timed([process.execPath, cli, ...argv, '-o', out, '--json'], { env });
    if (JSON.parse(r.stdout).report.sha256 !== expected) throw new Error(`${argv.join(' ')}: wrong result`);
    rmSync(out);
    rmSync(`${out}.sha256`);
    return r;
  };
  const theirs = (script) => () => {
    const r = timed(['bash', '-c', script]);
    if (!r.stdout.includes(expected)) throw new Error(`${script}: the hash differs`);
    return r;
  };
  const samples = alternate(
    {
      zstdTool: theirs(`zstd -d -q -c '${plain}.zst' | openssl dgst -sha256`),
      zstdTalosDr: ours(['import', `${plain}.zst`]),
      // PATH without a zstd program: the pure-JavaScript decoder (fzstd), as on a machine without zstd installed
      zstdFzstd: ours(['import', `${plain}.zst`], { PATH: '/nonexistent' }),
      ageTool: theirs(`age -d -i '${key}' '${plain}.age' | openssl dgst -sha256`),
      ageTalosDr: ours(['import', `${plain}.age`, '--identity', key]),
      // PATH without an age program: age-encryption's JavaScript decrypts the payload too
      ageJs: ours(['import', `${plain}.age`, '--identity', key], { PATH: '/nonexistent' }),
      hashTool: theirs(`openssl dgst -sha256 '${plain}'`),
      verifyTalosDr: () => timed([process.execPath, cli, 'inspect', plain, '--json']),
    },
    runs,
  );
  const sec = (name) => median(samples[name].map((s) => s.wallSec));
  const stage = (tool, talosDr) => ({
    toolSec: fmt(sec(tool)),
    talosDrSec: fmt(sec(talosDr)),
    ratio: fmt(sec(talosDr) / sec(tool)),
  });
  return {
    zstd: stage('zstdTool', 'zstdTalosDr'),
    zstdWithoutProgram: stage('zstdTool', 'zstdFzstd'),
    age: stage('ageTool', 'ageTalosDr'),
    ageWithoutProgram: stage('ageTool', 'ageJs'),
    verify: stage('hashTool', 'verifyTalosDr'),
  };
}

try {
  const plain = join(dir, 'bench-2026-12-02T10:00:00Z.snap');
  const gen = spawnSync(
    process.execPath,
    [join(root, 'bench/gen-snapshot.mjs'), '--size-mb', String(sizeMb), '--out', plain],
    {
      encoding: 'utf8',
    },
  );
  if (gen.status !== 0) throw new Error(`generating the snapshot failed: ${gen.stderr}`);
  const key = join(dir, 'key.txt');
  sh(`age-keygen -o '${key}' 2>/dev/null`);
  const recipient = sh(`age-keygen -y '${key}'`).trim();
  sh(`zstd -q -f '${plain}' -o '${plain}.zst' && age -r ${recipient} -o '${plain}.zst.age' '${plain}.zst'`);
  const source = `${plain}.zst.age`;
  const expected = sh(`sha256sum '${plain}'`).split(' ')[0];
  sh(`cat '${source}' > /dev/null`);
  let n = 0;
  const importWith = (cliPath) => () => {
    const out = join(dir, `out-${n++}.snap`);
    const r = timedCpu([process.execPath, cliPath, 'import', source, '--identity', key, '-o', out, '--json']);
    const result = JSON.parse(r.stdout);
    if (result.report.sha256 !== expected || !result.report.usable) throw new Error('talos-dr import: wrong result');
    rmSync(out);
    rmSync(`${out}.sha256`);
    return r;
  };
  const base = process.env.BENCH_IMPORT_BASE;
  const samples = alternate(
    {
      pipeline: () => {
        const r = timedCpu(['bash', '-c', `age -d -i '${key}' '${source}' | zstd -d -q | openssl dgst -sha256`]);
        if (!r.stdout.includes(expected)) throw new Error(`the pipeline's hash differs: ${r.stdout}`);
        return r;
      },
      talosDr: importWith(cli),
      ...(base ? { base: importWith(base) } : {}),
    },
    runs,
  );
  const pipe = median(samples.pipeline.map((s) => s.wallSec));
  const ours = median(samples.talosDr.map((s) => s.wallSec));
  const cpu = (name) => median(samples[name].map((s) => s.cpuSec));
  const baseFields = base
    ? {
        baseSec: fmt(median(samples.base.map((s) => s.wallSec))),
        baseRatio: fmt(median(samples.base.map((s) => s.wallSec)) / pipe),
        baseCpuRatio: fmt(cpu('base') / cpu('pipeline')),
        basePeakRssMb: fmt(Math.max(...samples.base.map((s) => s.peakRssMb)), 0),
      }
    : {};
  const stages = process.env.BENCH_IMPORT_STAGES === '1' ? measureStages(plain, key, recipient, expected) : undefined;
  report({
    bench: 'import',
    sizeMb,
    plainBytes: statSync(plain).size,
    sourceBytes: statSync(source).size,
    runs,
    pipelineSec: fmt(pipe),
    talosDrSec: fmt(ours),
    ratio: fmt(ours / pipe),
    target: 1.5,
    pipelineCpuSec: fmt(cpu('pipeline')),
    talosDrCpuSec: fmt(cpu('talosDr')),
    cpuRatio: fmt(cpu('talosDr') / cpu('pipeline')),
    talosDrPeakRssMb: fmt(Math.max(...samples.talosDr.map((s) => s.peakRssMb)), 0),
    ...baseFields,
    samples: Object.fromEntries(
      Object.entries(samples).map(([name, list]) => [
        name,
        list.map((s) => ({ wall: s.wallSec, cpu: fmt(s.cpuSec), rssMb: fmt(s.peakRssMb, 0), load: fmt(s.load, 1) })),
      ]),
    ),
    ...(stages ? { stages } : {}),
  });
} finally {
  if (process.env.BENCH_KEEP !== '1') rmSync(dir, { recursive: true, force: true });
}
