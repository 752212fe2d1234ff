/**
 * The real binary in a real terminal: `talos-dr drill` (interactive, not --autopilot) runs inside a tmux pane of
 * 100×30, driven by keystrokes (send-keys) and read back with capture-pane, through a whole lost-quorum drill to the
 * final screen. `CI` is removed from the child's environment: Ink renders no intermediate frames when it believes it
 * runs in CI, and no prompt would ever appear. Skipped, saying so, when tmux is not installed. The tmux server is
 * always killed, and the simulator only listens on loopback.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findPackageRoot } from '../../src/paths.js';

const cli = join(findPackageRoot(), 'dist/src/cli.js');
const hasTmux = spawnSync('tmux', ['-V']).status === 0;
const socket = `talos-dr-e2e-${process.pid}-${Date.now()}`;
const tmux = (...args: string[]) => execFileSync('tmux', ['-L', socket, ...args], { encoding: 'utf8' });

/** The visible screen plus recent scrollback (finished steps scroll up as <Static> history). */
const screen = () => tmux('capture-pane', '-p', '-t', 'drill', '-S', '-200');

async function waitFor(ok: (s: string) => boolean, what: string, ms = 60_000): Promise<string> {
  const end = Date.now() + ms;
  let s = screen();
  while (!ok(s)) {
    // the CLI ended early (an error sentence, a refusal): no point waiting for anything else
    if (Date.now() > end || (/exit code \d+/.test(s) && !what.includes('exit')))
      throw new Error(`the screen never showed ${what}:\n${s}`);
    await new Promise((r) => setTimeout(r, 150));
    s = screen();
  }
  return s;
}

/** Type text, then press Enter as its own keystroke (a paste ending in a newline never confirms). */
async function typeAndEnter(text: string): Promise<void> {
  tmux('send-keys', '-t', 'drill', '-l', text);
  await new Promise((r) => setTimeout(r, 300));
  tmux('send-keys', '-t', 'drill', 'Enter');
}

const visible = () => tmux('capture-pane', '-p', '-t', 'drill');

describe.skipIf(!hasTmux)('talos-dr drill in a terminal (tmux)', () => {
  let dir: string;

  beforeAll(() => {
    if (!existsSync(cli)) throw new Error(`${cli} is missing: run "npm run build" first (npm test does).`);
    dir = mkdtempSync(join(tmpdir(), 'talos-dr-e2e-'));
    // The pane keeps the final screen: after the CLI exits, its exit code is printed and the shell waits. The drills'
    // speed of 100, as every other drill test (was 10: each simulated reboot took 4.5 s of wall time; an interactive
    // drill's time limit is only shown, nothing waits for a screen between the prompts).
    const command = [
      'env -u CI -u CONTINUOUS_INTEGRATION TALOS_DR_DRILL_SPEED=100 NO_COLOR=1',
      `${JSON.stringify(process.execPath)} ${JSON.stringify(cli)} drill --dir ${JSON.stringify(join(dir, 'incident'))};`,
      'echo "exit code $?"; sleep 600',
    ].join(' ');
    tmux('new-session', '-d', '-s', 'drill', '-x', '100', '-y', '30', '-c', dir, command);
  });

  afterAll(() => {
    spawnSync('tmux', ['-L', socket, 'kill-server']);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('recovers a lost-quorum cluster by keystrokes and ends on the score and the outcome line', async () => {
    // the scenario's briefing first, with the incident folder; Enter begins the drill
    let s = await waitFor((x) => x.includes('Briefing — lost-quorum'), 'the briefing');
    expect(s).toContain(join(dir, 'incident'));
    tmux('send-keys', '-t', 'drill', 'Enter');
    // the first question's default (what Enter answers) is the screen's to choose: [y/N], [Y/n] or [y/n]
    s = await waitFor((x) => /\[y\/n\]/i.test(x), 'the first question');
    expect(s).toContain('DRILL · simulated cluster · scenario lost-quorum');
    expect(s).toContain('context talos-dr-sim');
    tmux('send-keys', '-t', 'drill', 'y');

    s = await waitFor((x) => x.includes('Where should the snapshot come from?'), 'the snapshot choice');
    expect(s).toMatch(/❯ 1\. take a consistent snapshot from \S+ \(freshest member\)/);
    tmux('send-keys', '-t', 'drill', 'Enter');

    // The first destructive prompt: a wrong address is refused, on screen, before anything is wiped.
    s = await waitFor((x) => /Type \S+ to confirm/.test(visible()) || x.includes('outcome:'), 'a destructive prompt');
    const first = /Type (\S+) to confirm/.exec(visible())?.[1] as string;
    const wrong = first.replace(/\.(\d+)$/, (_, d: string) => `.${Number(d) + 10}`);
    await typeAndEnter(wrong);
    await waitFor(() => visible().includes(`"${wrong}" is not the target node`), 'the refusal of a wrong address');

    // Every destructive step: type exactly the node the screen names.
    const typed: string[] = [];
    for (;;) {
      s = await waitFor(
        () => {
          const v = visible();
          const target = /Type (\S+) to confirm/.exec(v)?.[1];
          return (
            v.includes('outcome:') ||
            v.includes('Restart kubelet on') ||
            (target !== undefined &&
              !v.includes(`to confirm: ${target}`) &&
              (typed.at(-1) !== target || v.includes('Upload the snapshot')))
          );
        },
        'the next confirmation or the outcome',
        120_000,
      );
      const v = visible();
      if (v.includes('outcome:') || v.includes('Restart kubelet on')) break;
      const target = /Type (\S+) to confirm/.exec(v)?.[1] as string;
      await typeAndEnter(target);
      typed.push(target);
      await waitFor(
        () => !visible().includes(`Type ${target} to confirm: ▏`) || visible().includes('outcome:'),
        `the prompt for ${target} to close`,
      );
      if (typed.length > 8) throw new Error(`too many confirmations: ${typed.join(', ')}`);
    }

    // step 10: the kubelet restarts after the restore, asked once with yes as the default
    s = await waitFor((x) => x.includes('Restart kubelet on') || x.includes('outcome:'), 'the kubelet question');
    expect(s).toContain('step 10 of 10: After the restore');
    expect(s).toContain('Go ahead? [Y/n]');
    tmux('send-keys', '-t', 'drill', 'y');

    s = await waitFor((x) => x.includes('exit code'), 'the exit of the process', 60_000);
    const final = visible();
    expect(final).toContain('✓ etcd recovered');
    expect(final).toContain('Drill score — lost-quorum');
    expect(final).toContain('✓ correct call');
    expect(final).toContain('mistakes the guards stopped: 1');
    expect(final).toMatch(/outcome: recovered\s*\n\s*exit code 0/);
    // the history of finished steps scrolled up above the live region, one line each
    for (const n of [1, 2, 3, 4, 6, 7, 8, 9, 10]) expect(s).toMatch(new RegExp(`✓ ${n}/10 `));
    // three wipes and one bootstrap, each typed by address
    expect(typed).toHaveLength(4);
    expect(new Set(typed.slice(0, 3)).size).toBe(3);
  }, 240_000);
});
