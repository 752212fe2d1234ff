/**
 * A restore that fails inside etcd leaves the data directory non-empty (../shared/talos-behaviour-facts.md §4): the
 * next Bootstrap is refused, and src/wizard/destructive.ts bootstrapNode says so with a restore-failed error. Step 8
 * then offers exactly what the node needs: a new wipe (typed address), a new upload and a new Bootstrap, each under a
 * new operation id of its own round, so that the ledger (which sends an id at most once) never sends anything twice,
 * also when the run is stopped or restored in the middle of the second round.
 */
import { describe, expect, it } from 'vitest';
import { createActor, fromCallback, fromPromise, waitFor, type Snapshot } from 'xstate';
import { fakeCluster, NODES, type FakeCluster } from '../components/fake-cluster.js';
import type { NodeView, RecoveryEvent, RecoveryMachine } from '../../machines/recovery.js';

const RESTORE_FAILED =
  "127.0.0.2's etcd data directory is not empty after a restore that did not finish (etcd Failed): it needs a new wipe and a new upload of the snapshot before Bootstrap.";

/** What the destructive actors were asked, by operation id, and what a ledger would have sent (each id once). */
interface Ledger {
  asked: string[];
  sent: Set<string>;
}

const newLedger = (): Ledger => ({ asked: [], sent: new Set() });

/** The ledger's rule, as src/wizard/ledger.ts keeps it: an id already sent is not sent again. */
function send(ledger: Ledger, opId: string): boolean {
  ledger.asked.push(opId);
  if (ledger.sent.has(opId)) return false;
  ledger.sent.add(opId);
  return true;
}

interface Script {
  /** the node comes back Preparing as soon as it is reset (else only when `comeBack` is called) */
  backAtOnce: boolean;
  /** the second round's Bootstrap never answers (the run is restored while it is under way) */
  hangSecondBootstrap?: boolean;
  /** the round from whose Reset on the node comes back at once */
  backFromRound?: number;
}

/**
 * The in-memory cluster whose first Bootstrap meets a failed restore; the second one restores. Reset, upload and
 * Bootstrap go through `ledger`.
 */
function clusterWithFailedRestore(ledger: Ledger, script: Script) {
  const cluster: FakeCluster = fakeCluster();
  const set = (node: string, patch: Partial<NodeView>) =>
    cluster.views.set(node, { ...(cluster.views.get(node) as NodeView), ...patch });
  const preparing = (node: string) =>
    set(node, { reachable: true, etcdService: 'Preparing', etcdHealthy: null, members: null, status: null });
  const base = cluster.machine;
  const machine: RecoveryMachine = base.provide({
    actors: {
      resetNode: fromPromise<void, { node: string; labels: string[]; opId: string }>(async ({ input }) => {
        if (!send(ledger, input.opId)) return;
        cluster.calls.push(`reset ${input.node} ${input.labels.join('+')}`);
        const round = Number(/restore-(\d+)$/.exec(input.opId)?.[1] ?? 0);
        if (script.backAtOnce || round >= (script.backFromRound ?? Infinity)) preparing(input.node);
        else set(input.node, { reachable: false, etcdService: null });
      }),
      uploadSnapshot: fromCallback<RecoveryEvent, { node: string; file: string; bytes: number; opId: string }>(
        ({ sendBack, input }) => {
          ledger.asked.push(input.opId);
          ledger.sent.add(input.opId);
          const t = setTimeout(() => sendBack({ type: 'upload.done' }), 2);
          return () => clearTimeout(t);
        },
      ),
      bootstrapNode: fromPromise<
        { alreadyDone: boolean },
        { node: string; skipHashCheck: boolean; opId: string; wiped: boolean; uploadSent: boolean }
      >(async ({ input }) => {
        if (!send(ledger, input.opId)) {
          // what the ledger answers for an id already sent and answered: not sent again
          return { alreadyDone: true };
        }
        if (ledger.asked.filter((id) => id.startsWith('bootstrap:')).length === 1) {
          set(input.node, { etcdService: 'Failed', etcdLastEvent: 'Error running Services: failed to restore' });
          throw Object.assign(new Error(RESTORE_FAILED), { restoreFailed: true });
        }
        if (script.hangSecondBootstrap) return new Promise<never>(() => {});
        for (const n of NODES) set(n, { etcdService: 'Running', etcdHealthy: true });
        return { alreadyDone: false };
      }),
    },
  });
  return { cluster, machine, comeBack: (node: string) => preparing(node) };
}

const INPUT = { nodes: NODES, operator: 'alice', mode: 'recover' as const, timing: { pollMs: 5, backoffMs: 5 } };

type Actor = ReturnType<typeof createActor<RecoveryMachine>>;

/** Answers every question with its recommended answer until the one with this id is asked. */
async function until(actor: Actor, id: RegExp) {
  for (;;) {
    const s = await waitFor(actor, (x) => x.context.prompt !== null, { timeout: 3000 });
    const p = s.context.prompt;
    if (p && id.test(p.id)) return p;
    actor.send(p?.recommended as RecoveryEvent);
    await waitFor(actor, (x) => x.context.promptSeq !== s.context.promptSeq || x.context.prompt === null, {
      timeout: 3000,
    });
  }
}

const atVerify = (actor: Actor) =>
  waitFor(actor, (s) => s.matches({ procedure: 'verify' }) || s.status === 'done', { timeout: 3000 });

const NODE = NODES[0] as string;

