/**
 * Off the happy path (issue 17): what a person at 3 a.m. does with the wizard — a stray digit, Esc, an Enter at the
 * first question, a pasted address, the help, a wait left alone, a resize — driven by keystrokes through the App on
 * the real recovery machine and the in-memory cluster, at 80×24.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { fromPromise } from 'xstate';
import { apiSnapshot, fakeCluster, NODES } from './fake-cluster.js';
import { flat, keyBar, liveRegion, LOST_QUORUM_DRILL, startAppScreen, typedTarget } from './app-screen.js';
import type { NodeView, SnapshotInfo, SnapshotOption, Timing } from '../../machines/recovery-types.js';
import { prepareNodeMachine } from '../../machines/prepare-node.js';
import { KEYS, cleanupSized, flush, frameMatching, press, type } from './helpers.js';

afterEach(() => {
  cleanupSized();
  vi.useRealTimers();
});

function start(cluster = fakeCluster(), machine = cluster.machine, timing: Partial<Timing> = {}) {
  return { cluster, ...startAppScreen(machine, { timing, props: { drill: LOST_QUORUM_DRILL } }) };
}

/** From the first question to the snapshot source list. */
async function toSnapshotChoice(s: ReturnType<typeof start>) {
  await frameMatching(s.lastFrame, (x) => x.includes('Recover etcd on these control-plane nodes'));
  await press(s.stdin, 'y');
  return frameMatching(s.lastFrame, (x) => x.includes('Where should the snapshot come from?'));
}

/** On to the first wipe confirmation. */
async function toFirstWipe(s: ReturnType<typeof start>) {
  await toSnapshotChoice(s);
  await press(s.stdin, KEYS.enter);
  return frameMatching(s.lastFrame, (x) => x.includes('Destructive: Wipe'));
}

