// bench/transfer: the snapshot download (`talos-dr snapshot -n NODE -o FILE`: EtcdSnapshot in 1 KiB chunks, written,
// fsynced, verified) and the recovery upload (EtcdRecover, through bench/upload-driver.mjs over the project's client)
// against the Go reference server of ../shared/tools/talos-ref (grpc-go, as a Talos node), set against the Go
// reference client (talosctl's stack) on the same server. Interleaved runs, medians of whole-process wall time,
// throughput ratio = reference time / our time (> 1: we are faster). The upload both in talosctl's 4 KiB chunks and
// in the client's own chunk size. Then the same through the simulator (`talos-dr sim`, its own process), also
// `snapshot --raw` (Copy, .tar.gz). Peak RSS of our client process.
//
// The upload rows also give the transfer alone (`transferRatio`): the Go client's own printed time (from its stream
// opening to the answer) against the driver's (from etcdRecover's call, connection included, to the answer), so
// Node's start-up and module loading (0.55-0.9 s before the upload begins at load 12) can be told apart from the
// transfer. The process wall time stays the measure the target is judged by.
//
// Env: BENCH_TRANSFER_MB (snapshot size, default 256), BENCH_RUNS (default 3), BENCH_SIM_MB (simulator data, default
//      64), BENCH_SIM=0 skips the simulator part, TALOS_REF_BIN (prebuilt Go binaries; else built into bench/out/).
// PRODUCT.md §5 targets: at least as fast as the Go client (ratio ≥ 1.0), never below 0.8; peak RSS < 150 MB.
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import {
  alternate,
  cli,
  fmt,
  freePort,
  median,
  refBinaries,
  report,
  requireBuilt,
  root,
  startBackground,
  timed,
  waitForPort,
  writePki,
} from './lib.mjs';

requireBuilt();
const sizeMb = Number(process.env.BENCH_TRANSFER_MB ?? 256);
const simMb = Number(process.env.BENCH_SIM_MB ?? 64);
const runs = Number(process.env.BENCH_RUNS ?? 3);
const dir = mkdtempSync(join(tmpdir(), 'bench-transfer-'));
const HOST = '127.0.0.2';

const sha256File = (file) => {
  const r = spawnSync('sha256sum', [file], { encoding: 'utf8' });
  return r.stdout.split(' ')[0];
};

