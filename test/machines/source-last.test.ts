/**
 * SAFETY rule 3's order (machines/recovery/steps/6-prepare.ts): the snapshot source is wiped last. Each node's child
 * sends its Reset as soon as the node is confirmed, and the Reset effect may take a while before it sends (it reads
 * the node's boot id first, bounded at 2 s: src/wizard/destructive.ts), so confirmation order alone did not keep
 * the source last: the source's child must not start until every other node's Reset has been answered. The cluster
 * is the in-memory one; the Reset effects take 60 ms each, as a slow boot-id read would.
 */
import { describe, expect, it } from 'vitest';
import { fromPromise } from 'xstate';
import { fakeCluster, NODES } from '../components/fake-cluster.js';
import { prepareNodeMachine } from '../../machines/prepare-node.js';
import type { NodeView } from '../../machines/recovery.js';
import { runAnsweringRecommended } from './answering-run.js';

const EFFECT_MS = 60;

/** Each Reset effect takes EFFECT_MS; the first one sent to `failOnce` fails (a refusal, not retried on its own). */
function slowResets(failOnce?: string) {
  const c = fakeCluster();
  const order: string[] = [];
  let failed = false;
  const machine = c.machine.provide({
    actors: {
      prepareNode: prepareNodeMachine.provide({
        actors: {
          observe: fromPromise(async ({ input }: { input: { nodes: string[] } }) => c.refresh(input.nodes)),
          resetNode: fromPromise<void, { node: string; labels: string[]; opId: string }>(async ({ input }) => {
            order.push(`start ${input.node}`);
            await new Promise((resolve) => setTimeout(resolve, EFFECT_MS));
            if (input.node === failOnce && !failed) {
              failed = true;
              order.push(`failed ${input.node}`);
              throw new Error(`${input.node} refused the reset`);
            }
            order.push(`answered ${input.node}`);
            const v = c.views.get(input.node) as NodeView;
            c.views.set(input.node, { ...v, etcdService: 'Preparing', etcdHealthy: null, members: null, status: null });
          }),
        },
      }),
    },
  });
  return { machine, order };
}

describe('the snapshot source is wiped last', () => {
  it("starts the source's Reset only after every other node's Reset was answered, and says so on its row", async () => {
    const { machine, order } = slowResets();
    const sourceRows = new Set<string>();
    // every confirmation at once, as fast as autopilot (or a person pasting addresses) gives them
    const end = await runAnsweringRecommended(machine, undefined, (context) => {
      const source = context.snapshot?.node;
      const row = source ? context.rows[source] : undefined;
      if (row?.prep.status) sourceRows.add(`${row.prep.status}: ${row.prep.detail ?? ''}`);
    });
    expect(end.outcome).toBe('recovered');
    const source = end.snapshot?.node as string;
    const others = NODES.filter((n) => n !== source);
    expect(others).toHaveLength(2);
    const startOfSource = order.indexOf(`start ${source}`);
    expect(startOfSource).toBeGreaterThan(-1);
    for (const n of others) expect(order.indexOf(`answered ${n}`)).toBeLessThan(startOfSource);
    // while it waited, its row said why
    expect([...sourceRows]).toContain(
      "confirmed: waits until the other nodes' resets are answered: the snapshot source is wiped last",
    );
  });

  it("leaves the source untouched when another node's Reset fails, and wipes it last after the retry", async () => {
    const other = NODES[2] as string;
    const { machine, order } = slowResets(other);
    let startsAtFailure: string[] | null = null;
    const end = await runAnsweringRecommended(machine, undefined, (context) => {
      if (context.prompt?.id === 'prepare-failed') startsAtFailure ??= order.filter((o) => o.startsWith('start'));
    });
    const source = end.snapshot?.node as string;
    expect(source).not.toBe(other);
    // the failure was asked about ("Try again?") while the source had not been sent anything
    expect(startsAtFailure).not.toBeNull();
    expect(startsAtFailure).not.toContain(`start ${source}`);
    // after the retry the other node was answered first, then the source was wiped, and the recovery finished
    expect(order.indexOf(`start ${source}`)).toBeGreaterThan(order.indexOf(`answered ${other}`));
    expect(order.filter((o) => o === `start ${source}`)).toHaveLength(1);
    expect(end.outcome).toBe('recovered');
  });
});
