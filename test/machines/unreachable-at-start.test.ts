/**
 * Issue 12 item 10 (SAFETY rules 13–15): a control-plane node that does not answer when the procedure starts is never
 * silently left out. Step 1 waits for it with what is awaited and the time left on screen; past that, the user may
 * keep waiting, stop, or leave it out by an override with a reason and its typed address, journalled with what that
 * means. Driven over the wire: the simulator's gRPC server, a node made unreachable by the scenario's fault.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { waitFor } from 'xstate';
import { closeGrounds, SPEED, startGround, type Ground } from '../drill/harness.js';
import { startSession, type Session } from '../../src/wizard/session.js';
import { timingFor } from '../../src/wizard/run.js';
import { connectMaintenance } from '../../src/talos/maintenance.js';
import { readJournal } from '../../src/journal/journal.js';
import type { Attempt, Timing } from '../../machines/recovery-types.js';

afterAll(closeGrounds);

/** lost-quorum, with cp-3 not answering for `forSec` simulated seconds from the start. */
function scenarioWithSilentNode(forSec: number): string {
  const base = readFileSync(join(import.meta.dirname, '../../scenarios/lost-quorum.yaml'), 'utf8');
  const file = join(mkdtempSync(join(tmpdir(), 'talos-dr-silent-')), 'silent-cp-3.yaml');
  writeFileSync(
    file,
    `${base.replace('name: lost-quorum', 'name: silent-cp-3')}\nfaults:\n  - { kind: unreachable, node: cp-3, forSec: ${forSec} }\n`,
  );
  return file;
}

function sessionOn(g: Ground, timing: Partial<Timing>): Session {
  return startSession({
    deps: {
      client: g.client,
      connectMaintenance: (node) => connectMaintenance(`${node}:${g.sim.port}`, { connectTimeoutMs: 2000 }),
      incident: g.incident,
      journal: g.journal,
      operator: g.operator,
      statusTimeoutMs: 500,
    },
    input: {
      nodes: g.sim.nodes,
      operator: g.operator,
      mode: 'drill',
      timing: { ...timingFor(SPEED), ...timing },
    },
    envelope: { mode: 'drill', nodes: g.sim.nodes },
  });
}

const promptId = (s: Session) => s.actor.getSnapshot().context.prompt?.id ?? null;
const until = (s: Session, id: RegExp) =>
  waitFor(s.actor, (x) => id.test(x.context.prompt?.id ?? ''), { timeout: 25_000 });

