/**
 * The checks of an interrupted destructive call when the node shows nothing either way (SAFETY rule 6: never sent on
 * a guess). The kubelet restart whose services cannot be read, the leave whose healthy node's member list cannot be
 * read, and the init node's Reboot on a node that answers but with nothing that dates its last boot: each sends
 * nothing and says, in one sentence, what to check and to try again; the call stays "interrupted", so the next
 * attempt checks again. A check that guessed either way fails here: a guess of "not done" sends the call a second
 * time, a guess of "done" goes on as if it had happened.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { restartKubelet } from '../../src/wizard/after-restore.js';
import { convertInitNode } from '../../src/wizard/destructive.js';
import { ActionError } from '../../src/wizard/ledger.js';
import { leaveCluster } from '../../src/wizard/replace-member.js';
import { closeGrounds, startGround, type Ground } from './harness.js';
import { afterResults, LANDED } from './interrupted.js';
import {
  CANCELLED,
  effectDepsOf,
  losingFirstAnswer,
  losingFirstRequest,
  losingReads,
  undatable,
  type Losses,
} from './lossy-client.js';

afterAll(closeGrounds);

/** The failure an attempt ends with (it must end with one). */
async function failureOf(attempt: Promise<unknown>): Promise<ActionError> {
  const outcome = await attempt.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
  if (!('error' in outcome)) throw new Error(`the attempt went on: ${JSON.stringify(outcome.value)}`);
  expect(outcome.error).toBeInstanceOf(ActionError);
  return outcome.error as ActionError;
}

const escaped = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** One sentence: no full stop inside it (an address's dots aside), one at its end. */
const oneSentence = (text: string) => expect(text.replace(/(?<=\d)\.(?=\d)/g, '')).toMatch(/^[^.]+\.$/);

describe('a kubelet restart whose answer was lost, checked while its services cannot be read', () => {
  it('is not restarted again, says so, and is checked again on the next try', async () => {
    const g = await startGround('quorum-intact');
    const node = g.sim.nodes[0]!;
    const opId = `restart-kubelet:${node}`;
    const services: Losses = { left: 0 };
    const deps = effectDepsOf(g, losingReads(losingFirstAnswer(g.client, 'serviceRestart'), 'serviceList', services));
    await failureOf(restartKubelet(deps, { node, opId }));
    expect(g.sim.destructiveCalls().serviceRestart[node]).toBe(1);

    // the step's "try again" while the node's service list times out
    services.left = 1;
    const e = await failureOf(restartKubelet(deps, { node, opId }));
    expect(e.message).toMatch(
      new RegExp(
        `^Cannot tell whether ${escaped(node)}'s kubelet was restarted before the interruption \\(.+\\), so it is not restarted again on a guess; try again once ${escaped(node)} answers\\.$`,
      ),
    );
    oneSentence(e.message);
    expect([e.retryable, e.mayHaveLanded]).toEqual([true, true]);
    expect(g.sim.destructiveCalls().serviceRestart[node]).toBe(1);

    // and once they can be read: the kubelet's history shows the restart, so it is not sent again
    expect(await restartKubelet(deps, { node, opId })).toEqual({ reply: 'restarted before the interruption' });
    expect(afterResults(g, opId).at(-1)).toBe(LANDED);
    expect(g.sim.destructiveCalls().serviceRestart[node]).toBe(1);
  }, 60_000);
});

async function memberId(g: Ground, via: string, hostname: string): Promise<string> {
  const [r] = await g.client.etcdMemberList([via], true);
  return (r?.ok ? r.value : []).find((m) => m.hostname === hostname)?.id ?? '';
}

describe('a leave whose answer was lost, checked while the healthy node cannot list the members', () => {
  it('is not sent again, says so, and is checked again on the next try', async () => {
    const g = await startGround(new URL('./planned-swap.yaml', import.meta.url).pathname);
    const [cp1, , cp3] = g.sim.nodes as [string, string, string];
    const id = await memberId(g, cp1, 'cp-3');
    expect(id).not.toBe('');
    const opId = `leave-cluster:${id}`;
    const lists: Losses = { left: 0 };
    const deps = effectDepsOf(
      g,
      losingReads(losingFirstAnswer(g.client, 'etcdLeaveCluster', CANCELLED), 'etcdMemberList', lists),
    );
    const input = { node: cp3, via: cp1, memberId: id, opId };
    const timing = { pollMs: 50, nodeBackTimeoutMs: 5000 };
    await failureOf(leaveCluster(deps, timing, input));
    expect(g.sim.destructiveCalls().leave[cp3]).toBe(1);

    // the step's "try again" while cp-1's member list times out
    lists.left = 1;
    const e = await failureOf(leaveCluster(deps, timing, input));
    expect(e.message).toMatch(
      new RegExp(
        `^Cannot tell whether the leave of member ${id} sent before the interruption happened \\(.+\\), so it is not sent again on a guess; try again once ${escaped(cp1)} answers\\.$`,
      ),
    );
    oneSentence(e.message);
    expect([e.retryable, e.mayHaveLanded]).toEqual([true, true]);
    expect(g.sim.destructiveCalls().leave[cp3]).toBe(1);

    // and once it answers: the member is gone, so it is not sent again
    expect(await leaveCluster(deps, timing, input)).toEqual({ alreadyGone: true });
    expect(afterResults(g, opId).at(-1)).toBe(LANDED);
    expect(g.sim.destructiveCalls().leave[cp3]).toBe(1);
  }, 60_000);
});

describe("an init node's Reboot whose answer was lost, on a node with nothing that dates its last boot", () => {
  it('is not sent, and the person is told to check its console and try again', async () => {
    const g = await startGround('init-node');
    const node = g.sim.nodes[0]!;
    const opId = `convert:${node}`;
    // the node answers, still an init node; it lists no services and refuses to read its boot id, from the start
    // (so nothing was read before the send either); the first Reboot never left, which the node cannot show
    const notices: (string | null)[] = [];
    const deps = {
      ...effectDepsOf(g, losingFirstRequest(undatable(g.client, node), 'reboot')),
      notice: (text: string | null) => notices.push(text),
    };
    // how long the check waits for the node to come back is not what is tested: every answer shows nothing either way
    const timing = { pollMs: 50, nodeBackTimeoutMs: 1000 };
    await failureOf(convertInitNode(deps, timing, { node, opId }));

    // the step's "try again"
    const e = await failureOf(convertInitNode(deps, timing, { node, opId }));
    expect(e.message).toMatch(
      new RegExp(
        `^Cannot tell whether ${escaped(node)} got the reboot sent before the interruption \\(.+\\), so it is not sent again on a guess: check .*its console, and try again\\.$`,
      ),
    );
    oneSentence(e.message);
    expect(e.mayHaveLanded).toBe(true);
    expect(g.sim.destructiveCalls().reboot[node] ?? 0).toBe(0);
    // nothing journalled as decided: the next attempt checks again
    expect(afterResults(g, `${opId}:reboot`)).toEqual([expect.stringMatching(/did not answer reboot in time/)]);
    // the wait was on screen and is cleared
    expect(notices.at(-1)).toBeNull();
  }, 60_000);
});
