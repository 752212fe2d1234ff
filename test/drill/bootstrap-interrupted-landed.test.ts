/**
 * A Bootstrap that reached the node, then the process died before the answer was journalled (SAFETY rule 6: never
 * re-send Bootstrap while a restore may still run). The resumed run decides from one read of the node whether it
 * landed; a read in which etcd's service history does not show (its service list timed out on a loaded machine while
 * the node's version answered) is no evidence either way, and taking it for "not landed" sent Bootstrap again.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { readJournal } from '../../src/journal/journal.js';
import { bootstrapNode } from '../../src/wizard/destructive.js';
import { closeGrounds, startGround } from './harness.js';
import { journalSent, LANDED, QUICK_READS_MS, sleep, until } from './interrupted.js';
import { effectDepsOf, losingReads } from './lossy-client.js';

afterAll(closeGrounds);

describe('a Bootstrap that reached the node before the crash', () => {
  it('is not sent again when the first read of the node loses its service list', async () => {
    const g = await startGround('lost-quorum');
    const node = g.sim.nodes[0]!;
    // the node as step 8 finds it: wiped, back, its etcd waiting in Preparing
    expect((await g.client.reset(node, { graceful: false, reboot: true, labels: ['EPHEMERAL'] })).ok).toBe(true);
    const etcdState = async () => {
      const r = (await g.client.serviceList([node]).catch(() => []))[0];
      return r?.ok ? (r.value.find((s) => s.id === 'etcd')?.state ?? null) : null;
    };
    await sleep(300);
    await until(async () => (await etcdState()) === 'Preparing', 50);
    const opId = `bootstrap:${node}:0`;
    journalSent(g, { opId, node, what: 'bootstrap (recover_etcd)' });
    expect((await g.client.bootstrap(node, { recoverEtcd: false, recoverSkipHashCheck: false })).ok).toBe(true);
    // the crash: the answer was never journalled; the resumed run's first read of the node loses its service list
    const done = await bootstrapNode(
      effectDepsOf(g, losingReads(g.client, 'serviceList', { left: 1 }, { node }), QUICK_READS_MS),
      {
        node,
        skipHashCheck: false,
        opId,
        wiped: true,
        uploadSent: true,
      },
    );
    expect(done).toEqual({ alreadyDone: true });
    const after = readJournal(g.incident.dir).find(
      (r) => r.kind === 'action' && r.opId === opId && r.phase === 'after',
    );
    expect(after?.result).toBe(LANDED);
    expect(g.sim.destructiveCalls().bootstrap[node]).toBe(1);
  }, 60_000);
});