describe('a node that does not answer at the start', () => {
  it('is waited for, with what is awaited and the time left on screen, and the recovery goes on with it', async () => {
    // cp-3 is silent for 5 s of real time from the simulator's start, and the count-down at the start runs 30 reads
    // (15 s): the session's first read must come while it is silent, which took over 2 s under a load of 16 (six
    // files side by side beside other work), and it must answer before the count-down ends
    const g = await startGround(scenarioWithSilentNode(5 * SPEED), 'alice');
    const cp3 = g.sim.nodes[2] as string;
    const s = sessionOn(g, { nodeBackTimeoutMs: 60_000, pollMs: 500 });
    const lines: Attempt[] = [];
    s.actor.subscribe((x) => {
      if (x.context.attempt) lines.push(x.context.attempt);
    });
    await until(s, /^confirm-nodes$/);
    const { context } = s.actor.getSnapshot();
    // it was asked again until it answered: in the node set, answering, and the step says so
    expect(context.rows[cp3]?.reachable).toBe(true);
    expect(context.excluded).toEqual([]);
    expect(context.prompt?.question).toContain(cp3);
    expect(context.steps[0]?.result).toBe('3 of 3 nodes answered');
    // while it waited, the screen said what it waited for and how long was left
    const waiting = lines.find((a) => a.action.startsWith(`wait for ${cp3} to answer`));
    expect(waiting?.action).toMatch(/\(it may be rebooting; \d+:\d\d left before you choose\)$/);
    expect(waiting?.lastError).toBeTruthy();
    s.stop();
  }, 30_000);

  it('past the wait, is left out only by an override with a reason and its typed address, journalled with what that means', async () => {
    const g = await startGround(scenarioWithSilentNode(86_400), 'alice');
    const cp3 = g.sim.nodes[2] as string;
    const s = sessionOn(g, { nodeBackTimeoutMs: 600, pollMs: 100 });

    const asked = await until(s, /^unanswered:/);
    expect(asked.context.prompt).toMatchObject({
      id: `unanswered:${cp3}`,
      kind: 'choose',
      // the assessment only reads: it may go on without the node, which is asked again before anything is wiped
      recommended: { type: 'choose', option: 'assess' },
    });
    expect(asked.context.prompt?.options?.map((o) => o.id)).toEqual(['assess', 'wait', 'override', 'stop']);
    expect(asked.context.prompt?.options?.find((o) => o.id === 'override')?.needsReason).toBe(true);

    // an override without a reason is refused
    s.actor.send({ type: 'override', reason: ' ' });
    expect(promptId(s)).toBe(`unanswered:${cp3}`);

    s.actor.send({ type: 'override', reason: 'cp-3 lost its power supply, it stays off' });
    await until(s, /^leave-out:/);
    expect(s.actor.getSnapshot().context.prompt).toMatchObject({ kind: 'typed-address', target: cp3 });
    expect(s.actor.getSnapshot().context.prompt?.detail).toMatch(/wipe it \(talosctl -n \S+ reset .*\) .*powered off/);

    // another node's address is refused; Esc goes back to the choice and the override does not stand
    s.actor.send({ type: 'confirm', address: g.sim.nodes[1] as string });
    expect(promptId(s)).toBe(`leave-out:${cp3}`);
    expect(s.actor.getSnapshot().can({ type: 'answer.no' })).toBe(true);
    s.actor.send({ type: 'answer.no' });
    expect(promptId(s)).toBe(`unanswered:${cp3}`);
    expect(s.actor.getSnapshot().context.overrides).toEqual([]);
    expect(s.actor.getSnapshot().context.excluded).toEqual([]);

    s.actor.send({ type: 'override', reason: 'cp-3 lost its power supply, it stays off' });
    await until(s, /^leave-out:/);
    s.actor.send({ type: 'confirm', address: cp3 });
    const confirm = await until(s, /^confirm-nodes$/);
    expect(confirm.context.excluded).toEqual([cp3]);
    expect(confirm.context.prompt?.question).not.toContain(cp3);
    expect(confirm.context.prompt?.detail).toContain(`Left out by your decision: ${cp3}`);
    expect(confirm.context.steps[0]?.result).toBe(`2 of 3 nodes answered; ${cp3} left out by an explicit decision`);
    // what it means stays on screen as a warning
    expect(confirm.context.warnings.at(-1)).toMatch(new RegExp(`^${cp3.replace(/\./g, '\\.')} is not backed up`));
    s.stop();

    const journal = readJournal(g.incident.dir);
    expect(journal.filter((j) => j.kind === 'refusal').map((j) => j.what)).toEqual(['reasonGiven', 'addressMatches']);
    const overrides = journal.filter((j) => j.kind === 'override');
    expect(overrides.map((j) => [j.what, j.result])).toEqual([
      [`leave ${cp3} out of the recovery`, 'cp-3 lost its power supply, it stays off'],
      [`leave ${cp3} out of the recovery`, 'cp-3 lost its power supply, it stays off'],
    ]);
    expect(journal.some((j) => j.kind === 'decision' && j.what === `went back: ${cp3} is not left out`)).toBe(true);
    const leftOut = journal.find((j) => j.kind === 'decision' && j.what === `${cp3} left out of the recovery`);
    expect(leftOut).toMatchObject({ by: 'alice', node: cp3 });
    expect(leftOut?.result).toMatch(/wipe it .* or keep it powered off\.$/);
    expect(journal.some((j) => j.kind === 'confirmation' && j.result === `typed ${cp3}`)).toBe(true);
  }, 30_000);

  it('may be assessed without, for now: it stays in the node set, named as not answering, and is not left out', async () => {
    const g = await startGround(scenarioWithSilentNode(86_400), 'alice');
    const cp3 = g.sim.nodes[2] as string;
    const s = sessionOn(g, { nodeBackTimeoutMs: 600, pollMs: 100 });
    await until(s, /^unanswered:/);
    s.actor.send({ type: 'choose', option: 'assess' });
    const confirm = await until(s, /^confirm-nodes$/);
    expect(confirm.context.excluded).toEqual([]);
    expect(confirm.context.overrides).toEqual([]);
    expect(confirm.context.steps[0]?.result).toBe(
      `2 of 3 nodes answered; ${cp3} did not (asked again before anything is wiped)`,
    );
    s.stop();
  }, 30_000);
});
