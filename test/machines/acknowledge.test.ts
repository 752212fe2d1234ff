/**
 * SAFETY rule 7: skip-hash-check is set only after the risk is acknowledged, and the journal holds that decision with
 * the reason given for it, whoever answered: the machine journals it from the event itself (a person through the UI,
 * autopilot through the recommended answer, a test), not from a separate write by whoever drives it.
 */
import { describe, expect, it } from 'vitest';
import { createActor, waitFor } from 'xstate';
import { fakeCluster, NODES } from '../components/fake-cluster.js';
import type { JournalEmit, RecoveryEvent } from '../../machines/recovery.js';
import { withRawCopy } from './scripted-cluster.js';

/** Runs to the skip-hash-check question, answers it with `answer` (or the recommended answer), returns the entry. */
async function acknowledgeWith(answer: RecoveryEvent | 'recommended') {
  const cluster = fakeCluster();
  const machine = withRawCopy(cluster);
  const actor = createActor(machine, { input: { nodes: NODES, operator: 'alice', mode: 'recover' } });
  const journal: JournalEmit['entry'][] = [];
  actor.on('journal', (e) => journal.push(e.entry));
  actor.start();
  const ask = async (id: string) =>
    (await waitFor(actor, (s) => s.context.prompt?.id === id, { timeout: 2000 })).context.prompt;
  await ask('confirm-nodes');
  actor.send({ type: 'answer.yes' });
  const source = await ask('snapshot-source');
  actor.send(source?.recommended as RecoveryEvent);
  const ack = await ask('skip-hash-check');
  actor.send(answer === 'recommended' ? (ack?.recommended as RecoveryEvent) : answer);
  const after = await waitFor(actor, (s) => s.context.prompt?.id !== 'skip-hash-check', { timeout: 2000 });
  actor.stop();
  return {
    context: after.context,
    entry: journal.find((j) => j.kind === 'confirmation' && /skip-hash-check/.test(j.what)),
  };
}

describe('the skip-hash-check acknowledgement is journalled with its reason', () => {
  it('a reason sent with the event is journalled, trimmed, with who gave it', async () => {
    const { context, entry } = await acknowledgeWith({ type: 'acknowledge', reason: '  etcd is down on every node ' });
    expect(context.skipHashCheckAcknowledged).toBe(true);
    expect(entry).toMatchObject({
      by: 'alice',
      result: 'acknowledge, reason: "etcd is down on every node"',
      data: { reason: 'etcd is down on every node' },
    });
  });

  it('the recommended answer (what autopilot sends) carries the reason it is recommended', async () => {
    const { entry } = await acknowledgeWith('recommended');
    expect(entry?.data).toEqual({ reason: expect.stringMatching(/raw copy passed the bbolt structure check/) });
  });

  it('an acknowledgement of the older shape, without a reason, is still taken and says no reason was given', async () => {
    const { context, entry } = await acknowledgeWith({ type: 'acknowledge' });
    expect(context.skipHashCheckAcknowledged).toBe(true);
    expect(entry).toMatchObject({ result: 'acknowledge, no reason given', data: { reason: null } });
  });
});
