/**
 * Issue 17 item 5 on the screen: the upload's node reboots and stays silent. The screen shows what the machine waits
 * for while it asks the node again; only after timing.nodeAnswerTimeoutMs of silence does it ask "upload failed. Try
 * again?", saying how long it waited, with retry as the default: Enter tries again (it never stops the recovery
 * mid-bootstrap). Once the node answers, the upload and the bootstrap go through. Keystrokes through the App on the
 * real recovery machine and the in-memory cluster, at 80×24.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { fromCallback, fromPromise } from 'xstate';
import type { ConnectOutput, RecoveryEvent } from '../../machines/recovery.js';
import { fakeCluster, NODES } from './fake-cluster.js';
import { startAppScreen, typedTarget } from './app-screen.js';
import { KEYS, cleanupSized, frameMatching, press } from './helpers.js';

afterEach(() => cleanupSized());

const TARGET = NODES[0] as string;
const REFUSED = `Nothing answers on ${TARGET}'s Talos API port (connection refused); wait for it to finish rebooting.`;

/** The fake cluster whose bootstrap node stops answering at the first upload, until `back()` is called. */
function rebootingCluster() {
  const cluster = fakeCluster();
  let silent = false;
  const uploads: string[] = [];
  const base = cluster.machine;
  const machine = base.provide({
    actors: {
      connect: fromPromise<ConnectOutput, { nodes: string[] }>(async ({ input }) => ({
        nodes: input.nodes.map((node) => {
          const down = silent && node === TARGET;
          return { node, ok: !down, version: down ? null : 'v1.11.2', error: down ? REFUSED : null };
        }),
      })),
      uploadSnapshot: fromCallback<RecoveryEvent, { node: string; file: string; bytes: number; opId: string }>(
        ({ sendBack, input }) => {
          uploads.push(input.opId);
          if (uploads.length === 1) silent = true;
          const t = setTimeout(() => {
            if (silent) sendBack({ type: 'upload.failed', error: REFUSED, retryable: true, unanswered: true });
            else {
              cluster.calls.push(`upload ${input.node}`);
              sendBack({ type: 'upload.done' });
            }
          }, 1);
          return () => clearTimeout(t);
        },
      ),
    },
  });
  return { cluster, machine, uploads, back: () => (silent = false) };
}

describe('a retry prompt after a node stayed silent', () => {
  it('shows the wait, asks only after nodeAnswerTimeoutMs saying so, and Enter tries again', async () => {
    const c = rebootingCluster();
    const { actor, screen } = startAppScreen(c.machine, { timing: { nodeAnswerTimeoutMs: 2000 } });
    await frameMatching(screen.lastFrame, (x) => x.includes('Recover etcd on these control-plane nodes'));
    await press(screen.stdin, 'y');
    await frameMatching(screen.lastFrame, (x) => x.includes('Where should the snapshot come from?'));
    await press(screen.stdin, KEYS.enter);
    for (;;) {
      const f = await frameMatching(
        screen.lastFrame,
        (x) => x.includes('Destructive: Wipe') || x.includes('Destructive: Upload the snapshot to'),
        4000,
      );
      const node = typedTarget(f);
      await press(screen.stdin, `${node}\n`);
      if (f.includes('Destructive: Upload the snapshot to')) break;
      await frameMatching(
        screen.lastFrame,
        (x) => typedTarget(x) !== node || x.includes('Destructive: Upload the snapshot to'),
        4000,
      );
    }

    // while the node is silent: what is awaited is on screen, with the refusal it gave
    let f = await frameMatching(screen.lastFrame, (x) => x.includes('Nothing answers on'), 4000);
    expect(f).toMatch(
      new RegExp(
        `waiting for ${TARGET.replaceAll('.', '\\.')} to answer again — attempt \\d+, waiting since \\d+:\\d\\d`,
      ),
    );

    // only after the limit: the question, naming the wait, with retry the default
    f = await frameMatching(screen.lastFrame, (x) => x.includes('upload failed. Try again?'), 8000);
    expect(f.replace(/\s+/g, ' ')).toContain(`${TARGET} did not answer again within 2 s`);
    expect(f).toContain('[Y/n]');
    const before = c.uploads.length;

    // Enter: tried again (no stop); the node is back, so the upload and the bootstrap go through
    c.back();
    await press(screen.stdin, KEYS.enter);
    f = await frameMatching(screen.lastFrame, (x) => x.includes('Destructive: Upload the snapshot to'), 4000);
    await press(screen.stdin, `${typedTarget(f)}\n`);
    await frameMatching(screen.lastFrame, () => c.cluster.calls.some((x) => x.startsWith('bootstrap')), 8000);
    expect(c.uploads.length).toBeGreaterThan(before);
    expect(actor.getSnapshot().context.outcome).not.toBe('stopped-by-user');
    expect(c.cluster.calls.filter((x) => x.startsWith('upload'))).toEqual([`upload ${TARGET}`]);
    actor.stop();
  });
});
