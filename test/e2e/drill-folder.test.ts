/**
 * The drill as a trainer runs it (issue 17): started from the source checkout without --dir, in a terminal (tmux),
 * the real binary. Its incident folder is not in the checkout but under $XDG_STATE_HOME/talos-dr, named on the first
 * screen; q prints a resume command that works when pasted as it is after `npm ci` (talos-dr is not on PATH then),
 * from another folder. Before: the folder was made in the current folder, not named until q, and the printed
 * command was `talos-dr resume …`. Skipped, saying so, without tmux.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findPackageRoot } from '../../src/paths.js';

const root = findPackageRoot();
const cli = join(root, 'dist/src/cli.js');
const hasTmux = spawnSync('tmux', ['-V']).status === 0;
const socket = `talos-dr-drill-folder-${process.pid}-${Date.now()}`;
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

describe.skipIf(!hasTmux)('a drill started from the checkout without --dir (tmux)', () => {
  let state: string;
  let elsewhere: string;
  const before = new Set<string>();

  beforeAll(() => {
    if (!existsSync(cli)) throw new Error(`${cli} is missing: run "npm run build" first (npm test does).`);
    state = mkdtempSync(join(tmpdir(), 'talos-dr-state-'));
    elsewhere = mkdtempSync(join(tmpdir(), 'talos-dr-elsewhere-'));
    for (const name of readdirSync(root)) before.add(name);
  });

  afterAll(() => {
    spawnSync('tmux', ['-L', socket, 'kill-server']);
    for (const d of [state, elsewhere]) if (d) rmSync(d, { recursive: true, force: true });
  });

  it('keeps its folder out of the checkout, names it on the first screen, and prints a resume that works', async () => {
    const env = `env -u CI -u CONTINUOUS_INTEGRATION NO_COLOR=1 TALOS_DR_DRILL_SPEED=10 XDG_STATE_HOME=${state}`;
    // as README says: from the clone, after npm ci
    tmux(
      'new-session',
      '-d',
      '-s',
      'first',
      '-x',
      '200',
      '-y',
      '40',
      '-c',
      root,
      `${env} npm run --silent drill; echo "exit code $?"; sleep 600`,
    );
    // the scenario's briefing first (the folder is printed above it); Enter begins the drill
    await waitFor('first', (x) => x.includes('Briefing — '), 'the briefing');
    tmux('send-keys', '-t', 'first', 'Enter');
    const first = await waitFor('first', (x) => /\[y\/n\]/i.test(x), 'the first question');
    const folder = /incident folder: (\S+)/.exec(first)?.[1] as string;
    expect(folder).toMatch(new RegExp(`^${state}/talos-dr/talos-dr-talos-dr-sim-\\d{8}T\\d{6}Z$`));
    expect(existsSync(join(folder, 'state.json'))).toBe(true);
    // nothing new in the checkout
    expect(readdirSync(root).filter((n) => !before.has(n) && n.startsWith('talos-dr-'))).toEqual([]);

    tmux('send-keys', '-t', 'first', 'q');
    const s = await waitFor('first', (x) => x.includes('exit code'), 'the exit after q');
    const lines = s.split('\n');
    const pasted = lines[lines.findIndex((l) => l.includes('To continue:')) + 1]?.trim() as string;
    expect(pasted).toMatch(new RegExp(` resume ${folder}$`));

    tmux(
      'new-session',
      '-d',
      '-s',
      'second',
      '-x',
      '200',
      '-y',
      '40',
      '-c',
      elsewhere,
      `${env} ${pasted}; echo "exit code $?"; sleep 600`,
    );
    const resumed = await waitFor('second', (x) => /\[y\/n\]/i.test(x), 'the resumed drill');
    expect(resumed).toContain(`resuming the drill in ${folder}`);
    tmux('send-keys', '-t', 'second', 'q');
    await waitFor('second', (x) => x.includes('exit code'), 'the exit of the resumed drill');
  }, 120_000);
});
