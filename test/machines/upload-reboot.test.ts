/**
 * Issue 17 item 5: step 8's upload target reboots. A rebooting node refuses connections (nothing listens on its
 * address), so the upload fails as "not answering" again and again for as long as the reboot lasts: 45 s in drills,
 * minutes on real hardware. The machine used to spend its five quick tries (~31 s) on it and stop at "Try again?"
 * mid-bootstrap; now it asks the node a cheap Version until it answers, showing what it waits for, and uploads again.
 * Only a silence longer than `nodeAnswerTimeoutMs` is put to the user. The cluster is the in-memory one.
 */
import { describe, expect, it } from 'vitest';
import { createActor, fromCallback, fromPromise, waitFor, type SnapshotFrom } from 'xstate';
import { fakeCluster, NODES } from '../components/fake-cluster.js';
import type { Attempt, ConnectOutput, RecoveryEvent, RecoveryMachine } from '../../machines/recovery.js';

const BOOTSTRAP_NODE = NODES[0] as string;
const REFUSED = `Nothing answers on ${BOOTSTRAP_NODE}'s Talos API port (connection refused); check the address and that the node is up, or wait for it to finish rebooting.`;

/**
 * The fake cluster, its bootstrap node rebooting from the first upload on for `downMs` of wall time: uploads and
 * Version calls to it fail as a silent node's do until then.
 */
function rebootingTarget(downMs: number) {
  const cluster = fakeCluster();
  let downUntil = 0;
  const down = () => Date.now() < downUntil;
  const uploads: string[] = [];
  const probes: boolean[] = [];
  const machine = cluster.machine.provide({
    actors: {
      connect: fromPromise<ConnectOutput, { nodes: string[] }>(async ({ input }) => {
        const answers = input.nodes.map((node) => {
          const silent = node === BOOTSTRAP_NODE && down();
          return { node, ok: !silent, version: silent ? null : 'v1.11.2', error: silent ? REFUSED : null };
        });
        if (input.nodes.length === 1) probes.push(answers[0]?.ok ?? false);
        return { nodes: answers };
      }),
      uploadSnapshot: fromCallback<RecoveryEvent, { node: string; file: string; bytes: number; opId: string }>(
        ({ sendBack, input }) => {
          uploads.push(input.opId);
          // the first upload starts the reboot: the stream is cut, and the node stays silent for downMs
          if (uploads.length === 1) downUntil = Date.now() + downMs;
          const t = setTimeout(() => {
            if (uploads.length === 1 || down())
              sendBack({ type: 'upload.failed', error: REFUSED, retryable: true, unanswered: true });
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
  return { machine, cluster, uploads, probes };
}

/** Answers every question with its recommended answer (the typed address where one is asked). */
function answerRecommended(actor: ReturnType<typeof createActor<RecoveryMachine>>) {
  let answered = -1;
  actor.subscribe((s) => {
    const p = s.context.prompt;
    if (p?.recommended && s.context.promptSeq !== answered) {
      answered = s.context.promptSeq;
      const event = p.recommended;
      setImmediate(() => actor.send(event));
    }
  });
}

type Snap = SnapshotFrom<RecoveryMachine>;
const awaitingNode = (s: Snap) => JSON.stringify(s.value).includes('awaitingNode');

describe("step 8: the upload's node reboots", () => {
  it('waits for the node to answer again (longer than five quick tries), uploads again and recovers', async () => {
    // backoff 10 ms: the old five tries gave up after 10+20+40+80 ms; the node is silent for 1.5 s
    const { machine, cluster, uploads, probes } = rebootingTarget(1500);
    const actor = createActor(machine, {
      input: { nodes: NODES, operator: 'tester', mode: 'drill', timing: { pollMs: 20, backoffMs: 10 } },
    });
    const seen: Attempt[] = [];
    actor.subscribe((s) => {
      if (awaitingNode(s) && s.context.attempt) seen.push(s.context.attempt);
    });
    answerRecommended(actor);
    actor.start();
    const end = await waitFor(actor, (s) => s.status === 'done' || s.context.prompt?.id.startsWith('retry:') === true, {
      timeout: 20_000,
    });
    expect(end.context.prompt?.question ?? null).toBeNull();
    expect(end.context.outcome).toBe('recovered');

    // what the screen was given while it waited: the node awaited, since when, and the tries so far
    const waiting = seen.find((a) => a.awaiting);
    expect(waiting?.awaiting?.what).toBe(`waiting for ${BOOTSTRAP_NODE} to answer again`);
    expect(waiting?.awaiting?.node).toBe(BOOTSTRAP_NODE);
    expect(waiting?.action).toBe('upload');
    expect(waiting?.count).toBeGreaterThanOrEqual(1);
    expect(waiting?.lastError).toBe(REFUSED);
    // the node was asked until it answered; the upload went again from zero under a new operation id, once it did
    expect(probes.filter((ok) => !ok).length).toBeGreaterThan(5);
    expect(probes.at(-1)).toBe(true);
    expect(new Set(uploads).size).toBe(uploads.length);
    expect(cluster.calls.filter((c) => c.startsWith('upload'))).toEqual([`upload ${BOOTSTRAP_NODE}`]);
    expect(cluster.calls.filter((c) => c.startsWith('bootstrap'))).toHaveLength(1);
  }, 30_000);

  it('asks "Try again?" only after the node stayed silent for nodeAnswerTimeoutMs, saying so; retry waits again', async () => {
    const { machine, uploads } = rebootingTarget(60_000);
    const actor = createActor(machine, {
      input: {
        nodes: NODES,
        operator: 'tester',
        mode: 'drill',
        timing: { pollMs: 20, backoffMs: 10, nodeAnswerTimeoutMs: 1000 },
      },
    });
    answerRecommended(actor);
    actor.start();
    const asked = await waitFor(actor, (s) => s.context.prompt?.id === 'retry:upload', { timeout: 20_000 });
    expect(asked.context.prompt?.question).toBe('upload failed. Try again?');
    expect(asked.context.prompt?.detail).toMatch(
      new RegExp(`^${BOOTSTRAP_NODE.replaceAll('.', '\\.')} did not answer again within 1 s`),
    );
    expect(asked.context.attempt?.awaiting ?? null).toBeNull();
    const before = uploads.length;

    // the answer the screen's Enter sends at a failure: try again, and the wait starts over
    actor.send({ type: 'retry' });
    await waitFor(actor, (s) => s.context.prompt?.id.startsWith('bootstrap:') === true, { timeout: 5000 });
    actor.send({ type: 'confirm', address: BOOTSTRAP_NODE });
    await waitFor(actor, (s) => awaitingNode(s) && uploads.length > before, { timeout: 5000 });
    actor.stop();
  }, 30_000);
});
