/**
 * Issue 17: a drill the time limit ends while the machine waits for a node names the node and what was awaited
 * (quorum-intact by autopilot waits for cp-3, which autopilot never removes, until the limit), and the verdict then
 * gives the scenario's right answer.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runScenario, type DrillRun } from './harness.js';

const runs: DrillRun[] = [];
afterAll(async () => {
  for (const r of runs) await r.sim.stop();
});

const report = (r: DrillRun) => readFileSync(join(r.dir, 'report.md'), 'utf8');

describe('the time limit names what it ended', () => {
  it('quorum-intact by autopilot: the time limit ends the wait; the outcome names cp-3 and the verdict gives the right answer', async () => {
    const r = await runScenario('quorum-intact', { timeLimitMs: 10_000 });
    runs.push(r);
    const cp3 = r.sim.view().find((n) => n.hostname === 'cp-3')?.address as string;
    const reason = `the time limit was reached while waiting for cp-3 (${cp3}) to answer`;
    expect(r.lines.at(-1)).toBe(`outcome: failed: ${reason}`);
    expect(r.lines.at(-4)).toBe(`verdict: ✗ not finished: ${reason}`);
    expect(r.lines.at(-3)).toBe(`verdict: right answer: ${r.sim.scenario.rightAnswer}`);
    expect(report(r)).toContain(`- right answer: ${r.sim.scenario.rightAnswer}`);
  }, 120_000);
});
