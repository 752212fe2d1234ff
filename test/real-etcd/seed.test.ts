/**
 * A scenario's real members are seeded through etcd's API, then the outage stops some of them: what a stopped member
 * said at the end of the seed is what its node shows for the whole drill (its revision, its keys), since nothing asks
 * a stopped member again. Here that last read is lost on purpose (a busy machine): the member's view must still be
 * the data it holds, not its first answer from before the history was written.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { HistoryEvent } from '../../src/etcd/writer.js';
import { RealEtcd } from '../../src/sim/real-etcd.js';
import { gateway } from '../../src/sim/real-etcd-calls.js';
import { freePortOn, RealEtcdFleet } from '../../src/sim/real-etcd-fleet.js';
import { seedRealCluster } from '../../src/sim/real-etcd-seed.js';
import { realEtcdMissing } from '../../src/sim/real-etcd-tools.js';
import { nextAddressBase } from './harness.js';

const missing = realEtcdMissing();
if (missing) console.warn(`SKIPPED: the seed tests need etcd and etcdctl. ${missing}`);

const fleet = new RealEtcdFleet();
afterAll(() => fleet.stopAll());
const dir = mkdtempSync(join(tmpdir(), 'talos-dr-seed-'));
const prefix = nextAddressBase().replace(/\.2$/, '.');

/** A gateway that lets the first key read through, then loses the next `lost` (as timeouts on a busy machine do). */
function losingKeyReads(lost: number): { ask: typeof gateway; lostSoFar: () => number } {
  let reads = 0;
  let count = 0;
  const ask = (async (url: string, path: string, body: unknown, timeoutMs?: number) => {
    if (path === '/v3/kv/range' && reads++ > 0 && count < lost) {
      count++;
      throw new Error('The operation was aborted due to timeout');
    }
    return gateway(url, path, body, timeoutMs);
  }) as typeof gateway;
  return { ask, lostSoFar: () => count };
}

async function member(index: number, ask?: typeof gateway): Promise<RealEtcd> {
  const address = `${prefix}${index + 2}`;
  const name = `cp-${index + 1}`;
  return new RealEtcd({
    fleet,
    address,
    name,
    dataDir: join(dir, name, 'etcd'),
    clientPort: await freePortOn(address),
    peerPort: await freePortOn(address),
    logFile: join(dir, name, 'etcd.log'),
    onChange: () => undefined,
    gateway: ask,
  });
}

const history: HistoryEvent[] = Array.from({ length: 12 }, (_, i) => ({
  kind: 'put' as const,
  revision: i + 2,
  key: `/registry/k${i}`,
  value: new TextEncoder().encode(`v${i}`),
  createRevision: i + 2,
  version: 1,
}));

describe.skipIf(missing !== null)('seeding real members on a busy machine', () => {
  it('the stopped member’s last read is lost twice: its node still shows its revision and its keys', async () => {
    const faults = losingKeyReads(2);
    const [running, stopped] = [await member(0), await member(1, faults.ask)];
    const seeded = await seedRealCluster({
      nodes: [
        { backend: running, hostname: 'cp-1', member: true, behind: 0, fate: 'run' },
        { backend: stopped, hostname: 'cp-2', member: true, behind: 0, fate: 'stop' },
      ],
      history,
      givenSnapshotRevision: null,
      givenSnapshotPath: join(dir, 'given.db'),
    });
    expect(stopped.isRunning()).toBe(false);
    expect(seeded.lastWriteRevision).toBe(13);
    expect(stopped.revision()).toBe(13);
    expect(stopped.liveKeys().get('/registry/k11')).toBe('v11');
    expect(stopped.liveKeys().size).toBe(12);
    // the control: its key reads after the first were lost twice
    expect(faults.lostSoFar()).toBe(2);
  }, 60_000);
});
