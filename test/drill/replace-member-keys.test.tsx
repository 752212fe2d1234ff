/**
 * The guided member replacement by keystrokes (issue 15: "every scenario passes by autopilot and by keystrokes"): the
 * wizard's screen (the same runInteractive the `drill` command mounts) over a session on the simulator's scenario,
 * driven key by key as a trainee would — go ahead, take the replacement the assessment recommends, take the
 * recommended snapshot, type the broken member's address (a wrong one first: refused on screen, nothing removed),
 * follow the rejoin — to the summary's headline and the scenario's expected outcome. A node that is only down for a
 * while is waited for and nothing is removed; one that stays down is removed only after the trainee chose to and
 * typed its address, and then kept off.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runInteractive } from '../../src/commands/interactive.js';
import type { Prompt, Timing } from '../../machines/recovery-types.js';
import { type FakeStdin, fakeTerminal, KEYS, press, type } from '../components/helpers.js';
import { closeGrounds, startGround, startSessionOn, type Ground } from './harness.js';
import type { Session } from '../../src/wizard/session.js';

afterAll(closeGrounds);

/* eslint-disable-next-line no-control-regex -- a frame's text as a terminal shows it: Ink's escape sequences removed */
const plain = (s: string) => s.replace(/\u001B\[[0-9;?]*[A-Za-z]/g, '');
const oneLine = (s: string) => s.replace(/[│╭╮╰╯─]/g, ' ').replace(/\s+/g, ' ');
const sum = (counts: Record<string, number>) => Object.values(counts).reduce((a, b) => a + b, 0);

/** What a trainee does at one question: the keys, or null for the screen's default (the recommended answer). */
type Answer = (prompt: Prompt, screen: string) => Promise<void> | null;

interface KeysRun {
  g: Ground;
  session: Session;
  code: number;
  /** the prompts answered, in order, by id */
  asked: string[];
  /** the screen as it stood when each prompt was answered, by id (the last one of that id) */
  screenAt: Map<string, string>;
  /** every frame written, escape sequences removed */
  all: string;
}

/** A trainee's own answers: given the keyboard and the screen, what to do at each question (null: the default). */
type Trainee = (stdin: FakeStdin, screen: () => string) => Answer;

/** The screen's default at every question: the recommended answer, the target's address typed where one is asked. */
const defaults: Trainee = () => () => null;

async function byKeys(scenario: string, trainee: Trainee, timing: Partial<Timing> = {}): Promise<KeysRun> {
  const g = await startGround(scenario, 'trainee');
  const session = startSessionOn(g, undefined, timing);
  const { stdin, stdout, streams } = fakeTerminal(100, 30);
  const run = runInteractive({
    actor: session.actor,
    incidentDir: g.incident.dir,
    context: 'talos-dr-sim',
    ...streams,
    env: { NO_COLOR: '1' },
  });
  // the last write with visible text (Ink also writes bare control sequences: synchronized output, the cursor)
  const screen = () => plain(stdout.frames.findLast((f) => plain(f).trim() !== '') ?? '');
  let code: number | null = null;
  void run.then((c) => (code = c));
  const respond = trainee(stdin, screen);
  const asked: string[] = [];
  const screenAt = new Map<string, string>();
  let answered: Prompt | null = null;
  const end = Date.now() + 150_000;
  while (code === null) {
    if (Date.now() > end)
      throw new Error(`the drill never ended; asked ${asked.join(', ')}; last screen:\n${screen()}`);
    const prompt = session.actor.getSnapshot().context.prompt;
    const s = screen();
    // a question is answered once, when the screen shows it (a question asked again is a new prompt object)
    if (prompt && prompt !== answered && oneLine(s).includes(oneLine(prompt.question).slice(0, 40))) {
      answered = prompt;
      asked.push(prompt.id);
      screenAt.set(prompt.id, s);
      const own = respond(prompt, s);
      if (own) await own;
      else if (prompt.kind === 'typed-address') {
        await type(stdin, prompt.target ?? '');
        await press(stdin, KEYS.enter);
      } else if (prompt.kind === 'yes-no') await press(stdin, 'y');
      // a choice's cursor starts on the recommended option
      else await press(stdin, KEYS.enter);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  return { g, session, code, asked, screenAt, all: plain(stdout.frames.join('')) };
}

/** The wrong address a slip of the finger gives: the target's last number plus 100. */
const slip = (target: string) => target.replace(/\.(\d+)$/, (_, d: string) => `.${Number(d) + 100}`);

const addressOf = (g: Ground, hostname: string) => g.sim.view().find((n) => n.hostname === hostname)?.address ?? '';

/** Waits for the screen to show something (condition-based, no blind sleep). */
async function shows(screen: () => string, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!oneLine(screen()).includes(what)) {
    if (Date.now() > end) throw new Error(`the screen never showed "${what}":\n${screen()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The removal's typed confirmation, a wrong address first: refused on screen with the rule's sentence. */
const removalWithSlip: Trainee = (stdin, screen) => {
  let slipped = false;
  return (prompt) => {
    if (!prompt.id.startsWith('remove-member:') || slipped) return null;
    slipped = true;
    return (async () => {
      const target = prompt.target ?? '';
      const wrong = slip(target);
      await type(stdin, wrong);
      await press(stdin, KEYS.enter);
      await shows(screen, `is not the target node; type ${target} exactly`);
      for (let i = 0; i < wrong.length; i++) await press(stdin, KEYS.backspace);
      await type(stdin, target);
      await press(stdin, KEYS.enter);
    })();
  };
};

function expectReplacedByKeys(r: KeysRun, broken: string, fate: 'wipe' | 'recreate' | 'keep-off') {
  const ctx = r.session.actor.getSnapshot().context;
  expect(ctx.outcome).toBe('member-replaced');
  expect(r.code).toBe(0);
  expect(r.all).toContain('✓ Members replaced: every control-plane node is Running and healthy');
  expect(r.all).toContain('outcome: member-replaced');
  const node = addressOf(r.g, broken);
  // the questions a trainee meets, in order: go ahead, the replacement instead of a full recovery, the snapshot,
  // the broken member's address (other questions a slow machine brings, such as "assess again", may come between)
  const essential = r.asked.filter((id) =>
    ['confirm-nodes', 'quorum-holds', 'snapshot-source', `remove-member:${node}`].includes(id),
  );
  expect(essential).toEqual(['confirm-nodes', 'quorum-holds', 'snapshot-source', `remove-member:${node}`]);
  // the typed question names the node, the member's id and the node it goes through, never the member itself
  const typed = oneLine(r.screenAt.get(`remove-member:${node}`) ?? '');
  expect(typed).toMatch(new RegExp(`Remove etcd member [0-9a-f]{16} \\(${broken}\\) through (\\S+),`));
  const via = new RegExp(`through (\\S+),`).exec(typed)?.[1];
  expect(via).not.toBe(node);
  expect(typed).toContain(`Type ${node} to confirm`);
  const calls = r.g.sim.destructiveCalls();
  expect(sum(calls.removeMember)).toBe(1);
  expect(calls.removeMember[via ?? '']).toBe(1);
  expect(sum(calls.reset)).toBe(fate === 'wipe' ? 1 : 0);
  expect(calls.reset[node] ?? 0).toBe(fate === 'wipe' ? 1 : 0);
  expect(sum(calls.apply)).toBe(fate === 'recreate' ? 1 : 0);
  expect(sum(calls.bootstrap)).toBe(0);
  expect(ctx.replace?.done).toEqual([node]);
  // the rejoin followed on screen, then every member agreeing
  if (fate !== 'keep-off') {
    expect(r.all).toContain('Waiting for the new member to join and be promoted');
    for (const v of r.g.sim.view().filter((n) => n.machineType === 'controlplane')) expect(v.etcdState).toBe('Running');
  }
  expect(r.all).toMatch(/✓ 8\/8 Check the members — all \d nodes Running, healthy, members agree/);
}

describe('member replacement by keystrokes', () => {
  it('member-crashloop: a wrong address is refused and nothing removed; cp-3 typed, removed, wiped, rejoined', async () => {
    const r = await byKeys('member-crashloop', removalWithSlip);
    const cp3 = addressOf(r.g, 'cp-3');
    // the slip: the screen's sentence, the rule journalled as a guard stop, and the removal sent only once after it
    expect(r.all).toContain(`"${slip(cp3)}" is not the target node; type ${cp3} exactly to confirm.`);
    const ctx = r.session.actor.getSnapshot().context;
    expect(ctx.guardStops.map((x) => x.rule)).toEqual(['addressMatches']);
    expectReplacedByKeys(r, 'cp-3', 'wipe');
    expect(r.all).toMatch(/✓ 6\/8 Wipe or re-create the node — \S+ wiped \(EPHEMERAL/);
    // the full recovery's plan (every node wiped) never shows on the members a replacement leaves alone
    expect(r.all).not.toContain('wipe: planned');
  }, 200_000);

  it('member-hardware: cp-3 typed; its blank replacement gets the backed-up configuration and joins', async () => {
    const r = await byKeys('member-hardware', defaults);
    expectReplacedByKeys(r, 'cp-3', 'recreate');
    expect(r.all).toContain('6/8 Wipe or re-create the node — 127.');
    expect(r.all).toContain(': configuration backup applied over the maintenance');
  }, 200_000);

  it('member-crashloop-5: cp-4 typed and replaced, the other four untouched', async () => {
    const r = await byKeys('member-crashloop-5', defaults);
    expectReplacedByKeys(r, 'cp-4', 'wipe');
  }, 200_000);

  it('member-unreachable as shipped: cp-3 back by itself, nothing to do, nothing removed or wiped', async () => {
    const r = await byKeys('member-unreachable', defaults);
    expect(r.session.actor.getSnapshot().context.outcome).toBe('nothing-to-do');
    expect(r.code).toBe(0);
    expect(r.all).toContain('outcome: nothing-to-do');
    expect(r.asked.filter((id) => id.startsWith('remove-member:') || id.startsWith('still-down:'))).toEqual([]);
    const calls = r.g.sim.destructiveCalls();
    expect(sum(calls.removeMember) + sum(calls.reset) + sum(calls.apply) + sum(calls.bootstrap)).toBe(0);
  }, 200_000);

  it('member-unreachable, down longer than the assessment: cp-3 is waited for, comes back, nothing is removed', async () => {
    // the shipped scenario's outage outlasts the assessment here (15 s of wall time at the drills' speed of 100)
    const dir = mkdtempSync(join(tmpdir(), 'talos-dr-scenario-'));
    const file = join(dir, 'member-unreachable-long.yaml');
    const shipped = readFileSync(join(process.cwd(), 'scenarios', 'member-unreachable.yaml'), 'utf8');
    writeFileSync(
      file,
      shipped
        .replace('forSec: 120', 'forSec: 1500')
        .replace('name: member-unreachable', 'name: member-unreachable-long'),
    );
    const r = await byKeys(file, defaults);
    const cp3 = addressOf(r.g, 'cp-3');
    const ctx = r.session.actor.getSnapshot().context;
    expect(ctx.outcome).toBe('nothing-to-do');
    expect(r.code).toBe(0);
    expect(r.all).toContain('✓ etcd is healthy: there is nothing to recover.');
    expect(r.all).toContain('outcome: nothing-to-do');
    // the replacement was chosen and cp-3 waited for with the clock running; it was never offered for removal
    expect(r.asked).toContain('quorum-holds');
    // with the time left before the question that follows, and why it is waited for in the machine's words
    expect(r.all).toMatch(/Waiting for the member to leave the member list \(0:0[1-9], \d+:\d\d left\)/);
    expect(r.all).toMatch(/latest: \S+ does not answer: waiting for it to come back/);
    expect(r.asked.filter((id) => id.startsWith('remove-member:') || id.startsWith('still-down:'))).toEqual([]);
    expect(r.all).not.toContain(`Type ${cp3} to confirm`);
    expect(ctx.replace?.cameBack).toEqual([cp3]);
    const calls = r.g.sim.destructiveCalls();
    expect(sum(calls.removeMember) + sum(calls.reset) + sum(calls.apply) + sum(calls.bootstrap)).toBe(0);
  }, 200_000);

  it('quorum-intact: cp-3 stays down; after the wait the trainee chooses removal, types its address and keeps it off', async () => {
    const trainee: Trainee = (stdin) => (prompt) =>
      // "remove its member" is the second option: a digit moves the cursor, Enter chooses
      prompt.id.startsWith('still-down:') ? press(stdin, '2', KEYS.enter) : null;
    // a count-down short enough for a test (its floor is 20 s of wall time at the drills' speed): cp-3 never comes
    // back, so only the wait's length changes, as in scenarios.test.ts's trainee case
    const r = await byKeys('quorum-intact', trainee, { nodeBackTimeoutMs: 2000 });
    const cp3 = addressOf(r.g, 'cp-3');
    // the wait came first and ran out; only then was removal offered, as a choice against the recommendation
    const stillDown = oneLine(r.screenAt.get(`still-down:${cp3}`) ?? '');
    expect(stillDown).toContain(`${cp3} has not come back as a healthy member. Wait longer?`);
    expect(stillDown).toContain('1. wait longer (recommended)');
    expect(r.asked.indexOf(`still-down:${cp3}`)).toBeLessThan(r.asked.indexOf(`remove-member:${cp3}`));
    expect(oneLine(r.screenAt.get(`remove-member:${cp3}`) ?? '')).toContain(
      'then keep that machine powered off (or wipe it) before it ever comes back',
    );
    // the keep-off question, answered with its default
    expect(r.asked).toContain(`keep-off:${cp3}`);
    expectReplacedByKeys(r, 'cp-3', 'keep-off');
    expect(r.session.actor.getSnapshot().context.replace?.keptOff).toEqual([cp3]);
  }, 200_000);
});
