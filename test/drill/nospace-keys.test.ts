/**
 * The NOSPACE playbook by keystrokes: the wizard's screen (the same runInteractive the `drill` command mounts) over a
 * session on the simulator's `nospace` scenario, driven key by key as a person would — go ahead, take the recommended
 * snapshot, type each member's address at its defragment (a wrong address first, refused on screen), type the
 * address at the disarm — to the summary's headline and exit code 0.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { runInteractive } from '../../src/commands/interactive.js';
import { type FakeStdout, fakeTerminal, flush, KEYS, press, type } from '../components/helpers.js';
import { closeGrounds, startGround, startSessionOn } from './harness.js';

afterAll(closeGrounds);

/* eslint-disable-next-line no-control-regex -- a frame's text as a terminal shows it: Ink's escape sequences removed */
const plain = (s: string) => s.replace(/\u001B\[[0-9;?]*[A-Za-z]/g, '');

describe('nospace drill by keystrokes', () => {
  it('typed confirmations for each defragment and the disarm, followers first, the leader last', async () => {
    const g = await startGround('nospace', 'trainee');
    const session = startSessionOn(g);
    const { stdin, stdout, streams } = fakeTerminal(100, 30);
    const stderr = streams.stderr as unknown as FakeStdout;
    const run = runInteractive({
      actor: session.actor,
      incidentDir: g.incident.dir,
      context: 'talos-dr-sim',
      ...streams,
      env: { NO_COLOR: '1' },
    });
    // the last write with visible text (Ink also writes bare control sequences: synchronized output, the cursor)
    const screen = () => plain(stdout.frames.findLast((f) => plain(f).trim() !== '') ?? '');
    const all = () => plain(stdout.frames.join(''));
    async function until(ok: (s: string) => boolean, what: string, ms = 30_000): Promise<string> {
      const end = Date.now() + ms;
      while (!ok(screen())) {
        if (Date.now() > end)
          throw new Error(
            `the screen never showed ${what}:\n${screen()}\n${stdout.frames.length} frames; stderr: ${stderr.frames.join('').slice(0, 2000)}`,
          );
        await new Promise((r) => setTimeout(r, 20));
      }
      return screen();
    }

    await until((s) => /\[y\/n\]/i.test(s), 'the first question');
    await press(stdin, 'y');
    await until((s) => s.includes('Where should the snapshot come from?'), 'the snapshot choice');
    await press(stdin, KEYS.enter);

    const typedAt: string[] = [];
    let refusedOnce = false;
    for (;;) {
      const s = await until(
        (x) => /Type \S+ to confirm/.test(x) || x.includes('Space freed') || x.includes('outcome:'),
        'a typed confirmation or the end',
      );
      const target = /Type (\S+) to confirm/.exec(s)?.[1];
      if (!target) break;
      if (!refusedOnce) {
        // a wrong address: refused on screen, nothing sent
        refusedOnce = true;
        const wrong = target.replace(/\.(\d+)$/, (_, d: string) => `.${Number(d) + 100}`);
        await type(stdin, wrong);
        await press(stdin, KEYS.enter);
        await until((x) => x.includes(`is not the target node; type ${target} exactly`), 'the refusal');
        for (let i = 0; i < wrong.length; i++) await press(stdin, KEYS.backspace);
      }
      typedAt.push(`${/Defragment etcd on|Disarm the etcd alarms/.exec(s)?.[0] ?? '?'} ${target}`);
      await type(stdin, target);
      await press(stdin, KEYS.enter);
      // the next question (or the end) replaces this one
      await until((x) => !x.includes(`Type ${target} to confirm`) || x.includes('Space freed'), 'the next step');
      await flush();
    }
    expect(await run).toBe(0);
    const ctx = session.actor.getSnapshot().context;
    expect(ctx.outcome).toBe('nospace-cleared');
    const leader = ctx.nospace?.leader as string;
    expect(typedAt).toEqual([
      ...ctx.nospace!.order.map((n) => `Defragment etcd on ${n}`),
      `Disarm the etcd alarms ${ctx.nospace!.order[0]}`,
    ]);
    expect(ctx.nospace!.order.at(-1)).toBe(leader);
    expect(ctx.guardStops.map((x) => x.rule)).toEqual(['addressMatches']);
    expect(all()).toContain('✓ Space freed and the NOSPACE alarm disarmed: etcd accepts writes again.');
    expect(all()).toMatch(/✓ 4\/6 Defragment — 3\/3 defragmented: /);
    const calls = g.sim.destructiveCalls();
    for (const node of g.sim.nodes) expect(calls.defragment[node], node).toBe(1);
    expect(await g.sim.etcdWrite()).toEqual({ ok: true });
  }, 120_000);
});
