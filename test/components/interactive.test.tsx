/**
 * runInteractive(), the entry the commands call: it refuses without a terminal (naming the headless alternative),
 * and however the screen ends it flushes state, stops the actor and returns the exit code of PRODUCT.md §2.
 */
import { describe, expect, it, vi } from 'vitest';
import { createActor } from 'xstate';
import { runInteractive } from '../../src/commands/interactive.js';
import { UsageError } from '../../src/errors.js';
import { colorFromEnv } from '../../components/theme.js';
import { fakeCluster, NODES } from './fake-cluster.js';
import { FakeStdin, FakeStdout, flush } from './helpers.js';

function session() {
  const cluster = fakeCluster();
  const actor = createActor(cluster.machine, {
    input: { nodes: NODES, operator: 'trainee', mode: 'drill', timing: { pollMs: 20, backoffMs: 10 } },
  });
  actor.start();
  return { cluster, actor };
}

const streams = () => ({
  stdin: new FakeStdin() as unknown as NodeJS.ReadStream,
  stdout: new FakeStdout(80, 24) as unknown as NodeJS.WriteStream,
  stderr: new FakeStdout(80, 24) as unknown as NodeJS.WriteStream,
  // vitest replaces the console; Ink's console patch cannot wrap it
  patchConsole: false,
});

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
    for (let i = 0; i < 200 && !out.frames.some((f) => f.includes('[y/N]')); i++) await flush();
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