describe('step 8 after a failed restore', () => {
  it('offers a new wipe (typed address), then wipes, uploads and bootstraps again under new operation ids', async () => {
    const ledger = newLedger();
    const { cluster, machine } = clusterWithFailedRestore(ledger, { backAtOnce: true });
    const actor = createActor(machine, { input: INPUT });
    actor.start();
    const bootstrapNode = (await until(actor, /^bootstrap:/)).target;
    expect(bootstrapNode).toBe(NODE);

    const prompt = await until(actor, /^rewipe:/);
    expect(prompt).toMatchObject({ kind: 'typed-address', target: NODE });
    expect(prompt.question).toBe(`Wipe ${NODE} again and upload the snapshot again?`);
    expect(prompt.detail).toContain('not empty after a restore that did not finish');

    // a wrong address is refused: nothing is sent, the question stays
    const resetsBefore = cluster.calls.filter((c) => c.startsWith('reset')).length;
    actor.send({ type: 'confirm', address: '127.0.0.3' });
    await new Promise((r) => setTimeout(r, 20));
    expect(actor.getSnapshot().context.prompt?.id).toBe(prompt.id);
    expect(cluster.calls.filter((c) => c.startsWith('reset')).length).toBe(resetsBefore);

    actor.send({ type: 'confirm', address: NODE });
    await atVerify(actor);
    expect(ledger.asked.filter((id) => id.startsWith(`reset:${NODE}:restore`))).toEqual([`reset:${NODE}:restore-1`]);
    expect(cluster.calls).toContain(`reset ${NODE} EPHEMERAL`);
    expect(ledger.asked.filter((id) => id.startsWith('upload:'))).toEqual([`upload:${NODE}:0`, `upload:${NODE}:r1:0`]);
    expect(ledger.asked.filter((id) => id.startsWith('bootstrap:'))).toEqual([
      `bootstrap:${NODE}`,
      `bootstrap:${NODE}:r1`,
    ]);
    expect(actor.getSnapshot().context.bootstrap).toMatchObject({ round: 1, bootstrapSent: true });
    actor.stop();
  });

  it('stopped while the wiped node comes back, resumed: the Reset is not sent again', async () => {
    const ledger = newLedger();
    const { machine, comeBack } = clusterWithFailedRestore(ledger, { backAtOnce: false });
    const actor = createActor(machine, { input: INPUT });
    actor.start();
    await until(actor, /^rewipe:/);
    actor.send({ type: 'confirm', address: NODE });
    await waitFor(actor, (s) => s.matches({ procedure: { bootstrap: 'rewipeBack' } }), { timeout: 3000 });
    actor.send({ type: 'abort' });
    expect(actor.getSnapshot().value).toBe('stoppedByUser');
    comeBack(NODE);
    actor.send({ type: 'resume' });
    // the wipe was confirmed already: the same Reset id (the ledger does not send it again), the wait, then upload
    await atVerify(actor);
    const resets = ledger.asked.filter((id) => id.startsWith('reset:'));
    expect(new Set(resets)).toEqual(new Set([`reset:${NODE}:restore-1`]));
    expect(ledger.asked.filter((id) => id.startsWith('bootstrap:'))).toEqual([
      `bootstrap:${NODE}`,
      `bootstrap:${NODE}:r1`,
    ]);
    actor.stop();
  });

  it("restored from state.json during the second Bootstrap: the same round's id, so it is not sent again", async () => {
    const ledger = newLedger();
    const first = clusterWithFailedRestore(ledger, { backAtOnce: true, hangSecondBootstrap: true });
    const actor = createActor(first.machine, { input: INPUT });
    actor.start();
    await until(actor, /^rewipe:/);
    actor.send({ type: 'confirm', address: NODE });
    await waitFor(
      actor,
      (s) => s.matches({ procedure: { bootstrap: 'bootstrapping' } }) && s.context.bootstrap.round === 1,
      { timeout: 3000 },
    );
    await new Promise((r) => setTimeout(r, 10));
    const saved = JSON.parse(JSON.stringify(actor.getPersistedSnapshot())) as Snapshot<unknown>;
    actor.stop();
    const sentBefore = [...ledger.sent];

    const second = clusterWithFailedRestore(ledger, { backAtOnce: true });
    const restored = createActor(second.machine, { snapshot: saved as never, input: INPUT });
    restored.start();
    await atVerify(restored);
    expect([...ledger.sent]).toEqual(sentBefore);
    expect(ledger.asked.filter((id) => id.startsWith('bootstrap:'))).toEqual([
      `bootstrap:${NODE}`,
      `bootstrap:${NODE}:r1`,
      `bootstrap:${NODE}:r1`,
    ]);
    expect(ledger.asked.filter((id) => id.startsWith('reset:') && id.includes('restore'))).toEqual([
      `reset:${NODE}:restore-1`,
    ]);
    restored.stop();
  });
  it('a node that does not come back after its new wipe: the question again, and a yes is a new round', async () => {
    const ledger = newLedger();
    const { machine } = clusterWithFailedRestore(ledger, { backAtOnce: false, backFromRound: 2 });
    const actor = createActor(machine, { input: { ...INPUT, timing: { ...INPUT.timing, nodeBackTimeoutMs: 30 } } });
    actor.start();
    await until(actor, /^rewipe:/);
    actor.send({ type: 'confirm', address: NODE });
    const again = await until(actor, /^rewipe:.*:2$/);
    expect(again.question).toBe(`Wipe ${NODE} again and upload the snapshot again?`);
    expect(again.detail).toContain('did not come back with etcd waiting for bootstrap');
    actor.send({ type: 'confirm', address: NODE });
    await atVerify(actor);
    expect(ledger.asked.filter((id) => id.startsWith('reset:'))).toEqual([
      `reset:${NODE}:restore-1`,
      `reset:${NODE}:restore-2`,
    ]);
    expect(ledger.asked.filter((id) => id.startsWith('bootstrap:'))).toEqual([
      `bootstrap:${NODE}`,
      `bootstrap:${NODE}:r2`,
    ]);
    actor.stop();
  });
});
