/* eslint-disable no-control-regex -- these tests look at Ink's escape sequences on purpose */
/**
 * What the wizard writes to the terminal while nothing happens, and when the window is resized: the live region is
 * redrawn when what it shows changes (its clock ticks once a second), not ten times a second for a spinner, and a
 * resize never clears the screen and the scrollback (the finished steps and everything above the wizard).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { fromPromise } from 'xstate';
import type { AssessOutput } from '../../machines/recovery-types.js';

// Ink draws nothing live in CI (it reads CI once, at import; vitest gives each file its own module graph): this file
// looks at the live drawing, so it asks for it before Ink is imported.
process.env.CI = 'false';
const { startAppScreen } = await import('./app-screen.js');
const { fakeCluster } = await import('./fake-cluster.js');
const { cleanupSized, flush, frameMatching, press } = await import('./helpers.js');

afterEach(cleanupSized);

/** The in-memory cluster, its assessment never answering: the wizard waits, with nothing to press. */
function waitingAtAssess(size: { columns: number; rows: number; debug?: boolean }) {
  const cluster = fakeCluster();
  const machine = cluster.machine.provide({
    actors: { assess: fromPromise<AssessOutput, { nodes: string[] }>(() => new Promise(() => {})) },
  });
  const { actor, screen } = startAppScreen(machine, { size });
  return { actor, screen };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
// Ink's clearTerminal: erase the screen (2J) and the scrollback (3J)
const CLEAR = /\u001B\[2J|\u001B\[3J|\u001Bc/;

describe('what the wizard writes to the terminal', () => {
  it('while it waits with nothing to press, it redraws about once a second (its clock), not ten times', async () => {
    const { actor, screen } = waitingAtAssess({ columns: 80, rows: 24 });
    await frameMatching(screen.lastFrame, (x) => x.includes('Go ahead?'));
    await press(screen.stdin, 'y');
    await frameMatching(screen.lastFrame, (x) => x.includes('Waiting for'));
    // debug mode writes every render: the count is the number of renders
    const before = screen.frames.length;
    const started = Date.now();
    await sleep(1500);
    const renders = screen.frames.length - before;
    const seconds = (Date.now() - started) / 1000;
    // a tick a second, one more for the frame under way: an animated spinner made ~12 a second
    expect(renders).toBeLessThanOrEqual(Math.ceil(seconds) + 2);
    actor.stop();
  });

  it('a resize from 120×40 to 80×24 redraws in place, never clearing screen and scrollback', async () => {
    const { actor, screen } = waitingAtAssess({ columns: 120, rows: 40, debug: false });
    const text = () => screen.frames.join('');
    const until = async (ok: () => boolean) => {
      for (let i = 0; i < 500 && !ok(); i++) await flush();
    };
    await until(() => text().includes('Go ahead?'));
    expect(text()).toContain('Go ahead?');
    const before = screen.frames.length;
    screen.stdout.columns = 80;
    screen.stdout.rows = 24;
    screen.stdout.emit('resize');
    await sleep(100);
    await until(() => screen.frames.length > before);
    screen.stdout.columns = 100;
    screen.stdout.rows = 30;
    screen.stdout.emit('resize');
    await sleep(100);
    const after = screen.frames.slice(before).join('');
    expect(after).toContain('Go ahead?');
    expect(after).not.toMatch(CLEAR);
    actor.stop();
  });
});
