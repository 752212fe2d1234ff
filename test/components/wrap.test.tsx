/**
 * Sentences wrap at words: a wrapped line never starts with a space, and a path or a command is never cut in two,
 * on the live screen (a wipe confirmation naming a long snapshot path) and on the last screen (the resume command
 * after q), driven by keystrokes on the real recovery machine at 80 columns.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { fromPromise } from 'xstate';
import { TypedConfirm } from '../../components/confirm/TypedConfirm.js';
import { wrapWords } from '../../components/wrap.js';
import { apiSnapshot, fakeCluster } from './fake-cluster.js';
import { startAppScreen } from './app-screen.js';
import { cleanupSized, frameMatching, press, renderSized } from './helpers.js';

afterEach(cleanupSized);

const SNAPSHOT = '/srv/talos-dr/incidents/2026-12-02T13-05-24Z-lost-quorum/snapshots/127.0.0.2.db';
const INCIDENT = '/home/operator/talos-dr-incidents/2026-12-02T13-05-24Z-lost-quorum-prod-eu-1';

function start(incidentDir = '/tmp/incident') {
  const cluster = fakeCluster();
  const machine = cluster.machine.provide({
    actors: { acquireSnapshot: fromPromise(async () => ({ ...apiSnapshot(), file: SNAPSHOT })) },
  });
  const { actor, screen } = startAppScreen(machine, { props: { incidentDir } });
  return { actor, screen };
}

describe('wrapping', () => {
  it('a wipe confirmation starts no wrapped line with a space and never cuts a path', async () => {
    // a path exactly as wide as the terminal (Ink wrapped the next word's space onto the next line), and one wider
    const exact = `/srv/${'a'.repeat(62)}/snapshots/db`;
    const wider = `/srv/talos-dr/${'b'.repeat(70)}/db`;
    expect(exact).toHaveLength(80);
    const { lastFrame } = renderSized(
      <TypedConfirm
        target="127.0.0.3"
        question="Wipe 127.0.0.3 (EPHEMERAL) and reboot it?"
        detail={`The verified snapshot ${exact} will restore it; a copy is at ${wider} too.`}
        onConfirm={() => {}}
      />,
      { columns: 80, rows: 24 },
    );
    const f = await frameMatching(lastFrame, (x) => x.includes('Type 127.0.0.3 to confirm'));
    const lines = f.split('\n');
    expect(lines).toContain(exact);
    expect(lines).toContain(wider);
    for (const line of lines) expect(line).not.toMatch(/^\s/);
  });

  it('after q, the resume command stays on one line even when longer than the terminal', async () => {
    const { actor, screen } = start(INCIDENT);
    await frameMatching(screen.lastFrame, (x) => x.includes('Go ahead?'));
    await press(screen.stdin, 'q');
    const f = await frameMatching(screen.lastFrame, (x) => x.includes('To continue'));
    expect(f.split('\n')).toContain(`talos-dr resume ${INCIDENT}`);
    await screen.waitUntilExit();
    actor.stop();
  });

  it('wrapWords: words kept whole, no line starting with a space, even after double spaces', () => {
    const lines = wrapWords(`Saved.  The verified snapshot ${SNAPSHOT} will restore it.  Bootstrap is sent once.`, 40);
    expect(lines).toContain(SNAPSHOT);
    for (const l of lines) expect(l).not.toMatch(/^\s/);
    expect(lines.join(' ')).toBe(`Saved. The verified snapshot ${SNAPSHOT} will restore it. Bootstrap is sent once.`);
  });
});
