/**
 * A Bootstrap sent, then the run killed before its answer was journalled, to a node whose clock is behind this
 * machine's (SAFETY rule 6: never re-send Bootstrap while a restore may still run). Bootstrap replaces etcd's runner,
 * whose history starts afresh (internal/app/machined/pkg/system/services/etcd.go@v1.11.6:656-690); read by its start
 * against the journalled send time, the new runner's history, dated by the node's clock, began "before" the send, so
 * the resumed run took it for the old one and sent Bootstrap again. The history's start read just before the send is
 * the node's own date, compared with the node's own date.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { readJournal } from '../../src/journal/journal.js';
import { bootstrapNode } from '../../src/wizard/destructive.js';
import { closeGrounds, startGround } from './harness.js';
import { CLOCK_BEHIND_MS, simNode, sleep } from './interrupted.js';
import { answerNeverComes, effectDepsOf } from './lossy-client.js';

afterAll(closeGrounds);

describe('an interrupted Bootstrap to a node whose clock is behind', () => {
  it('is not sent again: the etcd history is not the one the node showed just before the send', async () => {
    const g = await startGround('lost-quorum');
    const node = g.sim.nodes[0]!;
    simNode(g.sim, node).state.clockOffsetMs = CLOCK_BEHIND_MS;
    // the node as step 8 finds it: wiped, back, its etcd waiting in Preparing (no snapshot uploaded here: the
    // restore fails, so etcd never reaches Running and only its history can tell)
    expect((await g.client.reset(node, { graceful: false, reboot: true, labels: ['EPHEMERAL'] })).ok).toBe(true);
    const etcd = async () => {
      const r = (await g.client.serviceList([node]).catch(() => []))[0];
      return r?.ok ? (r.value.find((s) => s.id === 'etcd') ?? null) : null;
    };
    await sleep(300);
    while ((await etcd())?.state !== 'Preparing') await sleep(50);
    const opId = `bootstrap:${node}:0`;
    const input = { node, skipHashCheck: false, opId, wiped: true, uploadSent: true };
    void bootstrapNode(effectDepsOf(g, answerNeverComes(g.client, 'bootstrap')), input);
    while (g.sim.destructiveCalls().bootstrap[node] !== 1) await sleep(5);
    // the new runner's history is there (its restore failed: no upload)
    while ((await etcd())?.state === 'Preparing') await sleep(20);

    // the resumed run
    const done = await bootstrapNode(effectDepsOf(g, g.client), input).catch((e: unknown) => e);
    expect(g.sim.destructiveCalls().bootstrap[node]).toBe(1);
    expect(done).toEqual({ alreadyDone: true });
    expect(
      readJournal(g.incident.dir).find((r) => r.kind === 'action' && r.opId === opId && r.phase === 'after')?.result,
    ).toBe('the node shows it happened: not sent again');
  }, 60_000);
});
