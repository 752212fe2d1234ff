/**
 * Issue 17 item 2: a real recovery started with --talosconfig (a relative path), --context, -e and -n, stopped with q,
 * continues with the command its screen prints, pasted into a shell in another folder. The real binary in tmux
 * against `talos-dr sim` (loopback only). Before: the screen printed `talos-dr resume DIR` (not on PATH after
 * `npm ci`), and resume forgot the flags. Skipped, saying so, without tmux.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findPackageRoot } from '../../src/paths.js';

const cli = join(findPackageRoot(), 'dist/src/cli.js');
const hasTmux = spawnSync('tmux', ['-V']).status === 0;
const socket = `talos-dr-resume-${process.pid}-${Date.now()}`;
const tmux = (...args: string[]) => execFileSync('tmux', ['-L', socket, ...args], { encoding: 'utf8' });
const screen = (s: string) => tmux('capture-pane', '-p', '-J', '-t', s, '-S', '-200');

async function waitFor(session: string, ok: (s: string) => boolean, what: string, ms = 60_000): Promise<string> {
  const end = Date.now() + ms;
  let s = screen(session);
  while (!ok(s)) {
    if (Date.now() > end || (/exit code \d+/.test(s) && !what.includes('exit')))
      throw new Error(`the screen never showed ${what}:\n${s}`);
    await new Promise((r) => setTimeout(r, 150));
    s = screen(session);
  }
  return s;
}

describe.skipIf(!hasTmux)('resume of a real recovery (tmux, talos-dr sim)', () => {
  let work: string;
  let sim: ChildProcess | undefined;
  let ready = '';

  beforeAll(async () => {
    if (!existsSync(cli)) throw new Error(`${cli} is missing: run "npm run build" first (npm test does).`);
    work = mkdtempSync(join(tmpdir(), 'talos-dr-resume-flags-'));
    sim = spawn(
      process.execPath,
      [
        cli,
        'sim',
        '--scenario',
        'lost-quorum',
        '--dir',
        join(work, 'sim'),
        '--port',
        '0',
        '--address-base',
        '127.0.41.2',
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    ready = await new Promise<string>((resolve, reject) => {
      let out = '';
      sim?.stdout?.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('\n')) resolve(out.split('\n')[0] as string);
      });
      sim?.on('exit', (code) => reject(new Error(`talos-dr sim ended (${code}): ${out}`)));
    });
    // a talosconfig whose current context is not the cluster's: only --context reaches it
    mkdirSync(join(work, 'tc'));
    const text = readFileSync(join(work, 'sim', 'talosconfig'), 'utf8').replace(/^context: .*$/m, 'context: decoy');
    writeFileSync(join(work, 'tc', 'config'), `${text.trimEnd()}\n  decoy:\n    endpoints:\n      - 127.0.0.1:1\n`, {
      mode: 0o600,
    });
  });

  afterAll(() => {
    spawnSync('tmux', ['-L', socket, 'kill-server']);
    sim?.kill('SIGTERM');
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('the printed "To continue" command, pasted in another folder, reaches the same cluster', async () => {
    const endpoint = /endpoints=([^,\s]+)/.exec(ready)?.[1] as string;
    const nodes = /nodes=(\S+)/.exec(ready)?.[1] as string;
    const start = [
      'env -u CI -u CONTINUOUS_INTEGRATION NO_COLOR=1',
      `${JSON.stringify(process.execPath)} ${JSON.stringify(cli)}`,
      `--talosconfig tc/config --context talos-dr-sim -e ${endpoint} -n ${nodes} recover --dir incident;`,
      'echo "exit code $?"; sleep 600',
    ].join(' ');
    tmux('new-session', '-d', '-s', 'first', '-x', '220', '-y', '40', '-c', work, start);
    await waitFor('first', (x) => /\[y\/n\]/i.test(x), 'the first question');
    tmux('send-keys', '-t', 'first', 'q');
    const s = await waitFor('first', (x) => x.includes('exit code'), 'the exit after q');
    const lines = s.split('\n');
    const pasted = lines[lines.findIndex((l) => l.includes('To continue:')) + 1]?.trim() as string;
    expect(pasted).toMatch(/ resume /);
    expect(pasted).toContain(join(work, 'incident'));
    // the flags are kept in the incident folder, readable by its owner only
    expect(statSync(join(work, 'incident', 'connection.json')).mode & 0o777).toBe(0o600);

    // pasted as shown, from another folder, with nothing else typed
    const elsewhere = mkdtempSync(join(tmpdir(), 'talos-dr-elsewhere-'));
    try {
      tmux(
        'new-session',
        '-d',
        '-s',
        'second',
        '-x',
        '220',
        '-y',
        '40',
        '-c',
        elsewhere,
        `env -u CI -u CONTINUOUS_INTEGRATION NO_COLOR=1 ${pasted}; echo "exit code $?"; sleep 600`,
      );
      const resumed = await waitFor('second', (x) => /\[y\/n\]/i.test(x), 'the resumed wizard');
      expect(resumed).toContain('context talos-dr-sim');
      expect(resumed).toContain('3 of 3 nodes answered');
      tmux('send-keys', '-t', 'second', 'q');
      const end = await waitFor('second', (x) => x.includes('exit code'), 'the exit of the resumed wizard');
      expect(end).toContain('To continue:');
    } finally {
      rmSync(elsewhere, { recursive: true, force: true });
    }
  }, 120_000);
});
