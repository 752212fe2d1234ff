/**
 * The NOSPACE playbook end to end against the simulator (scenario `nospace`: every member over its quota with the
 * NOSPACE alarm, writes refused, quorum holding): the machine with the real Talos client over the wire.
 * - autopilot: snapshot first, the followers defragmented one at a time and the leader last, each once; one disarm;
 *   the cluster takes writes again and no alarm comes back;
 * - a resume after the process died with a defragment sent and never answered: the ledger checks the member's size,
 *   sees it shrank, and does not send it again; the playbook goes on to the disarm.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { waitFor, type Snapshot } from 'xstate';
import { driveAutopilot } from '../../src/wizard/autopilot.js';
import { timingFor } from '../../src/wizard/run.js';
import { readJournal } from '../../src/journal/journal.js';
import type { TalosClient } from '../../src/talos/types.js';
import { closeGrounds, runScenario, SPEED, startGround, startSessionOn, type DrillRun } from './harness.js';

const runs: DrillRun[] = [];
afterAll(async () => {
  for (const r of runs) await r.sim.stop();
  await closeGrounds();
});

const sum = (counts: Record<string, number>) => Object.values(counts).reduce((a, b) => a + b, 0);

describe('nospace drill', () => {
  it('autopilot: snapshot, followers then the leader defragmented once each, one disarm, writes accepted again', async () => {
    const r = await runScenario('nospace');
    runs.push(r);
    expect(r.lines.at(-1)).toBe('outcome: nospace-cleared');
    expect(r.code).toBe(0);
    const steps = r.lines.filter((l) => l.startsWith('step ')).map((l) => l.split(':')[0]);
    expect(steps.slice(1)).toEqual([
      'step 2/6 assess',
      'step 3/6 snapshot',
      'step 4/6 defragment',
      'step 5/6 disarm alarm',
      'step 6/6 check space',
    ]);
    const leader = r.context.nospace?.leader as string;
    const controlPlane = r.sim.nodes;
    expect(controlPlane).toContain(leader);
    // each control-plane member once, none of the worker; one disarm; nothing wiped or bootstrapped
    const calls = r.sim.destructiveCalls();
    for (const node of controlPlane) expect(calls.defragment[node], node).toBe(1);
    expect(sum(calls.defragment)).toBe(controlPlane.length);
    expect(sum(calls.alarmDisarm)).toBe(1);
    expect(sum(calls.reset) + sum(calls.bootstrap)).toBe(0);
    // journalled before and after each, the leader's last, after the verified snapshot
    const journal = r.journal;
    const defrags = journal.filter(
      (j) => j.kind === 'action' && j.phase === 'before' && j.opId?.startsWith('defragment:'),
    );
    expect(defrags.map((j) => j.node)).toHaveLength(controlPlane.length);
    expect(defrags.at(-1)?.node).toBe(leader);
    const snapshotAt = journal.findIndex((j) => j.kind === 'step' && j.what === 'step 3 done');
    expect(snapshotAt).toBeGreaterThan(-1);
    expect(journal.indexOf(defrags[0]!)).toBeGreaterThan(snapshotAt);
    for (const d of defrags)
      expect(journal.some((j) => j.kind === 'action' && j.phase === 'after' && j.opId === d.opId && j.ok)).toBe(true);
    // every defragment and the disarm confirmed by typing the node's address
    const typed = journal.filter((j) => j.kind === 'confirmation' && /typed /.test(j.result ?? ''));
    expect(typed.map((j) => j.node)).toEqual([...defrags.map((d) => d.node), r.context.nospace?.order[0]]);
    // each member's size before and after, and what was reclaimed
    for (const m of r.context.nospace?.members ?? []) {
      expect(m.status).toBe('done');
      expect(m.dbSizeAfter).toBeLessThan(m.dbSizeBefore ?? 0);
    }
    const row = (name: string) => r.context.steps.find((s) => s.name === name)?.result ?? '';
    expect(row('defragment')).toMatch(/^3\/3 defragmented: .* \(leader\); \d+\.\d MiB reclaimed$/);
    expect(row('check space')).toMatch(/^no alarm after the disarm; .* reclaimed; The largest member now uses/);
    // the cluster is writable again, and stays so
    expect(await r.sim.etcdWrite()).toEqual({ ok: true });
    expect(journal.at(-1)).toMatchObject({ kind: 'outcome', result: 'nospace-cleared' });
    expect(JSON.stringify(journal)).not.toMatch(/BEGIN|machine:\s/);
  }, 90_000);

  it('resumed after dying with a defragment sent and unanswered: the member is checked, not defragmented again', async () => {
    const g = await startGround('nospace', 'autopilot');
    let first: ReturnType<typeof startSessionOn> | null = null;
    let saved: Snapshot<unknown> | null = null;
    let cut = false;
    const real = g.client;
    // the "crash": the first defragment reaches the node, its answer never comes back, and the process stops
    g.client = hook(real, async (node) => {
      if (cut) return real.etcdDefragment(node, { timeoutMs: 60_000 });
      cut = true;
      saved = first?.actor.getPersistedSnapshot() ?? null;
      await real.etcdDefragment(node, { timeoutMs: 60_000 });
      first?.stop();
      return new Promise(() => undefined);
    });
    first = startSessionOn(g);
    const stopFirst = pilot(first);
    await waitFor(first.actor, (s) => s.status !== 'active', { timeout: 60_000 }).catch(() => undefined);
    stopFirst();
    expect(saved).not.toBeNull();
    const journalBefore = readJournal(g.incident.dir);
    const sent = journalBefore.filter((j) => j.opId?.startsWith('defragment:') && j.phase === 'before');
    expect(sent).toHaveLength(1);
    expect(journalBefore.some((j) => j.opId === sent[0]!.opId && j.phase === 'after')).toBe(false);

    const second = startSessionOn(g, saved!);
    const stopSecond = pilot(second);
    try {
      expect((await second.settled).outcome).toBe('nospace-cleared');
    } finally {
      stopSecond();
    }
    const calls = g.sim.destructiveCalls();
    for (const node of g.sim.nodes) expect(calls.defragment[node], node).toBe(1);
    expect(sum(calls.alarmDisarm)).toBe(1);
    const checked = readJournal(g.incident.dir).filter((j) => j.opId === sent[0]!.opId && j.phase === 'after');
    expect(checked.map((j) => j.result)).toEqual(['the node shows it happened: not sent again']);
  }, 120_000);
});

function pilot(session: ReturnType<typeof startSessionOn>): () => void {
  return driveAutopilot(session, {
    print: () => undefined,
    timeLimitMs: 60_000,
    repeatPauseMs: timingFor(SPEED).pollMs,
  });
}

/** The real client, with EtcdDefragment going through `defragment`. */
function hook(client: TalosClient, defragment: (node: string) => ReturnType<TalosClient['etcdDefragment']>) {
  return new Proxy(client, {
    get(target, prop, receiver) {
      const value: unknown = Reflect.get(target, prop, receiver);
      if (prop === 'etcdDefragment') return (node: string) => defragment(node);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}
