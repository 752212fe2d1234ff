import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync, chmodSync, mkdirSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { listScenarios } from '../../src/sim/index.js';
import { randomAddressBase } from './helpers.js';

const CLI = resolve('dist/src/cli.js');
const work = mkdtempSync(join(tmpdir(), 'talos-dr-simcmd-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const built = existsSync(CLI);

function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });
}

function run(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe.skipIf(!built)('talos-dr sim (run "npm run build" first)', () => {
  it('prints one ready line, serves, and on SIGTERM exits 0 leaving nothing listening', async () => {
    const dir = join(work, 'run');
    const base = randomAddressBase();
    const child = spawn(
      process.execPath,
      [CLI, 'sim', '--scenario', 'lost-quorum', '--dir', dir, '--port', '0', '--address-base', base],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    const start = Date.now();
    while (!stdout.includes('\n') && Date.now() - start < 20_000 && child.exitCode === null)
      await new Promise((r) => setTimeout(r, 25));
    const line = stdout.trim();
    const match = /^ready endpoints=(\S+) nodes=(\S+) talosconfig=(\S+)$/.exec(line);
    expect(match, `stdout: ${stdout} stderr: ${stderr}`).not.toBeNull();
    const endpoints = match![1]!.split(',');
    expect(match![2]!.split(',')).toHaveLength(3);
    expect(match![3]).toBe(join(dir, 'talosconfig'));
    expect(existsSync(join(dir, 'talosconfig'))).toBe(true);
    const [host, port] = endpoints[0]!.split(':') as [string, string];
    expect(host).toBe(base);
    expect(await canConnect(host, Number(port))).toBe(true);
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(stdout.trim().split('\n')).toHaveLength(1);
    expect(stderr).toBe('');
    for (const endpoint of endpoints) {
      const [h, p] = endpoint.split(':') as [string, string];
      expect(await canConnect(h, Number(p))).toBe(false);
    }
  });

  it('refuses an unknown scenario, an existing talosconfig, an unwritable dir and a busy port, one sentence each', async () => {
    const unknown = run(['sim', '--scenario', 'nope', '--dir', join(work, 'u')]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toBe(
      `There is no scenario "nope"; run "talos-dr drill --list" to see the ${listScenarios().length} scenarios.\n`,
    );

    const existing = join(work, 'existing');
    mkdirSync(existing);
    writeFileSync(join(existing, 'talosconfig'), 'context: mine\n');
    const refused = run([
      'sim',
      '--scenario',
      'lost-quorum',
      '--dir',
      existing,
      '--port',
      '0',
      '--address-base',
      randomAddressBase(),
    ]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(
      /talosconfig already exists; the simulator never overwrites a talosconfig, so pick another --dir or remove it\.\n$/,
    );

    if (process.getuid?.() !== 0) {
      const locked = join(work, 'locked');
      mkdirSync(locked);
      chmodSync(locked, 0o500);
      const unwritable = run([
        'sim',
        '--scenario',
        'lost-quorum',
        '--dir',
        join(locked, 'sub'),
        '--port',
        '0',
        '--address-base',
        randomAddressBase(),
      ]);
      expect(unwritable.code).toBe(1);
      expect(unwritable.stderr).toMatch(/^Cannot write to .*; pick a folder you can write to with --dir\.\n$/);
    }

    const base = randomAddressBase();
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, base, () => r()));
    const port = (blocker.address() as { port: number }).port;
    try {
      const busy = run([
        'sim',
        '--scenario',
        'lost-quorum',
        '--dir',
        join(work, 'busy'),
        '--port',
        String(port),
        '--address-base',
        base,
      ]);
      expect(busy.code).toBe(1);
      expect(busy.stderr).toBe(
        `Port ${port} is already in use on ${base}; pick another with --port (0 picks a free one) or another --address-base.\n`,
      );
    } finally {
      blocker.close();
    }

    const usage = run(['sim', '--dir', join(work, 'x')]);
    expect(usage.code).toBe(2);
    expect(usage.stderr.split('\n').filter(Boolean)).toHaveLength(1);
  });
});
