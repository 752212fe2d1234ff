/**
 * runInteractive(), the entry the commands call: it refuses without a terminal (naming the headless alternative),
 * and however the screen ends it flushes state, stops the actor and returns the exit code of PRODUCT.md §2.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createActor } from 'xstate';
import { closeStartingScreen, openStartingScreen, runInteractive } from '../../src/commands/interactive.js';
import { StartingScreen } from '../../components/StartingScreen.js';
import { ThemeProvider } from '../../components/theme.js';
import { UsageError } from '../../src/errors.js';
import { colorFromEnv } from '../../components/theme.js';
import { fakeCluster, NODES } from './fake-cluster.js';
import {
  cleanupSized,
  type FakeStdin,
  type FakeStdout,
  fakeTerminal,
  flush,
  KEYS,
  renderSized,
  widest,
} from './helpers.js';

function session() {
  const cluster = fakeCluster();
  const actor = createActor(cluster.machine, {
    input: { nodes: NODES, operator: 'trainee', mode: 'drill', timing: { pollMs: 20, backoffMs: 10 } },
  });
  actor.start();
  return { cluster, actor };
}

/** Waits (condition-based, at most `ms`) until `ok` holds: frames arrive after Ink's throttle and a dynamic import. */
async function until(ok: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok() && Date.now() < end) await flush();
}

const streams = () => fakeTerminal().streams;

describe('runInteractive', () => {
  it('refuses without a terminal, naming the headless alternative', async () => {
    const { actor } = session();
    const io = streams();
    (io.stdin as unknown as FakeStdin).isTTY = false;
    const run = runInteractive({
      actor,
      incidentDir: '/tmp/x',
      context: 'c',
      headlessAlternative: 'talos-dr drill --autopilot',
      ...io,
    });
    await expect(run).rejects.toBeInstanceOf(UsageError);
    await expect(run).rejects.toThrow(
      'This command needs an interactive terminal; without one, use talos-dr drill --autopilot.',
    );
    actor.stop();
  });

  it('q: flushes, stops the actor, exit code 3, and the last frame says how to resume', async () => {
    const { actor } = session();
    const io = streams();
    const flushState = vi.fn(async () => {});
    const run = runInteractive({ actor, incidentDir: '/tmp/inc', context: 'talos-dr-sim', flush: flushState, ...io });
    const out = io.stdout as unknown as FakeStdout;
    const stdin = io.stdin as unknown as FakeStdin;
    await until(() => out.frames.some((f) => f.includes('[Y/n]')));
    stdin.write('q');
    await expect(run).resolves.toBe(3);
    expect(flushState).toHaveBeenCalledTimes(1);
    expect(actor.getSnapshot().status).toBe('stopped');
    expect(out.frames.join('')).toContain('talos-dr resume /tmp/inc');
  });

  it('SIGINT/SIGTERM (the command signal) closes the screen like q', async () => {
    const { actor } = session();
    const controller = new AbortController();
    const run = runInteractive({
      actor,
      incidentDir: '/tmp/inc',
      context: 'c',
      signal: controller.signal,
      ...streams(),
    });
    await flush();
    controller.abort();
    await expect(run).resolves.toBe(3);
  });

  it('NO_COLOR set to anything non-empty turns colour off', () => {
    expect(colorFromEnv({ NO_COLOR: '1' })).toBe(false);
    expect(colorFromEnv({ NO_COLOR: '' })).toBe(true);
    expect(colorFromEnv({})).toBe(true);
  });
});

