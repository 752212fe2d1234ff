/**
 * Autopilot leaves a node out at the Preparing deadline only when time sync is the one thing its etcd still waits for
 * (stuck-waiting's right answer). A node still booting names time sync among its unmet conditions too ('service "cri"
 * to be "up", time sync, network'); that wait finishes by itself. Under load, a drill killed and resumed while a node
 * rebooted reached the deadline with that text, autopilot left the node out as an NTP problem, and step 6 then wiped it
 * a second time (random-kills, seed 20261203).
 */
import { describe, expect, it } from 'vitest';
import type { RecoveryContext } from '../../machines/recovery.js';
import { rightAnswer } from '../../src/wizard/autopilot.js';

function atPreparingDeadline(pending: { node: string; state: string | null; cause: string | null }[]): RecoveryContext {
  return {
    prompt: { id: 'preparing-timeout', options: [] },
    wait: { pending },
  } as unknown as RecoveryContext;
}

describe("autopilot's answer at the Preparing deadline", () => {
  it('leaves out a node that waits only for time sync, naming the cause', () => {
    const answer = rightAnswer(atPreparingDeadline([{ node: '127.0.0.4', state: 'Waiting', cause: 'time sync' }]));
    expect(answer).toMatchObject({ type: 'override' });
    expect((answer as { reason: string }).reason).toMatch(/^127\.0\.0\.4 waits for time sync/);
  });

  it('keeps waiting for a node that is still booting, though its conditions name time sync among others', () => {
    for (const cause of [
      'service "cri" to be "up", time sync, network',
      'volume "/var/lib" to be mounted, volume "ETCD" to be mounted, service "cri" to be "up", time sync, network, etcd spec',
      'network, time sync',
    ])
      expect(rightAnswer(atPreparingDeadline([{ node: '127.0.0.2', state: 'Waiting', cause }]))).toBeNull();
  });

  it('keeps waiting when one of several nodes is still booting', () => {
    const pending = [
      { node: '127.0.0.3', state: 'Waiting', cause: 'time sync' },
      { node: '127.0.0.2', state: 'Waiting', cause: 'service "cri" to be "up", time sync, network' },
    ];
    expect(rightAnswer(atPreparingDeadline(pending))).toBeNull();
  });
});
