// bench/startup: wall time of `talos-dr --help` and of the wizard's first frame (`talos-dr drill` in a pseudo-terminal,
// from spawn to the first frame's text on the pty), each against `node -e 0`, interleaved, medians. Also checks that
// `--help` does not load Ink (bench/load-trace.mjs records every module resolved).
//
// Env: BENCH_STARTUP_RUNS (default 15), BENCH_FIRST_FRAME_RE (regex of the first frame's text, ANSI stripped; default
//      the drill header "DRILL · simulated cluster").
// PRODUCT.md §5 targets: --help within 3× of node -e 0 (Ink not loaded); the first frame within 10× of node -e 0.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout, clearTimeout } from 'node:timers';
import { cli, fmt, median, report, requireBuilt, root, timed, wallMs } from './lib.mjs';

requireBuilt();
const runs = Number(process.env.BENCH_STARTUP_RUNS ?? 15);
const frameRe = new RegExp(process.env.BENCH_FIRST_FRAME_RE ?? 'DRILL · simulated cluster');
const dir = mkdtempSync(join(tmpdir(), 'bench-startup-'));
const stripAnsi = (s) =>
  s.replace(/\x1b\[[0-9;?]*[ -/]*[@-~]/g, '').replace(/\x1b[\]PX^_][^\x07\x1b]*(\x07|\x1b\\)/g, ''); // eslint-disable-line no-control-regex

/** Which modules `talos-dr --help` resolves. */
function helpModules() {
  const trace = join(dir, 'help-modules.txt');
  wallMs(['node', '--import', join(root, 'bench/load-trace.mjs'), cli, '--help'], { env: { BENCH_LOAD_TRACE: trace } });
  return existsSync(trace) ? [...new Set(readFileSync(trace, 'utf8').trim().split('\n'))] : [];
}

// A terminal as a user has it: no CI variable (Ink treats even an empty CI as CI and draws no frames).
const ttyEnv = { ...process.env, TERM: 'xterm-256color' };
delete ttyEnv.CI;
delete ttyEnv.CONTINUOUS_INTEGRATION;

/**
 * Spawns the drill in a pseudo-terminal (util-linux `script`), resolves with the ms from spawn to the first frame's
 * text on the pty, then ends that process group. Gives up after 30 s.
 */
function firstFrameMs(i) {
  const incident = join(dir, `incident-${i}`);
  const command = `stty cols 100 rows 40 2>/dev/null; exec node ${cli} drill --dir ${incident}`;
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn('script', ['-qfec', command, '/dev/null'], {
      detached: true,
      stdio: ['pipe', 'pipe', 'pipe'],
      env: ttyEnv,
    });
    let seen = '';
    let done = false;
    const finish = (err, ms) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
      child.once('exit', () => {
        rmSync(incident, { recursive: true, force: true });
        if (err) reject(err);
        else resolve(ms);
      });
      if (child.exitCode !== null || child.signalCode !== null) child.emit('exit');
    };
    const timer = setTimeout(
      () => finish(new Error(`no first frame after 30 s; the pty showed: ${stripAnsi(seen).slice(-400)}`)),
      30000,
    );
    child.stdout.on('data', (d) => {
      seen += d.toString('utf8');
      if (frameRe.test(stripAnsi(seen))) finish(null, Number(process.hrtime.bigint() - t0) / 1e6);
    });
    child.on('exit', () =>
      finish(new Error(`the drill exited before its first frame: ${stripAnsi(seen).slice(-400)}`)),
    );
  });
}

const nodeMs = () => wallMs(['node', '-e', '0']);

// --help vs node -e 0, interleaved.
const help = [];
const nodeForHelp = [];
for (let i = 0; i < runs; i++) {
  if (i % 2) {
    nodeForHelp.push(nodeMs());
    help.push(wallMs(['node', cli, '--help']));
  } else {
    help.push(wallMs(['node', cli, '--help']));
    nodeForHelp.push(nodeMs());
  }
}
const modules = helpModules();
const inkLoaded = modules.some((u) => /node_modules\/(ink|react|@grpc)\//.test(u));
const helpRatio = median(help) / median(nodeForHelp);

// First frame vs node -e 0, interleaved.
const frame = [];
const nodeForFrame = [];
let frameError = null;
try {
  for (let i = 0; i < runs; i++) {
    if (i % 2) nodeForFrame.push(nodeMs());
    frame.push(await firstFrameMs(i));
    if (!(i % 2)) nodeForFrame.push(nodeMs());
  }
} catch (error) {
  frameError = error.message;
}
rmSync(dir, { recursive: true, force: true });

const frameRatio = frameError ? null : median(frame) / median(nodeForFrame);
const helpPass = helpRatio <= 3 && !inkLoaded;
const framePass = frameRatio !== null && frameRatio <= 10;
console.error(
  `startup: --help ${fmt(median(help), 1)} ms, node -e 0 ${fmt(median(nodeForHelp), 1)} ms; ` +
    (frameError
      ? `first frame not measured: ${frameError}`
      : `first frame ${fmt(median(frame), 1)} ms, node -e 0 ${fmt(median(nodeForFrame), 1)} ms`),
);
report({
  bench: 'startup',
  ratio: fmt(helpRatio),
  target: 3,
  peakRssMb: fmt(timed(['node', cli, '--help']).peakRssMb, 1),
  pass: helpPass && framePass,
  runs,
  helpMs: fmt(median(help), 1),
  nodeMs: fmt(median(nodeForHelp), 1),
  helpPass,
  inkLoadedByHelp: inkLoaded,
  helpModules: modules.length,
  firstFrameRatio: frameRatio === null ? null : fmt(frameRatio),
  firstFrameTarget: 10,
  firstFrameMs: frameError ? null : fmt(median(frame), 1),
  firstFrameNodeMs: frameError ? null : fmt(median(nodeForFrame), 1),
  firstFramePass: framePass,
  ...(frameError ? { firstFrameError: frameError } : {}),
});
