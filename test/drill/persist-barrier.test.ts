/**
 * The persist barrier: every destructive call leaves the process only after state.json shows the step that sent it,
 * so a crash at that moment resumes into a check of the node, never into a step that does not know the call left.
 * Read from disk at the moment each Reset and the Bootstrap are sent, on a whole lost-quorum drill.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { readState } from '../../src/journal/state.js';
import type { TalosClient } from '../../src/talos/types.js';
import { driveAutopilot } from '../../src/wizard/autopilot.js';
import { timingFor } from '../../src/wizard/run.js';
import { closeGrounds, SPEED, startGround, startSessionOn } from './harness.js';

afterAll(closeGrounds);

interface Persisted {
  value: unknown;
  children: Record<string, { snapshot?: { value?: unknown } } | undefined>;
}

/** The real client; `seen` is called with the call's name and node just before it is sent. */
function watching(client: TalosClient, seen: (call: 'reset' | 'bootstrap', node: string) => void): TalosClient {
  return new Proxy(client, {
    get(target, prop, receiver) {
      const value: unknown = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function') return value;
      const fn = (value as (...a: unknown[]) => unknown).bind(target);
      if (prop !== 'reset' && prop !== 'bootstrap') return fn;
      return (node: string, ...rest: unknown[]) => {
        seen(prop, node);
        return fn(node, ...rest);
      };
    },
  });
}

describe('the persist barrier', () => {
  it('state.json shows the sending step whenever a Reset or the Bootstrap leaves', async () => {
    const g = await startGround('lost-quorum', 'autopilot');
    const onDisk: { call: string; node: string; state: Persisted }[] = [];
    g.client = watching(g.client, (call, node) => {
      const saved = readState(g.incident.dir);
      if (saved.ok) onDisk.push({ call, node, state: saved.envelope.snapshot as Persisted });
    });
    const session = startSessionOn(g);
    const stop = driveAutopilot(session, {
      print: () => undefined,
      timeLimitMs: 60_000,
      repeatPauseMs: timingFor(SPEED).pollMs,
    });
    try {
      expect((await session.settled).outcome).toBe('recovered');
    } finally {
      stop();
    }
    const resets = onDisk.filter((c) => c.call === 'reset');
    expect(resets).toHaveLength(3);
    for (const r of resets) expect(r.state.children[`prep:${r.node}`]?.snapshot?.value).toEqual({ sending: 'wipe' });
    const bootstraps = onDisk.filter((c) => c.call === 'bootstrap');
    expect(bootstraps).toHaveLength(1);
    expect(JSON.stringify(bootstraps[0]?.state.value)).toMatch(/bootstrap/i);
  }, 120_000);
});