/* eslint-disable no-control-regex -- the first-frame tests look at Ink's escape sequences on purpose */
const ESC = /\u001B\[[0-9;?]*[A-Za-z]/g;
const COLOUR = /\u001B\[(3[0-8]|9[0-7])[;m]/;
const ERASE_LINE = /\u001B\[2K/;
/* eslint-enable no-control-regex */
/** A frame's text as a terminal shows it: Ink's erase and cursor sequences removed. */
const plain = (s: string) => s.replace(ESC, '');

describe('the first frame (drawn before the cluster is reached)', () => {
  afterEach(cleanupSized);
  const drill = { scenario: 'lost-quorum' };

  it('shows where the user is: drill banner, context, the ten steps, what is being done, how to quit', async () => {
    const { lastFrame } = renderSized(
      <ThemeProvider color={false}>
        <StartingScreen context="talos-dr-sim" drill={drill} status="Starting the drill cluster" since={Date.now()} />
      </ThemeProvider>,
    );
    await flush();
    const frame = lastFrame() ?? '';
    expect(frame).toContain('DRILL · simulated cluster · scenario lost-quorum');
    expect(frame).toContain('talos-dr · context talos-dr-sim · endpoint connecting…');
    expect(frame).toContain('step 1 of 10: Connect');
    expect(frame).toContain('▸ 1/10 Connect');
    expect(frame).toContain('· 9/10 Verify');
    expect(frame).toContain('· 10/10 After the restore');
    expect(frame).toMatch(/Starting the drill cluster… \(0:0\d\)/);
    expect(frame).toContain('Nothing has been asked or changed yet.');
    expect(frame).toContain('q quit');
    // fits 80×24 (the live region stays shorter than the terminal), and says every state in words, not colour
    expect(widest(frame)).toBeLessThanOrEqual(80);
    expect(frame.split('\n').length).toBeLessThan(24);
    expect(frame).not.toMatch(COLOUR);
  });

  it('a real cluster before its talosconfig is read; a short terminal gets the one-line step list', async () => {
    const { lastFrame } = renderSized(<StartingScreen status="Reading the talosconfig" since={Date.now()} />, {
      columns: 80,
      rows: 12,
    });
    await flush();
    const frame = lastFrame() ?? '';
    expect(frame).not.toContain('DRILL');
    expect(frame).toContain('context reading the talosconfig…');
    expect(frame).toContain('· next: 2 Assess · 3 Snapshot');
    expect(frame.split('\n').length).toBeLessThan(12);
  });

  it('q (or Ctrl-C) asks the command to stop, once, and says the state is saved when the wizard is up', async () => {
    const onQuit = vi.fn();
    const { lastFrame, stdin } = renderSized(
      <StartingScreen drill={drill} status="Starting the drill cluster" since={Date.now()} onQuit={onQuit} />,
    );
    await flush();
    stdin.write(KEYS.ctrlC);
    await flush();
    stdin.write('q');
    await flush();
    expect(onQuit).toHaveBeenCalledTimes(1);
    expect(lastFrame()).toContain('Stopping: the state is saved as soon as the wizard is up');
    expect(lastFrame()).not.toContain('q quit');
  });

  it('the wizard takes the first frame over in place: one screen, then the first question, q exits 3', async () => {
    const io = streams();
    const out = io.stdout as unknown as FakeStdout;
    const screen = openStartingScreen({ drill, context: 'talos-dr-sim', status: 'Starting the drill cluster', ...io });
    expect(screen).not.toBeNull();
    await until(() => plain(out.frames.join('')).includes('Starting the drill cluster…'));
    expect(plain(out.frames.join(''))).toContain('Starting the drill cluster…');
    screen?.update('Connecting to the drill cluster');
    await until(() => plain(out.frames.join('')).includes('Connecting to the drill cluster…'));
    expect(plain(out.frames.join(''))).toContain('Connecting to the drill cluster…');
    const { actor } = session();
    const run = runInteractive({ actor, incidentDir: '/tmp/inc', context: 'talos-dr-sim', drill, ...io });
    await until(() => out.frames.some((f) => f.includes('[Y/n]')));
    const text = plain(out.frames.join(''));
    expect(text.indexOf('Starting the drill cluster…')).toBeLessThan(text.indexOf('[Y/n]'));
    // the open frame was adopted: closing it now is a no-op, not a second unmount of the wizard
    await closeStartingScreen();
    await screen?.close();
    (io.stdin as unknown as FakeStdin).write('q');
    await expect(run).resolves.toBe(3);
    expect(out.frames.join('')).toContain('talos-dr resume /tmp/inc');
  });

  it('a stop asked for on the first frame is carried out as soon as the wizard is up (state saved, exit 3)', async () => {
    const io = streams();
    const out = io.stdout as unknown as FakeStdout;
    const controller = new AbortController();
    openStartingScreen({ drill, status: 'Starting the drill cluster', onQuit: () => controller.abort(), ...io });
    await until(() => plain(out.frames.join('')).includes('q quit'));
    (io.stdin as unknown as FakeStdin).write('q');
    await flush();
    expect(controller.signal.aborted).toBe(true);
    const { actor } = session();
    const run = runInteractive({ actor, incidentDir: '/tmp/inc', context: 'c', signal: controller.signal, ...io });
    await expect(run).resolves.toBe(3);
    expect(out.frames.join('')).toContain('talos-dr resume /tmp/inc');
  });

  it('closed without a wizard (the command failed first), it leaves the terminal clear for the error sentence', async () => {
    const io = streams();
    const out = io.stdout as unknown as FakeStdout;
    openStartingScreen({ status: 'Reading the talosconfig', ...io });
    await until(() => plain(out.frames.join('')).includes('Reading the talosconfig…'));
    const before = out.frames.length;
    await closeStartingScreen();
    // the frame is erased (cursor up + erase line), and nothing of it is drawn again
    const after = out.frames.slice(before).join('');
    expect(after).toMatch(ERASE_LINE);
    expect(plain(after)).not.toContain('Reading the talosconfig');
  });

  it('returns null without a terminal (the command refuses or runs headless)', () => {
    const io = streams();
    (io.stdout as unknown as FakeStdout).isTTY = false;
    expect(openStartingScreen({ status: 'x', ...io })).toBeNull();
  });
});