describe('the wizard off the happy path', () => {
  it('a digit moves the cursor to that option and chooses nothing; Enter chooses it', async () => {
    const s = start();
    let f = await toSnapshotChoice(s);
    expect(keyBar(f)).toContain('↑↓/1-9 move');
    const second = /^\s*2\. (.+)$/m.exec(liveRegion(f))?.[1]?.trim() as string;
    expect(second).toBeTruthy();
    await press(s.stdin, '2');
    f = await frameMatching(s.lastFrame, (x) => /❯ 2\./.test(x));
    // nothing was chosen: the question is still on screen, nothing was asked of the cluster
    expect(f).toContain('Where should the snapshot come from?');
    expect(s.actor.getSnapshot().context.prompt?.id).toBe('snapshot-source');
    expect(s.cluster.calls).toEqual([]);
    await press(s.stdin, '1');
    await frameMatching(s.lastFrame, (x) => /❯ 1\./.test(x));
    await press(s.stdin, KEYS.enter);
    await frameMatching(s.lastFrame, (x) => x.includes('Destructive: Wipe'));
    expect(s.cluster.calls).toEqual(['snapshot 127.0.0.2']);
    s.actor.stop();
  });

  it('Enter at the very first question goes ahead ([Y/n]) instead of silently ending the drill', async () => {
    const s = start();
    const f = await frameMatching(s.lastFrame, (x) => x.includes('Recover etcd on these control-plane nodes'));
    expect(f).toContain('[Y/n]');
    await press(s.stdin, KEYS.enter);
    await frameMatching(s.lastFrame, (x) => x.includes('Where should the snapshot come from?'));
    expect(s.actor.getSnapshot().context.outcome).toBeNull();
    s.actor.stop();
  });

  it('a typed-address prompt lists only keys that work: no "Esc back" the machine would ignore', async () => {
    const s = start();
    /** At a wipe prompt: the bar offers Esc exactly when the machine takes it, and so does the refusal's sentence. */
    async function checkWipePrompt(f: string, escOffered: boolean) {
      expect(s.actor.getSnapshot().can({ type: 'answer.no' })).toBe(escOffered);
      expect(keyBar(f).includes('Esc')).toBe(escOffered);
      expect(keyBar(f)).toContain('Enter confirm');
      await type(s.stdin, '127.0.0.99');
      await press(s.stdin, KEYS.enter);
      const refused = await frameMatching(s.lastFrame, (x) => x.includes('is not the target node'));
      // the sentence as one line (the screen wraps it at 80 columns)
      expect(refused.replace(/\s+/g, ' ').includes('or Esc to go back')).toBe(escOffered);
    }
    // the first wipe: nothing touched yet, Esc goes back to the snapshot choice
    let f = await toFirstWipe(s);
    await checkWipePrompt(f, true);
    await press(s.stdin, KEYS.esc);
    await frameMatching(s.lastFrame, (x) => x.includes('Where should the snapshot come from?'));
    expect(s.actor.getSnapshot().context.prompt?.id).toBe('snapshot-source');
    expect(s.cluster.calls.filter((c) => c.startsWith('reset'))).toEqual([]);
    // once a wipe started there is no way back: Esc is neither offered nor promised, and changes nothing
    await press(s.stdin, KEYS.enter);
    f = await frameMatching(s.lastFrame, (x) => x.includes('Destructive: Wipe'));
    const first = /Type (\S+) to confirm/.exec(f)?.[1] as string;
    await type(s.stdin, first);
    await press(s.stdin, KEYS.enter);
    f = await frameMatching(s.lastFrame, (x) => x.includes('Destructive: Wipe') && !x.includes(`Type ${first} to`));
    const second = /Type (\S+) to confirm/.exec(f)?.[1] as string;
    await checkWipePrompt(f, false);
    await press(s.stdin, KEYS.esc);
    await flush();
    expect(s.actor.getSnapshot().context.prompt?.target).toBe(second);
    s.actor.stop();
  });

  it('a pasted address that ends in a newline keeps its Enter: the node is confirmed', async () => {
    const s = start();
    const f = await toFirstWipe(s);
    const target = typedTarget(f);
    await press(s.stdin, `${target}\n`);
    await frameMatching(s.lastFrame, (x) => x.includes('Destructive:') && !x.includes(`Type ${target} to confirm`));
    expect(s.actor.getSnapshot().context.confirmed).toEqual([target]);
    s.actor.stop();
  });

  it('help explains every column of the table and what the current step does, different on each step', async () => {
    const s = start();
    await frameMatching(s.lastFrame, (x) => x.includes('Recover etcd on these control-plane nodes'));
    await press(s.stdin, '?');
    const atAssess = liveRegion(await frameMatching(s.lastFrame, (x) => x.includes('Help — press ? or Esc')));
    for (const column of ['NODE', 'HOST', 'UP', 'TYPE', 'ETCD', 'HEALTH', 'MEMB', 'APPLIED', 'LAST EVENT'])
      expect(atAssess).toMatch(new RegExp(`\\b${column}\\b [a-z("]`));
    expect(atAssess).toContain('Step 2 of 10: Assess');
    expect(atAssess).toContain('y/Enter yes');
    expect(atAssess.split('\n').length).toBeLessThan(24);
    await press(s.stdin, KEYS.esc);
    await frameMatching(s.lastFrame, (x) => x.includes('[Y/n]'));
    await press(s.stdin, 'y');
    await frameMatching(s.lastFrame, (x) => x.includes('Where should the snapshot come from?'));
    await press(s.stdin, '?');
    const atSnapshot = liveRegion(
      await frameMatching(s.lastFrame, (x) => x.includes('Help — press ? or Esc') && x.includes('Step 3 of 10')),
    );
    expect(atSnapshot).toContain('Step 3 of 10: Snapshot');
    expect(atSnapshot).toContain('Enter choose');
    expect(atSnapshot).not.toContain('Step 2 of 10');
    s.actor.stop();
  });

  it('a refusal on screen never cites an internal document ("SAFETY rule 8"), and still says what happened', async () => {
    const cluster = fakeCluster();
    let unusable = 1;
    const damaged = (): SnapshotInfo => ({
      ...apiSnapshot(),
      integrity: 'mismatch',
      usable: false,
      problems: ['the sha256 trailer does not match'],
    });
    const machine = cluster.machine.provide({
      actors: { acquireSnapshot: fromPromise(async () => (unusable-- > 0 ? damaged() : apiSnapshot())) },
    });
    const s = start(cluster, machine);
    await toSnapshotChoice(s);
    await press(s.stdin, KEYS.enter);
    const f = await frameMatching(s.lastFrame, (x) => x.includes('is not a usable etcd snapshot'));
    expect(f).toContain('it is not uploaded.');
    expect(f).not.toMatch(/SAFETY|PRODUCT\.md|rule \d/);
    s.actor.stop();
  });

  it('a snapshot file whose raft index is unknown "may" be older than a live member, not "holds newer data"', async () => {
    const cluster = fakeCluster();
    const given = (path: string): SnapshotInfo => ({
      ...apiSnapshot(),
      file: path,
      method: 'file',
      node: null,
      raftAppliedIndex: null,
    });
    const machine = cluster.machine.provide({
      actors: {
        acquireSnapshot: fromPromise<SnapshotInfo, { option: SnapshotOption; opId: string }>(async ({ input }) =>
          given(input.option.file ?? ''),
        ),
      },
    });
    const s = start(cluster, machine);
    const f = await toSnapshotChoice(s);
    const last = [...liveRegion(f).matchAll(/^\s*(?:❯ )?(\d)\. /gm)].at(-1)?.[1] as string;
    await press(s.stdin, last);
    await frameMatching(s.lastFrame, (x) => x.includes(`❯ ${last}. use another snapshot file`));
    await press(s.stdin, KEYS.enter);
    await frameMatching(s.lastFrame, (x) => x.includes('Snapshot file:'));
    // pasted with its line ending: the Enter comes with it
    await press(s.stdin, '/backups/etcd-0312.db\n');
    const wipe = await frameMatching(s.lastFrame, (x) => x.includes('Destructive: Wipe'));
    expect(wipe).toContain('127.0.0.2 may hold newer data than this snapshot');
    expect(wipe).not.toMatch(/\bholds newer data/);
    s.actor.stop();
  });

  it("the bootstrap prompt's snapshot age is live: 11 minutes later it says so", async () => {
    vi.useFakeTimers({ toFake: ['Date'], shouldAdvanceTime: true });
    const s = start();
    await toFirstWipe(s);
    await confirmEveryWipe(s);
    let f = await frameMatching(s.lastFrame, (x) => x.includes('Destructive: Upload the snapshot to'), 4000);
    expect(flat(f)).toContain('taken less than a minute ago: writes after that point are lost');
    vi.setSystemTime(Date.now() + 11 * 60_000 + 5_000);
    f = await frameMatching(s.lastFrame, (x) => flat(x).includes('taken 11 min ago'), 4000);
    expect(flat(f)).toContain('snapshot revision 4821, taken 11 min ago: writes after that point are lost');
    s.actor.stop();
  });

  it('an option already marked "(recommended)" is not marked twice', async () => {
    const cluster = fakeCluster();
    // 127.0.0.4 comes back from its wipe in Waiting (time not in sync) and stays there past the wait's limit
    const machine = cluster.machine.provide({
      actors: {
        prepareNode: prepareNodeMachine.provide({
          actors: {
            resetNode: fromPromise<void, { node: string; labels: string[]; opId: string }>(async ({ input }) => {
              cluster.calls.push(`reset ${input.node}`);
              const waiting = input.node === '127.0.0.4';
              cluster.views.set(input.node, {
                ...(cluster.views.get(input.node) as NodeView),
                etcdService: waiting ? 'Waiting' : 'Preparing',
                etcdHealthy: null,
                etcdLastEvent: waiting ? 'Waiting for time sync' : 'Waiting for bootstrap',
                members: null,
                status: null,
              });
            }),
            observe: fromPromise(async ({ input }: { input: { nodes: string[] } }) => cluster.refresh(input.nodes)),
          },
        }),
      },
    });
    const s = start(cluster, machine, { preparingTimeoutMs: 50 });
    await toFirstWipe(s);
    await confirmEveryWipe(s);
    const f = await frameMatching(s.lastFrame, (x) => x.includes('Keep waiting?'), 4000);
    expect(f).toContain('keep waiting (recommended)');
    expect(f).not.toContain('(recommended) (recommended)');
    s.actor.stop();
  });
});

/** A frame's text as one line: a sentence wrapped across lines reads whole. */

/** Types (pastes, with its newline) each wipe's address in turn, as the prompts come. */
async function confirmEveryWipe(s: ReturnType<typeof start>) {
  const confirmed: string[] = [];
  for (let i = 0; i < NODES.length; i++) {
    const f = await frameMatching(
      s.lastFrame,
      (x) => x.includes('Destructive: Wipe') && typedTarget(x) !== '' && !confirmed.includes(typedTarget(x)),
    );
    await flush();
    await press(s.stdin, `${typedTarget(f)}\n`);
    confirmed.push(typedTarget(f));
  }
}
