/**
 * The drill as a trainer runs it (issue 17), the real binary in a terminal (tmux): the first screen is the scenario's
 * briefing — what happened, the Talos version, the time limit, the task, the incident folder — without the right
 * answer; the simulated cluster does not start (its clock does not run) until Enter begins the drill. Skipped,
 * saying so, without tmux. The tmux server is always killed; the simulator listens on loopback only.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findPackageRoot } from '../../src/paths.js';
import { loadScenario } from '../../src/sim/scenario.js';

const cli = join(findPackageRoot(), 'dist/src/cli.js');
const hasTmux = spawnSync('tmux', ['-V']).status === 0;
const socket = `talos-dr-briefing-${process.pid}-${Date.now()}`;
const tmux = (...args: string[]) => execFileSync('tmux', ['-L', socket, ...args], { encoding: 'utf8' });
/** The screen as one line of words (-J joins what the terminal folded). */
const screen = () => tmux('capture-pane', '-p', '-J', '-t', 'drill', '-S', '-100');
const words = (s: string) => s.replace(/\s+/g, ' ');

async function waitFor(ok: (s: string) => boolean, what: string, ms = 60_000): Promise<string> {
  const end = Date.now() + ms;
  let s = screen();
  while (!ok(s)) {
    if (Date.now() > end || (/exit code \d+/.test(s) && !what.includes('exit')))
      throw new Error(`the screen never showed ${what}:\n${s}`);
    await new Promise((r) => setTimeout(r, 150));
    s = screen();
  }
  return s;
}

describe.skipIf(!hasTmux)('the drill briefing in a terminal (tmux)', () => {
  let dir: string;

  beforeAll(() => {
    if (!existsSync(cli)) throw new Error(`${cli} is missing: run "npm run build" first (npm test does).`);
    dir = mkdtempSync(join(tmpdir(), 'talos-dr-briefing-'));
  });

  afterAll(() => {
    spawnSync('tmux', ['-L', socket, 'kill-server']);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('briefs first, starts the cluster only on Enter, then asks the first question', async () => {
    const incident = join(dir, 'incident');
    const command = [
      'env -u CI -u CONTINUOUS_INTEGRATION TALOS_DR_DRILL_SPEED=10 NO_COLOR=1',
      `${JSON.stringify(process.execPath)} ${JSON.stringify(cli)} drill --scenario member-unreachable --dir ${JSON.stringify(incident)};`,
      'echo "exit code $?"; sleep 600',
    ].join(' ');
    tmux('new-session', '-d', '-s', 'drill', '-x', '80', '-y', '24', '-c', dir, command);

    const scenario = loadScenario('member-unreachable');
    const s = await waitFor((x) => x.includes('Enter begin the drill'), 'the briefing');
    expect(s).toContain(`Briefing — member-unreachable · Talos ${scenario.talosVersion}`);
    expect(words(s)).toContain(scenario.description);
    expect(words(s)).toContain('Your task:');
    expect(s).toContain(incident);
    expect(words(s)).not.toContain(scenario.rightAnswer);
    expect(s).not.toMatch(/right answer|nothing-to-do/i);
    // the simulated cluster has not started: no talosconfig, no saved cluster, nothing asked
    await new Promise((r) => setTimeout(r, 1500));
    expect(existsSync(join(incident, 'sim', 'talosconfig'))).toBe(false);
    expect(existsSync(join(incident, 'sim-state.json'))).toBe(false);

    tmux('send-keys', '-t', 'drill', 'Enter');
    await waitFor((x) => /\[y\/n\]|Enter choose/i.test(x), 'the first question');
    expect(existsSync(join(incident, 'sim', 'talosconfig'))).toBe(true);

    tmux('send-keys', '-t', 'drill', 'q');
    const end = await waitFor((x) => x.includes('exit code'), 'the exit after q');
    expect(end).toMatch(/exit code 3/);
  }, 120_000);
});
