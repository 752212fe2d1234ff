/**
 * Every scenario of PRODUCT.md §4, end to end: the machine with the real client against the simulator, autopilot
 * answering. Asserts the outcome a trainer expects, what the simulator says happened to the cluster (destructive
 * calls, the restored data) and what the journal recorded.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { waitFor } from 'xstate';
import { closeGrounds, runScenario, SPEED, startGround, type DrillRun } from './harness.js';
import { finished, startSession } from '../../src/wizard/session.js';
import { timingFor } from '../../src/wizard/run.js';
import { connectMaintenance } from '../../src/talos/maintenance.js';
import { readJournal } from '../../src/journal/journal.js';

const runs: DrillRun[] = [];
afterAll(async () => {
  for (const r of runs) await r.sim.stop();
  await closeGrounds();
});

async function drill(name: string, opts: { timeLimitMs?: number } = {}): Promise<DrillRun> {
  const r = await runScenario(name, opts);
  runs.push(r);
  return r;
}

const outcomeLine = (r: DrillRun) => r.lines.at(-1);
const actions = (r: DrillRun, phase: 'before' | 'after') =>
  r.journal.filter((j) => j.kind === 'action' && j.phase === phase);
const sum = (counts: Record<string, number>) => Object.values(counts).reduce((a, b) => a + b, 0);

function expectRecovered(r: DrillRun) {
  expect(outcomeLine(r)).toBe('outcome: recovered');
  expect(r.code).toBe(0);
  // the data check: the bootstrap node holds exactly the snapshot's keys
  expect(r.sim.dataReport().keysMatchSnapshot).toBe(true);
  // all control-plane nodes back in etcd
  for (const v of r.sim.view().filter((n) => n.machineType === 'controlplane')) expect(v.etcdState).toBe('Running');
  // one line per step, in order, then the score just before the outcome
  // ten steps: the tenth restarts every kubelet and checks the control plane after the restore
  expect(r.lines.filter((l) => l.startsWith('step ')).map((l) => l.split(' ')[1])).toEqual([
    '1/10',
    '2/10',
    '3/10',
    '4/10',
    '5/10',
    '6/10',
    '7/10',
    '8/10',
    '9/10',
    '10/10',
  ]);
  expect(r.lines.find((l) => l.startsWith('step 10/10 after restore: kubelet restarted on '))).toBeDefined();
  expect(r.lines.at(-2)).toMatch(/^score: time to recover \d+ s; data lost .+; mistakes the guards stopped 0$/);
  // every destructive call once: one reset per wiped node, one bootstrap
  const calls = r.sim.destructiveCalls();
  expect(Object.values(calls.reset).every((n) => n <= 1)).toBe(true);
  expect(sum(calls.reset)).toBe(r.context.plan.filter((p) => p.preparation === 'wipe').length);
  expect(sum(calls.bootstrap)).toBe(1);
  // journalled before and after every action, with who confirmed
  const before = actions(r, 'before').map((a) => a.opId);
  for (const id of before) expect(actions(r, 'after').some((a) => a.opId === id)).toBe(true);
  expect(
    r.journal.some((j) => j.kind === 'confirmation' && j.by === 'autopilot' && /typed /.test(j.result ?? '')),
  ).toBe(true);
  expect(r.journal.at(-1)).toMatchObject({ kind: 'outcome', result: 'recovered' });
  // no secrets: no PEM block or machine config in the journal
  expect(JSON.stringify(r.journal)).not.toMatch(/BEGIN|machine:\s/);
}

describe('drill scenarios against the simulator', () => {
  it('lost-quorum: snapshot from the survivor, wipe all, bootstrap, all 3 rejoin', async () => {
    const r = await drill('lost-quorum');
    expectRecovered(r);
    const survivor = r.context.verdict?.freshest;
    expect(r.context.snapshot).toMatchObject({ method: 'api', node: survivor, integrity: 'verified' });
    expect(Object.values(r.sim.destructiveCalls().reset).filter((n) => n > 0)).toHaveLength(3);
    // the snapshot source is wiped last (SAFETY rule 3)
    const resets = actions(r, 'before').filter((a) => a.opId?.startsWith('reset:'));
    expect(resets.at(-1)?.node).toBe(survivor);
    // every answer journalled once, saying what was answered: the option chosen, the address typed
    const answers = r.journal.filter((j) => j.kind === 'confirmation');
    const questions = answers.map((j) => j.what.replace(/^autopilot answered: /, ''));
    expect(questions).toEqual([...new Set(questions)]);
    expect(answers.map((j) => j.result)).toEqual(
      expect.arrayContaining([`chose "take a consistent snapshot from ${survivor} (freshest member)"`]),
    );
    expect(answers.filter((j) => j.result === 'choose')).toEqual([]);
    expect(r.sim.dataReport().lostRevisions).toBe(0);
  });

  it('lost-quorum-5 (shipped): five control-plane nodes, all five wiped and back as voting members, nothing lost', async () => {
    const r = await drill('lost-quorum-5');
    expectRecovered(r);
    expect(Object.values(r.sim.destructiveCalls().reset).filter((n) => n > 0)).toHaveLength(5);
    expect(r.context.snapshot).toMatchObject({ method: 'api', node: r.context.verdict?.freshest });
    // verify saw all five Running and healthy with agreeing member lists (joiners promoted one at a time)
    expect(r.lines.some((l) => /^step 9\/10 verify: .*all 5 nodes Running, healthy, members agree/.test(l))).toBe(true);
    expect(r.sim.dataReport().lostRevisions).toBe(0);
  });

  it('etcd-down-raw-copy: raw db copy, skip-hash-check acknowledged, recovery', async () => {
    const r = await drill('etcd-down-raw-copy');
    expectRecovered(r);
    expect(r.context.snapshot).toMatchObject({ method: 'raw', integrity: 'absent', needsSkipHashCheck: true });
    expect(r.context.skipHashCheckAcknowledged).toBe(true);
    expect(r.journal.some((j) => j.kind === 'confirmation' && /skip-hash-check/.test(j.what))).toBe(true);
    expect(r.journal.some((j) => j.kind === 'action' && /recover_skip_hash_check/.test(j.what))).toBe(true);
  });

  it('hardware-failure: the blank machines are re-created from given/ backups, recovery', async () => {
    const r = await drill('hardware-failure');
    expectRecovered(r);
    const recreated = r.context.plan.filter((p) => p.preparation === 'recreate').map((p) => p.node);
    expect(recreated).toHaveLength(2);
    for (const n of recreated) expect(r.context.configs[n]?.source).toBe('given');
    expect(sum(r.sim.destructiveCalls().apply)).toBe(2);
  });

  it('init-node: the init node is converted first, then recovery', async () => {
    const r = await drill('init-node');
    expectRecovered(r);
    expect(r.context.converted).toHaveLength(1);
    const convert = r.journal.findIndex((j) => j.kind === 'action' && j.opId?.startsWith('convert:'));
    const firstReset = r.journal.findIndex((j) => j.kind === 'action' && j.opId?.startsWith('reset:'));
    expect(convert).toBeGreaterThan(-1);
    expect(convert).toBeLessThan(firstReset);
  });

  it('quorum-intact: cp-3 named unreachable; autopilot waits for it to the time limit and never removes or wipes', async () => {
    const r = await drill('quorum-intact', { timeLimitMs: 10_000 });
    // the assessment names the powered-off member and chooses the guided replacement, not a full recovery
    expect(r.context.verdict).toMatchObject({ verdict: 'degraded' });
    expect(r.context.verdict?.broken).toEqual([expect.objectContaining({ name: 'cp-3', kind: 'unreachable' })]);
    expect(r.lines).toContain('step 2/8 assess: quorum holds: replacing cp-3 (not answering)');
    // a member that may come back is only waited for: its removal needs a typed decision autopilot never makes
    const calls = r.sim.destructiveCalls();
    expect(sum(calls.removeMember)).toBe(0);
    expect(sum(calls.reset) + sum(calls.bootstrap) + sum(calls.apply) + sum(calls.reboot) + sum(calls.recover)).toBe(0);
    expect(r.journal.some((j) => j.kind === 'confirmation' && /Remove etcd member/.test(j.what ?? ''))).toBe(false);
    // the wait is journalled with the member it is for, and the run ends there at the time limit
    const cp3 = r.sim.view().find((n) => n.hostname === 'cp-3')?.address as string;
    expect(r.journal.find((j) => j.kind === 'decision' && j.what === `replace member: ${cp3}`)?.result).toMatch(
      /does not answer .* it is waited for before anything is removed/,
    );
    const reason = `the time limit was reached while waiting for cp-3 (${cp3}) to answer`;
    expect(r.lines).toContain(`step 5/8 remove member: failed: ${reason}`);
    expect(outcomeLine(r)).toBe(`outcome: failed: ${reason}`);
    expect(r.code).toBe(1);
  });

  it('quorum-intact answered like a trainee: after the count-down, "remove" and cp-3 typed: one removal, cp-3 kept off', async () => {
    const g = await startGround('quorum-intact', 'trainee');
    const cp3 = g.sim.view().find((n) => n.hostname === 'cp-3')?.address as string;
    // the drill's own speed, with a count-down short enough for a test (its floor is 20 s of wall time)
    const session = startSession({
      deps: {
        client: g.client,
        connectMaintenance: (node) => connectMaintenance(`${node}:${g.sim.port}`, { connectTimeoutMs: 2000 }),
        incident: g.incident,
        journal: g.journal,
        operator: g.operator,
        statusTimeoutMs: 1000,
      },
      input: {
        nodes: g.sim.nodes,
        operator: g.operator,
        mode: 'drill',
        timing: { ...timingFor(SPEED), nodeBackTimeoutMs: 2000 },
      },
      envelope: { mode: 'drill', nodes: g.sim.nodes },
    });
    const asked: string[] = [];
    try {
      // the trainee's answers: "remove" after the count-down, cp-3's address typed; elsewhere the recommended answer
      for (;;) {
        const snap = await waitFor(session.actor, (x) => x.context.prompt !== null || finished(x), { timeout: 30_000 });
        const prompt = snap.context.prompt;
        if (finished(snap) || !prompt) break;
        asked.push(prompt.id);
        if (prompt.id === 'still-down:' + cp3) session.actor.send({ type: 'choose', option: 'remove' });
        else if (prompt.id === 'remove-member:' + cp3) session.actor.send({ type: 'confirm', address: cp3 });
        else if (prompt.recommended) session.actor.send(prompt.recommended);
        else throw new Error(`no answer for ${prompt.id}`);
        await waitFor(session.actor, (x) => x.context.prompt?.id !== prompt.id || finished(x), { timeout: 10_000 });
      }
      const context = await session.settled;
      expect(asked).toEqual(expect.arrayContaining([`still-down:${cp3}`, `remove-member:${cp3}`, `keep-off:${cp3}`]));
      expect(context.outcome).toBe('member-replaced');
      // one EtcdRemoveMemberByID, through a healthy member, never through cp-3; nothing wiped or bootstrapped
      const calls = g.sim.destructiveCalls();
      expect(sum(calls.removeMember)).toBe(1);
      expect(calls.removeMember[cp3] ?? 0).toBe(0);
      expect(sum(calls.reset) + sum(calls.bootstrap) + sum(calls.apply) + sum(calls.recover)).toBe(0);
      expect(context.replace?.keptOff).toEqual([cp3]);
      const journal = readJournal(g.incident.dir);
      expect(
        journal.some(
          (j) => j.kind === 'confirmation' && j.result === `typed ${cp3}` && /Remove etcd member/.test(j.what),
        ),
      ).toBe(true);
    } finally {
      session.stop();
    }
  }, 60_000);

  it('single-node: recovery from the snapshot file in given/', async () => {
    const r = await drill('single-node');
    expectRecovered(r);
    expect(r.context.snapshot?.method).toBe('file');
    // the file from given/ is used through its copy in the incident folder (evidence, and safe from a later move)
    expect(r.context.snapshot?.file).toMatch(/\/snapshots\/given-etcd-nightly\.snapshot$/);
    // an older file: the data-loss window is shown and the score counts what was lost
    expect(r.lines.some((l) => l.startsWith('data-loss window: snapshot revision'))).toBe(true);
    expect(r.sim.dataReport().lostRevisions).toBeGreaterThan(0);
  });

  it('stuck-waiting: names the cause, then autopilot takes the right answer: cp-3 left out, with the cause as reason', async () => {
    const r = await drill('stuck-waiting');
    expect(outcomeLine(r)).toBe('outcome: recovered');
    expect(r.code).toBe(0);
    expect(r.sim.dataReport().keysMatchSnapshot).toBe(true);
    // every node but the one left out is back in etcd; the one left out still waits for its clock
    const left = r.context.excluded[0];
    for (const v of r.sim.view().filter((n) => n.machineType === 'controlplane'))
      expect(v.etcdState, v.address).toBe(v.address === left ? 'Waiting' : 'Running');
    // one override, after the wait for Preparing ran out, whose reason names the cause (time sync) to fix afterwards
    expect(r.context.overrides).toHaveLength(1);
    expect(r.context.overrides[0]?.reason).toMatch(/time/i);
    expect(r.context.excluded).toHaveLength(1);
    expect(sum(r.sim.destructiveCalls().bootstrap)).toBe(1);
  });

  it('flaky-network: cut streams are restarted from zero, recovery with no corrupt file kept', async () => {
    const r = await drill('flaky-network');
    expectRecovered(r);
    const { readdirSync } = await import('node:fs');
    const files = readdirSync(`${r.dir}/snapshots`);
    expect(files.filter((f) => f.endsWith('.part'))).toEqual([]);
    expect(files.filter((f) => !f.endsWith('.sha256'))).toHaveLength(1);
  });
});
