/**
 * `talos-dr snapshot` in a terminal against a node whose etcd does not serve (the simulator keeps EtcdSnapshot open
 * with no byte, as real Talos does: talos#14212): the progress line shows 0 B/s while it waits, and the first-byte
 * watchdog (20 s) stops the call with the sentence that names the next source. The built CLI (dist/, `npm run build`).
 */
import { afterEach, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findPackageRoot } from '../../src/paths.js';
import { startSimulator } from '../../src/sim/index.js';
import type { SimCluster } from '../../src/sim/types.js';

const cli = join(findPackageRoot(), 'dist/src/cli.js');
const hasScript = spawnSync('script', ['--version']).status === 0;

let sim: SimCluster | null = null;
let dir = '';

afterEach(async () => {
  await sim?.stop();
  sim = null;
  if (dir) rmSync(dir, { recursive: true, force: true });
});

it.skipIf(!hasScript)(
  'a snapshot that never streams a byte: 0 B/s on screen while it waits, then stopped after 20 s with the next source named',
  async () => {
    dir = mkdtempSync(join(tmpdir(), 'talos-dr-stall-cli-'));
    const base = `127.${1 + Math.floor(Math.random() * 250)}.${1 + Math.floor(Math.random() * 250)}.2`;
    sim = await startSimulator({
      scenario: 'etcd-down-raw-copy',
      dir: join(dir, 'sim'),
      port: 0,
      addressBase: base,
      speed: 1000,
    });
    const node = sim.nodes[0]!;
    const out = join(dir, 'out');
    const env: NodeJS.ProcessEnv = { ...process.env, TERM: 'xterm', NO_COLOR: '1' };
    delete env.CI;
    delete env.CONTINUOUS_INTEGRATION;
    const command = `stty cols 200 rows 24; mkdir ${out}; cd ${out}; exec ${process.execPath} ${cli} snapshot --talosconfig ${sim.talosconfigPath} -n ${node}`;
    // util-linux `script` gives the command a pseudo-terminal, as a user's shell would (async: the simulator answers
    // from this process)
    const child = spawn('script', ['-qfec', command, '/dev/null'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    child.stdin.end();
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    const status = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(status).toBe(1);
    expect(output).toContain(`snapshot from ${node}: 0 B, 0 B/s`);
    const sentence = `${node} sent no byte of the etcd snapshot in 20 s, so the call was stopped: its etcd is probably not serving; take a raw copy of its database or a snapshot from another member instead`;
    expect(output.replace(/\r?\n/g, ' ')).toContain(sentence);
    expect(readdirSync(out)).toEqual([]);
  },
  90_000,
);