function generate(mb, file) {
  const r = spawnSync(
    process.execPath,
    [join(root, 'bench/gen-snapshot.mjs'), '--size-mb', String(mb), '--out', file],
    {
      encoding: 'utf8',
    },
  );
  if (r.status !== 0) throw new Error(`generating the snapshot failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

/** Times `argv` and removes what it wrote (`outputs`), so the next run starts from the same state. */
const run = (argv, outputs, opts = {}) => {
  try {
    return timed(argv, opts);
  } finally {
    for (const f of outputs) rmSync(f, { force: true });
  }
};

const summary = (samples, name, bytes) => {
  const sec = median(samples[name].map((x) => x.wallSec));
  return {
    medianSec: sec,
    mibPerSec: fmt(bytes / 2 ** 20 / sec, 1),
    peakRssMb: fmt(Math.max(...samples[name].map((x) => x.peakRssMb)), 1),
  };
};

/** The transfer's own seconds as the program printed them: the driver's JSON line, or the Go client's sentence. */
const transferSec = (sample) => {
  const go = /uploaded \d+ bytes in ([0-9.]+)s/.exec(sample.stdout);
  if (go) return Number(go[1]);
  const line = sample.stdout.trim().split('\n').pop() ?? '';
  return line.startsWith('{') ? JSON.parse(line).seconds : NaN;
};
const transferRatio = (samples, name) =>
  fmt(median(samples.go.map(transferSec)) / median(samples[name].map(transferSec)));

async function againstReferenceServer(ref) {
  const file = join(dir, 'snapshot.db');
  const gen = generate(sizeMb, file);
  const bytes = gen.bytes;
  const port = await freePort(HOST);
  const pki = await writePki(dir, { ips: [HOST], endpoints: [`${HOST}:${port}`], nodes: [HOST] });
  const uploaded = join(dir, 'uploaded.db');
  const server = await startBackground([
    ref.server,
    '-l',
    `${HOST}:${port}`,
    '-f',
    file,
    '-o',
    uploaded,
    '-ca',
    pki.ca,
    '-crt',
    pki.serverCrt,
    '-key',
    pki.serverKey,
  ]);
  try {
    await waitForPort(HOST, port);
    const out = join(dir, 'out.db');
    const refArgs = ['-e', `${HOST}:${port}`, '-n', HOST, '-ca', pki.ca, '-crt', pki.clientCrt, '-key', pki.clientKey];
    const ours = ['node', cli, '--talosconfig', pki.talosconfig];

    // Correctness once: what we download is the file, what we upload lands whole.
    const first = timed([...ours, 'snapshot', '-n', HOST, '-o', out, '--json']);
    const got = JSON.parse(first.stdout);
    if (got.report.sha256 !== sha256File(file) || !got.report.usable) throw new Error('the download differs');
    rmSync(out, { force: true });
    rmSync(`${out}.sha256`, { force: true });

    const download = alternate(
      {
        ours: () => run([...ours, 'snapshot', '-n', HOST, '-o', out], [out, `${out}.sha256`]),
        go: () => run([ref.client, ...refArgs, '-o', out], [out]),
      },
      runs,
    );

    // Exit 1 is tolerated because an older client read the reference server's empty EtcdRecover answer (no
    // `messages`) as "no answer"; the bytes that landed are what is checked.
    const upload = (chunk) => () =>
      run(
        ['node', join(root, 'bench/upload-driver.mjs'), '--talosconfig', pki.talosconfig, '-n', HOST, ...chunk, file],
        [],
        { allowExit: [0, 1] },
      );
    upload(['--chunk', '4096'])();
    const landed4k = sha256File(uploaded) === sha256File(file);
    upload([])();
    const landedOwn = sha256File(uploaded) === sha256File(file);
    if (!landed4k || !landedOwn) throw new Error('an upload did not land whole on the reference server');
    const up = alternate(
      {
        ours4k: upload(['--chunk', '4096']),
        oursOwn: upload([]),
        go: () => run([ref.client, ...refArgs, '-mode', 'recover', '-i', file], []),
      },
      runs,
    );
    const ownChunk = JSON.parse(
      spawnSync(
        process.execPath,
        [
          '-e',
          `import(${JSON.stringify(join(root, 'dist/src/talos/client.js'))}).then(m=>console.log(m.DEFAULT_UPLOAD_CHUNK_BYTES))`,
        ],
        { encoding: 'utf8' },
      ).stdout,
    );
    const d = { ours: summary(download, 'ours', bytes), go: summary(download, 'go', bytes) };
    const u = {
      ours4k: summary(up, 'ours4k', bytes),
      oursOwn: summary(up, 'oursOwn', bytes),
      go: summary(up, 'go', bytes),
    };
    return {
      bytes,
      download: { ...d, ratio: fmt(d.go.medianSec / d.ours.medianSec) },
      upload4k: {
        ours: u.ours4k,
        go: u.go,
        ratio: fmt(u.go.medianSec / u.ours4k.medianSec),
        transferRatio: transferRatio(up, 'ours4k'),
      },
      uploadOwnChunk: {
        chunkSize: ownChunk,
        ours: u.oursOwn,
        go: u.go,
        ratio: fmt(u.go.medianSec / u.oursOwn.medianSec),
        transferRatio: transferRatio(up, 'oursOwn'),
      },
    };
  } finally {
    await server.stop();
    rmSync(file, { force: true });
    rmSync(uploaded, { force: true });
  }
}

/** talosconfig → PEM files the Go client takes (plain `PRIVATE KEY` label). */
async function pemFilesFrom(talosconfig, into) {
  const { parse } = await import('yaml');
  const doc = parse(readFileSync(talosconfig, 'utf8'));
  const ctx = doc.contexts[doc.context];
  const dec = (b64) => Buffer.from(b64, 'base64').toString('utf8');
  const files = { ca: join(into, 'sim-ca.crt'), crt: join(into, 'sim-client.crt'), key: join(into, 'sim-client.key') };
  writeFileSync(files.ca, dec(ctx.ca));
  writeFileSync(files.crt, dec(ctx.crt));
  writeFileSync(
    files.key,
    dec(ctx.key).replace(/-----(BEGIN|END) ED25519 PRIVATE KEY-----/g, '-----$1 PRIVATE KEY-----'),
  );
  return files;
}

async function throughSimulator(ref) {
  const simDir = join(dir, 'sim');
  mkdirSync(simDir);
  // One healthy control-plane node whose etcd holds about BENCH_SIM_MB of data.
  const valueBytes = 16384;
  const keys = Math.min(200000, Math.ceil((simMb * 2 ** 20) / valueBytes));
  const scenario = join(dir, 'bench-transfer.yaml');
  writeFileSync(
    scenario,
    [
      'name: bench-transfer',
      'description: One healthy control-plane node with a large etcd database, for the transfer benchmark.',
      'expectedOutcome: nothing-to-do',
      'rightAnswer: nothing to do; etcd is healthy.',
      'timeLimitSec: 600',
      `data: { keys: ${keys}, valueBytes: ${valueBytes} }`,
      'nodes:',
      '  - { hostname: cp-1, type: controlplane, etcd: healthy }',
      'given:',
      '  configs: [cp-1]',
      '',
    ].join('\n'),
  );
  const port = await freePort('127.0.0.3');
  const sim = await startBackground([
    'node',
    cli,
    'sim',
    '--scenario',
    scenario,
    '--dir',
    simDir,
    '--port',
    String(port),
    '--address-base',
    '127.0.0.3',
  ]);
  try {
    let ready;
    try {
      ready = await sim.waitFor(/^ready endpoints=(\S+) nodes=(\S+) talosconfig=(\S+)/m, 120000);
    } catch (error) {
      return { skipped: `the simulator did not start: ${error.message.split('\n')[0].slice(0, 300)}` };
    }
    const [, endpoints, nodes, talosconfig] = ready;
    const node = nodes.split(',')[0];
    const endpoint = endpoints.split(',')[0];
    const pem = await pemFilesFrom(talosconfig, dir);
    const out = join(dir, 'sim-out.db');
    const ours = ['node', cli, '--talosconfig', talosconfig];
    const first = JSON.parse(timed([...ours, 'snapshot', '-n', node, '-o', out, '--json']).stdout);
    rmSync(out, { force: true });
    rmSync(`${out}.sha256`, { force: true });
    const bytes = first.bytes;
    const samples = alternate(
      {
        ours: () => run([...ours, 'snapshot', '-n', node, '-o', out], [out, `${out}.sha256`]),
        oursRaw: () => run([...ours, 'snapshot', '--raw', '-n', node, '-o', out], [out, `${out}.sha256`]),
        go: () =>
          run(
            [ref.client, '-e', endpoint, '-n', node, '-ca', pem.ca, '-crt', pem.crt, '-key', pem.key, '-o', out],
            [out],
          ),
      },
      runs,
    );
    const s = {
      ours: summary(samples, 'ours', bytes),
      oursRaw: summary(samples, 'oursRaw', bytes),
      go: summary(samples, 'go', bytes),
    };
    return {
      bytes,
      download: { ours: s.ours, go: s.go, ratio: fmt(s.go.medianSec / s.ours.medianSec) },
      rawCopy: { ours: s.oursRaw, ratioToApiDownload: fmt(s.ours.medianSec / s.oursRaw.medianSec) },
    };
  } catch (error) {
    return { skipped: `the simulator runs failed: ${error.message.split('\n')[0].slice(0, 300)}` };
  } finally {
    await sim.stop();
  }
}

let result;
const loadAtStart = loadavg()[0];
try {
  const ref = refBinaries();
  const server = await againstReferenceServer(ref);
  console.error(`transfer: reference server: ${JSON.stringify(server)}`);
  const simulator = process.env.BENCH_SIM === '0' ? { skipped: 'BENCH_SIM=0' } : await throughSimulator(ref);
  console.error(`transfer: simulator: ${JSON.stringify(simulator)}`);
  // The target is for what the tool does: the download and the upload in its own chunk size. talosctl's 4 KiB chunks
  // are reported beside it (upload4kRatio), as PRODUCT.md §5 asks, but the tool never uploads that way.
  const ratios = [server.download.ratio, server.uploadOwnChunk.ratio];
  const peakRssMb = Math.max(
    server.download.ours.peakRssMb,
    server.upload4k.ours.peakRssMb,
    server.uploadOwnChunk.ours.peakRssMb,
    simulator.download?.ours.peakRssMb ?? 0,
    simulator.rawCopy?.ours.peakRssMb ?? 0,
  );
  const ratio = Math.min(...ratios);
  result = {
    bench: 'transfer',
    ratio,
    target: 1.0,
    floor: 0.8,
    peakRssMb: fmt(peakRssMb, 1),
    pass: ratio >= 1.0 && peakRssMb < 150,
    aboveFloor: ratio >= 0.8,
    sizeMb,
    runs,
    downloadRatio: server.download.ratio,
    loadAvg: [fmt(loadAtStart, 1), fmt(loadavg()[0], 1)],
    upload4kRatio: server.upload4k.ratio,
    upload4kTransferRatio: server.upload4k.transferRatio,
    upload4kAboveFloor: server.upload4k.ratio >= 0.8,
    uploadOwnChunkRatio: server.uploadOwnChunk.ratio,
    uploadOwnChunkTransferRatio: server.uploadOwnChunk.transferRatio,
    uploadOwnChunkSize: server.uploadOwnChunk.chunkSize,
    referenceServer: server,
    simulator,
  };
} finally {
  rmSync(dir, { recursive: true, force: true });
}
report(result);
