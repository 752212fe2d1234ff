/**
 * Every SAFETY.md rule is a guard; each test here tries to get past one. The machine runs with the real client
 * against the simulator (src/commands effects, the same as a real run), driven by hand like a careless user would,
 * and the simulator's counters prove that nothing destructive went out when a guard said no.
 */
import { appendFileSync, chmodSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { waitFor } from 'xstate';
import type { SimCluster } from '../../src/sim/types.js';
import { readJournal } from '../../src/journal/journal.js';
import type { Session } from '../../src/wizard/session.js';
import { firstRefusal, RULE_CITATION, RULES } from '../../machines/guards.js';
import { recoveryMachine, type RecoveryContext, type RecoveryEvent } from '../../machines/recovery.js';
import { closeGrounds, startGround, startSessionOn } from '../drill/harness.js';

afterAll(closeGrounds);

interface Bench {
  sim: SimCluster;
  session: Session;
  dir: string;
}

async function bench(scenario: string): Promise<Bench> {
  const ground = await startGround(scenario);
  return { sim: ground.sim, session: startSessionOn(ground), dir: ground.incident.dir };
}

const ctx = (b: Bench): RecoveryContext => b.session.actor.getSnapshot().context;
async function prompt(b: Bench, id: string | RegExp) {
  const snap = await waitFor(
    b.session.actor,
    (s) => {
      const p = s.context.prompt;
      return Boolean(p && (typeof id === 'string' ? p.id === id : id.test(p.id))) || s.status === 'done';
    },
    { timeout: 20_000 },
  );
  const p = snap.context.prompt;
  if (!p) throw new Error(`no prompt ${String(id)}; outcome ${snap.context.outcome}`);
  return p;
}
const settle = () => new Promise((r) => setTimeout(r, 150));
const total = (m: Record<string, number>) => Object.values(m).reduce((a, b) => a + b, 0);
const destructive = (b: Bench) => {
  const c = b.sim.destructiveCalls();
  return total(c.reset) + total(c.bootstrap) + total(c.apply) + total(c.reboot) + total(c.recover);
};

describe('guards against the simulator', () => {
  it('lost-quorum: no wipe before a verified snapshot, wrong or empty addresses refused, Bootstrap never twice', async () => {
    const b = await bench('lost-quorum');
    const { actor } = b.session;
    await prompt(b, 'confirm-nodes');
    actor.send({ type: 'answer.yes' });
    const source = await prompt(b, 'snapshot-source');
    // Rule 2: a wipe confirmation before any snapshot exists goes nowhere.
    actor.send({ type: 'confirm', address: b.sim.nodes[1] as string });
    await settle();
    expect(actor.getSnapshot().context.prompt?.id).toBe('snapshot-source');
    expect(destructive(b)).toBe(0);
    actor.send({ type: 'choose', option: (source.recommended as { option: string }).option });

    const first = await prompt(b, /^prepare:/);
    const freshest = ctx(b).verdict?.freshest as string;
    expect(first.target).not.toBe(freshest); // the snapshot source is wiped last
    // Rule 3: the node typed must be the node the request acts on.
    actor.send({ type: 'confirm', address: freshest });
    actor.send({ type: 'confirm', address: '' });
    actor.send({ type: 'confirm', address: `${first.target} ` + 'x' });
    await settle();
    expect(total(b.sim.destructiveCalls().reset)).toBe(0);
    expect(ctx(b).guardStops.map((g) => g.rule)).toEqual(['addressMatches', 'addressMatches', 'addressMatches']);
    expect(ctx(b).notice).toMatch(/type .* exactly/);
    for (;;) {
      const p = await prompt(b, /^(prepare|bootstrap):/);
      if (p.id.startsWith('bootstrap:')) break;
      await settle();
      actor.send({ type: 'confirm', address: p.target as string });
    }
    const boot = await prompt(b, /^bootstrap:/);
    actor.send({ type: 'confirm', address: '127.0.0.1' });
    await settle();
    expect(total(b.sim.destructiveCalls().bootstrap)).toBe(0);
    actor.send({ type: 'confirm', address: boot.target as string });
    await waitFor(actor, (s) => s.matches({ procedure: 'verify' }) || s.status === 'done', { timeout: 20_000 });
    // Rule 6: once sent, another confirmation cannot send Bootstrap again.
    actor.send({ type: 'confirm', address: boot.target as string });
    // after the restore, the kubelet restarts are offered: answered as recommended
    const after = await prompt(b, /^after-restore:/);
    actor.send(after.recommended as RecoveryEvent);
    const done = await waitFor(actor, (s) => s.status === 'done', { timeout: 30_000 });
    expect(done.context.outcome).toBe('recovered');
    expect(total(b.sim.destructiveCalls().bootstrap)).toBe(1);
    expect(done.context.guardStops).toHaveLength(4);
    const refusals = readJournal(b.dir).filter((r) => r.kind === 'refusal');
    expect(refusals).toHaveLength(4);
    expect(refusals.every((r) => r.by === 'tester')).toBe(true);
    // each names the rule that stopped it, the same way: a typed address is rule 3
    expect(refusals.map((r) => /\(SAFETY rule (\d+)\)\.$/.exec(r.result ?? '')?.[1])).toEqual(['3', '3', '3', '3']);
  }, 60_000);

  it('quorum-intact: no full recovery without a reason; an override is journalled with its reason', async () => {
    const b = await bench('quorum-intact');
    const { actor } = b.session;
    // cp-3 is powered off: after a short count-down the assessment goes on without it (it only reads)
    const silent = await prompt(b, /^unanswered:/);
    expect(silent.id).toBe(`unanswered:${b.sim.nodes[2]}`);
    actor.send({ type: 'choose', option: 'assess' });
    await prompt(b, 'confirm-nodes');
    actor.send({ type: 'answer.yes' });
    await prompt(b, 'quorum-holds');
    actor.send({ type: 'override', reason: '  ' });
    await settle();
    expect(actor.getSnapshot().context.prompt?.id).toBe('quorum-holds');
    expect(ctx(b).guardStops.map((g) => g.rule)).toEqual(['reasonGiven']);
    // a snapshot choice cannot be slipped in while the verdict stands
    actor.send({ type: 'choose', option: `api:${b.sim.nodes[0]}` });
    await settle();
    expect(actor.getSnapshot().context.prompt?.id).toBe('quorum-holds');
    actor.send({ type: 'override', reason: 'member 3 disk is gone and the others lie' });
    // Rule 14: the full recovery first waits for cp-3, which has not answered, with a count-down on screen
    const gate = await waitFor(
      actor,
      (x) => x.context.attempt?.action.startsWith(`wait for ${b.sim.nodes[2]} to answer`) ?? false,
      {
        timeout: 10_000,
      },
    );
    expect(gate.matches({ procedure: 'connect' })).toBe(true);
    expect(gate.context.snapshot).toBeNull();
    expect(ctx(b).overrides).toMatchObject([{ what: 'full recovery', by: 'tester' }]);
    const journalled = readJournal(b.dir).find((r) => r.kind === 'override');
    expect(journalled).toMatchObject({ what: 'full recovery', result: 'member 3 disk is gone and the others lie' });
    actor.send({ type: 'abort' });
    const s = await waitFor(actor, (x) => x.value === 'stoppedByUser', { timeout: 5000 });
    expect(s.context.outcome).toBe('stopped-by-user');
    expect(destructive(b)).toBe(0);
  }, 60_000);

  it('etcd-down-raw-copy: skip-hash-check is never set without the acknowledgement', async () => {
    const b = await bench('etcd-down-raw-copy');
    const { actor } = b.session;
    await prompt(b, 'confirm-nodes');
    actor.send({ type: 'answer.yes' });
    const choice = await prompt(b, 'snapshot-source');
    actor.send({ type: 'choose', option: (choice.recommended as { option: string }).option });
    const ack = await prompt(b, 'skip-hash-check');
    expect(ack.kind).toBe('acknowledge');
    expect(ack.risk).toMatch(/writes after the copy point may be missing/i);
    // refusing the risk drops this copy; nothing moves on silently
    actor.send({ type: 'answer.no' });
    const again = await prompt(b, 'snapshot-source');
    expect(ctx(b).snapshot).toBeNull();
    expect(ctx(b).skipHashCheckAcknowledged).toBe(false);
    expect(again.detail).toMatch(/skip-hash-check not acknowledged/);
    expect(destructive(b)).toBe(0);
    actor.send({ type: 'abort' });
  }, 60_000);

  it('a snapshot whose sha256 changed after verification is never uploaded', async () => {
    const b = await bench('single-node');
    const { actor } = b.session;
    await prompt(b, 'confirm-nodes');
    actor.send({ type: 'answer.yes' });
    for (;;) {
      const p = await prompt(b, /^(snapshot-source|prepare:|bootstrap:)/);
      if (p.id.startsWith('bootstrap:')) break;
      await settle();
      if (p.id === 'snapshot-source') {
        const given = ctx(b).snapshotOptions.find((o) => o.method === 'file');
        actor.send({ type: 'choose', option: given?.id as string });
      } else actor.send({ type: 'confirm', address: p.target as string });
    }
    const boot = await prompt(b, /^bootstrap:/);
    const file = ctx(b).snapshot?.file as string;
    const before = readFileSync(file);
    chmodSync(file, 0o600);
    appendFileSync(file, Buffer.from('tampered'));
    actor.send({ type: 'confirm', address: boot.target as string });
    const done = await waitFor(actor, (s) => s.status === 'done', { timeout: 20_000 });
    expect(done.context.outcome).toMatch(/^failed: .*changed since it was verified/);
    expect(total(b.sim.destructiveCalls().recover)).toBe(0);
    expect(total(b.sim.destructiveCalls().bootstrap)).toBe(0);
    expect(done.context.guardStops.map((g) => g.rule)).toContain('snapshotUnchanged');
    expect(readFileSync(file).subarray(0, before.length).equals(before)).toBe(true);
  }, 60_000);
  it('a snapshot file gone or changed before a wipe stops the wipes (SAFETY rule 1); put back, they go on', async () => {
    const b = await bench('lost-quorum');
    const { actor } = b.session;
    await prompt(b, 'confirm-nodes');
    actor.send({ type: 'answer.yes' });
    const source = await prompt(b, 'snapshot-source');
    actor.send({ type: 'choose', option: (source.recommended as { option: string }).option });
    const first = await prompt(b, /^prepare:/);
    actor.send({ type: 'confirm', address: first.target as string });
    const second = await prompt(b, new RegExp(`^prepare:(?!${(first.target as string).replace(/\./g, '\\.')}$)`));
    const file = ctx(b).snapshot?.file as string;
    const original = readFileSync(file);
    // the file disappears (moved away by someone else) while the first node is being wiped
    renameSync(file, `${file}.moved`);
    actor.send({ type: 'confirm', address: second.target as string });
    const stop = await prompt(b, 'snapshot-changed');
    expect(stop.recommended).toBeNull();
    expect(stop.options?.map((o) => o.id)).toEqual(['again', 'stop']);
    expect(ctx(b).notice).toMatch(
      /cannot be read any more.*: nothing more is wiped or uploaded until the verified file is back \(SAFETY rule 1\)\.$/,
    );
    await settle();
    expect(b.sim.destructiveCalls().reset[second.target as string] ?? 0).toBe(0);
    // checked again while still missing: still stopped
    actor.send({ type: 'choose', option: 'again' });
    await waitFor(actor, (s) => s.context.prompt?.id === 'snapshot-changed' && s.context.guardStops.length === 2, {
      timeout: 5000,
    });
    // a file with other bytes under the same name is not the verified snapshot either
    writeFileSync(file, Buffer.concat([original, Buffer.from('x')]), { mode: 0o600 });
    actor.send({ type: 'choose', option: 'again' });
    await waitFor(actor, (s) => s.context.guardStops.length === 3, { timeout: 5000 });
    expect(ctx(b).notice).toMatch(/changed since it was verified \(sha256 [0-9a-f]{12}…, verified [0-9a-f]{12}…\)/);
    expect(b.sim.destructiveCalls().reset[second.target as string] ?? 0).toBe(0);
    // the verified file back: the wipe goes on
    rmSync(file);
    renameSync(`${file}.moved`, file);
    actor.send({ type: 'choose', option: 'again' });
    await waitFor(actor, () => (b.sim.destructiveCalls().reset[second.target as string] ?? 0) === 1, {
      timeout: 10_000,
    });
    actor.send({ type: 'abort' });
    const refusals = readJournal(b.dir).filter((r) => r.kind === 'refusal');
    expect(refusals.map((r) => r.what)).toEqual(['snapshotUnchanged', 'snapshotUnchanged', 'snapshotUnchanged']);
    expect(refusals.every((r) => /\(SAFETY rule 1\)\.$/.test(r.result ?? ''))).toBe(true);
  }, 60_000);
});

describe('the rules themselves', () => {
  const base = (over: Partial<RecoveryContext> = {}): RecoveryContext =>
    ({
      verdict: { verdict: 'lost', reason: '', freshest: 'a' },
      overrides: [],
      snapshot: null,
      observations: [],
      wiped: [],
      bootstrap: {
        node: 'a',
        skipHashCheck: false,
        uploadSent: false,
        uploaded: false,
        bootstrapSent: false,
        bootstrapAnswered: false,
      },
      skipHashCheckAcknowledged: false,
      ...over,
    }) as RecoveryContext;
  const snap = (over: object = {}) =>
    ({
      file: 'f',
      sha256: 'x',
      usable: true,
      kind: 'bbolt',
      structure: 'ok',
      integrity: 'verified',
      needsSkipHashCheck: false,
      problems: [],
      ...over,
    }) as unknown as RecoveryContext['snapshot'];
  const confirm = { type: 'confirm' as const, address: 'a' };

  it('rule 2: no wipe without a verified, usable snapshot', () => {
    expect(RULES.snapshotVerified(base(), confirm, 'a')).toMatch(/rule 2/);
    expect(RULES.snapshotVerified(base({ snapshot: snap({ integrity: 'mismatch' }) }), confirm, 'a')).toMatch(/rule 2/);
    expect(RULES.snapshotVerified(base({ snapshot: snap() }), confirm, 'a')).toBeNull();
  });
  it('rule 3: the source and the last data holder keep their data until then', () => {
    expect(RULES.sourceKeptUntilVerified(base(), confirm, 'a')).toMatch(/snapshot source/);
    const one = base({
      verdict: { verdict: 'lost', reason: '', freshest: null },
      observations: [
        { node: 'b', reachable: true, machineType: 'controlplane' } as RecoveryContext['observations'][number],
      ],
    });
    expect(RULES.sourceKeptUntilVerified(one, confirm, 'b')).toMatch(/last node/);
  });
  it('rule 4: full recovery only when lost, or overridden', () => {
    expect(
      RULES.quorumLostOrOverridden(
        base({ verdict: { verdict: 'degraded', reason: '', freshest: null } }),
        confirm,
        null,
      ),
    ).toMatch(/rule 4/);
    expect(
      RULES.quorumLostOrOverridden(
        base({
          verdict: { verdict: 'unknown', reason: '', freshest: null },
          overrides: [{ what: 'full recovery', reason: 'r', by: 'x', at: 0 }],
        }),
        confirm,
        null,
      ),
    ).toBeNull();
  });
  it('rule 5: the recovery never uses membership changes', () => {
    // every effect lives in the runtime (src/wizard) or the commands that start it; member replacement (quorum holds)
    // is the one procedure that removes a member, from its own runtime file
    const files = ['src/wizard', 'src/commands'].flatMap((d) =>
      readdirSync(join(process.cwd(), d))
        .filter((f) => /\.tsx?$/.test(f) && f !== 'replace-member.ts')
        .map((f) => join(process.cwd(), d, f)),
    );
    const effects = files.map((f) => readFileSync(f, 'utf8')).join('\n');
    expect(effects).toMatch(/\.bootstrap\(/); // the runtime that sends the recovery's calls is among them
    expect(effects).not.toMatch(/etcdRemoveMember|etcdLeaveCluster|etcdForfeitLeadership/);
    // and the machine invokes its member removal only inside the member replacement, never on the recovery's path
    const invokes: string[] = [];
    const walk = (n: { id: string; invoke: readonly { src: unknown }[]; states: Record<string, never> }) => {
      for (const i of n.invoke) if (/remove|leave|forfeit/i.test(String(i.src))) invokes.push(n.id);
      for (const child of Object.values(n.states)) walk(child);
    };
    walk(recoveryMachine.root as never);
    expect(invokes.length).toBeGreaterThan(0);
    expect(invokes.every((id) => id.startsWith('recovery.procedure.replaceMember.'))).toBe(true);
  });
  it('every refusal names its SAFETY rule once, at its end; an override reason cites the rule it serves', () => {
    const at = (id: string) => base({ prompt: { id } as RecoveryContext['prompt'] });
    const noReason = { type: 'override', reason: '' } as const;
    expect(firstRefusal(['reasonGiven'], at('quorum-holds'), noReason, null)?.message).toMatch(
      /journal \(SAFETY rule 4\)\.$/,
    );
    expect(firstRefusal(['reasonGiven'], at('unanswered:10.5.0.4'), noReason, null)?.message).toMatch(
      /\(SAFETY rule 14\)\.$/,
    );
    const wrong = firstRefusal(['addressMatches'], base(), { type: 'confirm', address: 'b' }, 'a')?.message ?? '';
    expect(wrong).toBe('You typed "b", but this step acts on a; type a exactly to confirm (SAFETY rule 3).');
    // a sentence that already cites its rule is not cited twice
    const unverified = firstRefusal(['snapshotVerified'], base(), confirm, 'a')?.message ?? '';
    expect(unverified.match(/SAFETY rule/g)).toHaveLength(1);
    expect(unverified).toMatch(/\(SAFETY rule 2\)\.$/);
    // every recovery and member-removal rule has its number (a procedure without one is listed as such)
    const numbered = Object.entries(RULE_CITATION)
      .filter(([, n]) => n !== null)
      .map(([name]) => name);
    expect(numbered).toEqual(expect.arrayContaining(['snapshotUnchanged', 'bootstrapNotSent', 'removalKeepsQuorum']));
  });
  it('rule 6: Bootstrap is not sent twice', () => {
    expect(
      RULES.bootstrapNotSent(base({ bootstrap: { ...base().bootstrap, bootstrapSent: true } }), confirm, null),
    ).toMatch(/rule 6/);
  });
  it('rule 7: skip-hash-check only for an acknowledged raw copy whose bbolt check passed', () => {
    const raw = snap({ integrity: 'absent', needsSkipHashCheck: true });
    expect(RULES.skipHashCheckAcknowledged(base({ snapshot: raw }), confirm, null)).toMatch(/acknowledge/);
    expect(
      RULES.skipHashCheckAcknowledged(base({ snapshot: raw, skipHashCheckAcknowledged: true }), confirm, null),
    ).toBeNull();
    const damaged = snap({ integrity: 'absent', needsSkipHashCheck: true, structure: 'damaged' });
    expect(
      RULES.skipHashCheckAcknowledged(base({ snapshot: damaged, skipHashCheckAcknowledged: true }), confirm, null),
    ).toMatch(/rule 7/);
  });
  it('rule 8: only a plain, usable etcd snapshot is uploaded', () => {
    expect(
      RULES.snapshotUsable(
        base({ snapshot: snap({ kind: 'gzip', usable: false, problems: ['gzip-compressed'] }) }),
        confirm,
        null,
      ),
    ).toMatch(/gzip-compressed/);
  });
});
