/**
 * The planned-swap drill (scenarios/planned-swap.yaml) names the machine to take out (`retire`). Autopilot's right
 * answer at the healthy verdict is the swap of that machine's member, as the question offers it; the trainer's verdict
 * scores a swap of another member as wrong, naming both. The machine's own question, in memory.
 */
import { describe, expect, it } from 'vitest';
import { createActor, waitFor } from 'xstate';
import { fakeCluster, NODES } from '../components/fake-cluster.js';
import type { NodeView, RecoveryContext } from '../../machines/recovery.js';
import { rightAnswer } from '../../src/wizard/autopilot.js';
import { judgeDrill } from '../../src/wizard/outcome.js';

const EXPECT = {
  expectedOutcome: 'member-replaced' as const,
  rightAnswer: 'choose the planned swap of cp-3 …',
  retire: 'cp-3',
};

/** The healthy verdict's question, as the machine asks it on a healthy in-memory cluster. */
async function healthyQuestion(): Promise<RecoveryContext> {
  const cluster = fakeCluster();
  const leader = '1a2b3c4d5e6f7081';
  const members = NODES.map((n, i) => ({
    id: `${leader.slice(0, 15)}${i}`,
    hostname: `cp-${i + 1}`,
    peerUrls: [`https://${n}:2380`],
    clientUrls: [`https://${n}:2379`],
    isLearner: false,
  }));
  for (const [i, n] of NODES.entries())
    cluster.views.set(n, {
      ...(cluster.views.get(n) as NodeView),
      etcdService: 'Running',
      etcdHealthy: true,
      members,
      membersError: null,
      status: { memberId: members[i]?.id ?? '', leader: members[0]?.id ?? '', errors: [], raftAppliedIndex: '90' },
      statusError: null,
    });
  const actor = createActor(cluster.machine, {
    input: { nodes: NODES, operator: 'autopilot', mode: 'drill', timing: { pollMs: 5, backoffMs: 5 } },
  });
  actor.start();
  let s = await waitFor(actor, (x) => x.context.prompt !== null, { timeout: 3000 });
  actor.send({ type: 'answer.yes' });
  s = await waitFor(actor, (x) => x.context.prompt?.id === 'healthy', { timeout: 3000 });
  actor.stop();
  return s.context;
}

describe('the planned-swap drill', () => {
  it("autopilot's right answer at the healthy verdict is the swap of the machine to take out", async () => {
    const context = await healthyQuestion();
    expect(rightAnswer(context, 'cp-3')).toEqual({ type: 'choose', option: `swap:${NODES[2]}` });
    // without a machine named (every other scenario), the recommended "nothing to do" stands
    expect(rightAnswer(context)).toBeNull();
  });

  it('a swap of another member is the wrong call, naming both; of cp-3, the right one', () => {
    const swapped = (name: string) =>
      ({
        outcome: 'member-replaced',
        snapshot: null,
        verdict: null,
        replace: { swap: { node: '127.0.0.9', name, memberId: null, via: null, decided: true } },
      }) as unknown as Pick<RecoveryContext, 'outcome' | 'snapshot' | 'verdict' | 'replace'>;
    const wrong = judgeDrill(swapped('cp-1'), EXPECT, null);
    expect(wrong.correct).toBe(false);
    expect(wrong.line).toBe('✗ cp-1 was swapped; the machine to take out was cp-3');
    expect(judgeDrill(swapped('cp-3'), EXPECT, null).line).toMatch(/^✓ correct call/);
  });
});
