/**
 * A learner on real etcd whose promotion the member that took it in can no longer answer (that member stopped): the
 * promotion is asked of the cluster's other running members, as Talos's etcd service asks every endpoint in turn
 * (siderolabs/talos internal/app/machined/pkg/system/services/etcd.go@v1.14.0-rc.1:622-666). Before: only the stopped
 * member was asked, for ever, and the learner kept etcd's one learner slot, so no other member could join.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { RealEtcd } from '../../src/sim/real-etcd.js';
import { freePortOn, RealEtcdFleet } from '../../src/sim/real-etcd-fleet.js';
import { realEtcdMissing } from '../../src/sim/real-etcd-tools.js';
import { nextAddressBase } from './harness.js';

const missing = realEtcdMissing();
if (missing) console.warn(`SKIPPED: the promotion tests need etcd and etcdctl. ${missing}`);

const fleet = new RealEtcdFleet();
afterAll(() => fleet.stopAll());

const dir = mkdtempSync(join(tmpdir(), 'talos-dr-promote-'));
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

/** What `etcd`'s member list says of `id` (hex). */
async function listed(etcd: RealEtcd, id: string): Promise<{ isLearner: boolean } | undefined> {
  const response = await fetch(`${etcd.clientUrl}/v3/cluster/member/list`, {
    method: 'POST',
    body: '{}',
    signal: AbortSignal.timeout(5000),
  });
  const list = (await response.json()) as { members: { ID: string; isLearner?: boolean }[] };
  const found = list.members.find((m) => BigInt(m.ID).toString(16).padStart(16, '0') === id);
  return found && { isLearner: found.isLearner ?? false };
}

describe.skipIf(missing !== null)('a learner whose sponsor stopped', () => {
  it('is promoted through another running member and ends a voter', async () => {
    const first = await member(0);
    await first.etcd.initialize({ name: first.name, address: first.address });
    first.etcd.start();
    expect(await first.etcd.waitReady()).toBe(true);
    // three voters, so one of them can stop and the cluster keeps its quorum
    const second = await member(1);
    await second.etcd.join(first.etcd, { name: second.name, address: second.address });
    expect(await second.etcd.promote()).toBe(true);
    const third = await member(2);
    await third.etcd.join(first.etcd, { name: third.name, address: third.address });
    expect(await third.etcd.promote()).toBe(true);

    const fourth = await member(3);
    const added = await fourth.etcd.join(second.etcd, { name: fourth.name, address: fourth.address });
    expect(await listed(first.etcd, added.id)).toEqual({ isLearner: true });
    // the member that took it in stops before it promotes it (its node was shut down)
    second.etcd.stop();

    expect(await fourth.etcd.promote()).toBe(true);
    expect(await listed(first.etcd, added.id)).toEqual({ isLearner: false });
    expect(fourth.etcd.clusterId()).toBe(first.etcd.clusterId());
    expect(fourth.etcd.members().find((m) => m.id === added.id)?.isLearner).toBe(false);
  }, 90_000);
});
