/**
 * The NOSPACE playbook's alarm disarm (EtcdAlarmDisarm) when etcd disarmed the alarms but the answer was lost (the
 * connection cut mid-call). It was journalled as a plain failure and the next attempt sent the disarm again (SAFETY
 * rule 6). It is journalled as "answer lost", and the next attempt first lists the alarms: none listed means it
 * happened (v1alpha1_server.go@v1.13.9:2113-2140 disarms every active alarm of the cluster). The defragment the same
 * when its call is cancelled after the member rewrote its file: its check compares the file's size with the one
 * journalled at the send.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { defragmentMember, disarmAlarms } from '../../src/wizard/nospace.js';
import { closeGrounds, startGround } from './harness.js';
import { afterResults, DRILL_TIMING, LANDED } from './interrupted.js';
import { CANCELLED, CUT, effectDepsOf, losingFirstAnswer } from './lossy-client.js';

afterAll(closeGrounds);

describe('an alarm disarm whose answer was lost', () => {
  it('is checked when tried again, not sent again', async () => {
    const g = await startGround('nospace');
    const node = g.sim.nodes[0]!;
    const opId = `disarm:${node}`;
    const [alarms] = await g.client.etcdAlarmList([node]);
    expect(alarms?.ok && alarms.value.length).toBeGreaterThan(0);
    // the playbook's order: every member defragmented first, so no write raises the alarm again at once
    for (const n of g.sim.nodes) expect((await g.client.etcdDefragment(n)).ok).toBe(true);
    const client = losingFirstAnswer(g.client, 'etcdAlarmDisarm', CUT);
    const deps = effectDepsOf(g, client);
    await expect(disarmAlarms(deps, { node, opId })).rejects.toThrow();
    expect(g.sim.destructiveCalls().alarmDisarm[node]).toBe(1);
    // the step's "try again"
    expect(await disarmAlarms(deps, { node, opId })).toMatchObject({ alreadyDone: true });
    expect(afterResults(g, opId).at(-1)).toBe(LANDED);
    expect(g.sim.destructiveCalls().alarmDisarm[node]).toBe(1);
  }, 60_000);
});

describe('a defragment whose answer was lost (the call cancelled)', () => {
  it('is checked when tried again, not sent again', async () => {
    const g = await startGround('nospace');
    const node = g.sim.nodes[0]!;
    const opId = `defragment:${node}`;
    const client = losingFirstAnswer(g.client, 'etcdDefragment', CANCELLED);
    const deps = effectDepsOf(g, client);
    await expect(defragmentMember(deps, DRILL_TIMING, { node, opId })).rejects.toThrow();
    expect(g.sim.destructiveCalls().defragment[node]).toBe(1);
    // the step's "try again"
    expect(await defragmentMember(deps, DRILL_TIMING, { node, opId })).toMatchObject({ alreadyDone: true });
    expect(afterResults(g, opId).at(-1)).toBe(LANDED);
    expect(g.sim.destructiveCalls().defragment[node]).toBe(1);
  }, 60_000);
});
