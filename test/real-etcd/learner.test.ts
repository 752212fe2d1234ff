/**
 * A member rejoining on real etcd joins as a learner and is promoted (as Talos's etcd service does). What the node
 * then shows (its cluster, its member list, so its etcd health) is read from the member's own answers, and a learner
 * refuses its member list until it has applied its own promotion. These tests make that moment slow on purpose (the
 * leader answers the promotion while the learner cannot read it yet, as on a busy machine) and check that the
 * simulator's view of the member still ends as a voter of the cluster: before, the view stayed empty, the node never
 * turned healthy and the real-etcd drills failed "etcd not healthy within 90 s" about once in four runs. And a promotion
 * that went through while its answer was lost is etcd's "can only promote a learner member" on the next try: done, not
 * a reason to try again for ever (which kept the cluster's one learner slot, so the next member never joined).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, onTestFinished } from 'vitest';
import { RealEtcd } from '../../src/sim/real-etcd.js';
import { freePortOn, RealEtcdFleet } from '../../src/sim/real-etcd-fleet.js';
import { realEtcdMissing } from '../../src/sim/real-etcd-tools.js';
import { nextAddressBase } from './harness.js';

const missing = realEtcdMissing();
if (missing) console.warn(`SKIPPED: the learner tests need etcd and etcdctl. ${missing}`);

const fleet = new RealEtcdFleet();
afterAll(() => fleet.stopAll());

const dir = mkdtempSync(join(tmpdir(), 'talos-dr-learner-'));
const prefix = nextAddressBase().replace(/\.2$/, '.');

async function member(index: number): Promise<{ etcd: RealEtcd; name: string; address: string }> {
  const address = `${prefix}${index + 2}`;
  const name = `cp-${index + 1}`;
  const etcd = new RealEtcd({
    fleet,
    address,
    name,
    dataDir: join(dir, name, 'etcd'),
    clientPort: await freePortOn(address),
    peerPort: await freePortOn(address),
    logFile: join(dir, name, 'etcd.log'),
    onChange: () => undefined,
  });
  return { etcd, name, address };
}

async function call<T>(etcd: RealEtcd, path: string, body: unknown): Promise<T> {
  const response = await fetch(`${etcd.clientUrl}${path}`, {
    method: 'POST',
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(5000),
  });
  const answer = (await response.json()) as T & { error?: string };
  if (answer.error) throw new Error(answer.error);
  return answer;
}

const revisionOf = async (etcd: RealEtcd): Promise<number> =>
  Number(
    (await call<{ header: { revision: string } }>(etcd, '/v3/kv/range', { key: 'AA==', serializable: true })).header
      .revision,
  );

/** The learner has every entry the leader has (its serializable reads see the leader's revision). */
async function caughtUp(learner: RealEtcd, leader: RealEtcd): Promise<void> {
  const target = await revisionOf(leader);
  for (;;) {
    if ((await revisionOf(learner).catch(() => 0)) >= target) return;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** What the leader's member list says of `id` (hex). */
async function leaderSays(leader: RealEtcd, id: string): Promise<{ isLearner: boolean } | undefined> {
  const list = await call<{ members: { ID: string; isLearner?: boolean }[] }>(leader, '/v3/cluster/member/list', {});
  const found = list.members.find((m) => BigInt(m.ID).toString(16).padStart(16, '0') === id);
  return found && { isLearner: found.isLearner ?? false };
}

describe.skipIf(missing !== null)('a learner on real etcd, promoted while it cannot answer yet', () => {
  let leader: Awaited<ReturnType<typeof member>>;

  it('the promotion went through on an earlier try whose answer was lost: no endless retry, the member ends a voter', async () => {
    leader = await member(0);
    await leader.etcd.initialize({ name: leader.name, address: leader.address });
    leader.etcd.start();
    expect(await leader.etcd.waitReady()).toBe(true);
    for (let i = 0; i < 50; i++) {
      await call(leader.etcd, '/v3/kv/put', { key: btoa(`/registry/k${i}`), value: btoa(`v${i}`) });
    }

    const joiner = await member(1);
    const added = await joiner.etcd.join(leader.etcd, { name: joiner.name, address: joiner.address });
    // the control: etcd refuses a learner its own member list, so the joiner's view is empty while it is one
    expect(joiner.etcd.clusterId()).toBeNull();
    await caughtUp(joiner.etcd, leader.etcd);
    // promoted already (the simulator's own earlier try, answered too late): etcd now answers every try "can only
    // promote a learner member", which the retry took for "not in sync yet" and tried again for ever
    await call(leader.etcd, '/v3/cluster/member/promote', { ID: BigInt(`0x${added.id}`).toString() });

    expect(await joiner.etcd.promote()).toBe(true);
    expect(joiner.etcd.clusterId()).toBe(leader.etcd.clusterId());
    expect(joiner.etcd.memberId()).toBe(added.id);
    expect(joiner.etcd.members().find((m) => m.id === added.id)?.isLearner).toBe(false);
  }, 60_000);

  it('the learner is stalled when the leader promotes it: the member’s view waits for its own answer', async () => {
    const joiner = await member(2);
    const added = await joiner.etcd.join(leader.etcd, { name: joiner.name, address: joiner.address });
    expect(joiner.etcd.clusterId()).toBeNull();
    await caughtUp(joiner.etcd, leader.etcd);

    // the learner's process stops running for 3 s (a busy machine), longer than one read's 1.5 s limit
    const pid = joiner.etcd.pid as number;
    process.kill(pid, 'SIGSTOP');
    const resume = setTimeout(() => process.kill(pid, 'SIGCONT'), 3000);
    onTestFinished(() => {
      clearTimeout(resume);
      process.kill(pid, 'SIGCONT');
    });

    expect(await joiner.etcd.promote()).toBe(true);
    // the leader promoted it while it was stopped (the control) …
    expect(await leaderSays(leader.etcd, added.id)).toEqual({ isLearner: false });
    // … and the member's own view, which the node's health and member list come from, says so too
    expect(joiner.etcd.clusterId()).toBe(leader.etcd.clusterId());
    expect(joiner.etcd.memberId()).toBe(added.id);
    expect(joiner.etcd.members().map((m) => m.isLearner)).toEqual([false, false, false]);
  }, 60_000);
});
