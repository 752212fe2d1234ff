/**
 * `--etcd real` on the etcd Talos 1.14 runs: upstream's etcd 3.7 and etcdutl 3.7 (built by scripts/build-peers.sh,
 * named by TALOS_DR_ETCD_BIN_DIR). The autopilot recovers lost-quorum: etcdutl 3.7 restores the uploaded snapshot,
 * the other nodes join the restored member, and every member answers as etcd 3.7 in one cluster.
 */
import { dirname } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { realEtcdMissing } from '../../src/sim/real-etcd-tools.js';
import { peer, skipReason } from '../peers/peers.js';
import { drillOnRealEtcd, type RealDrill } from './harness.js';

const missing = realEtcdMissing();
const etcd37 = peer('etcd') && peer('etcdutl') ? dirname(peer('etcd')!) : null;
const reason = missing ? ` (skipped: ${missing})` : skipReason('etcd', 'etcdutl');

const runs: RealDrill[] = [];
afterAll(async () => {
  for (const r of runs) await r.sim.stop();
});

describe.skipIf(!etcd37 || missing !== null)(`autopilot on real etcd 3.7 members${reason}`, () => {
  it('lost-quorum: restored by etcdutl 3.7; every member answers as etcd 3.7 with the same cluster', async () => {
    process.env.TALOS_DR_ETCD_BIN_DIR = etcd37!;
    try {
      const r = await drillOnRealEtcd('lost-quorum');
      runs.push(r);
      expect(r.lines.at(-1)).toBe('outcome: recovered');
      const urls = r.sim
        .view()
        .filter((n) => n.etcdState === 'Running')
        .map((n) => n.etcdClientUrl)
        .filter((u): u is string => Boolean(u));
      const answers = await Promise.all(
        urls.map(async (url) => {
          const version = (await (await fetch(`${url}/version`)).json()) as { etcdserver: string };
          const status = (await (
            await fetch(`${url}/v3/maintenance/status`, { method: 'POST', body: '{}' })
          ).json()) as { header: { cluster_id: string }; storageVersion?: string };
          return { server: version.etcdserver, cluster: status.header.cluster_id, storage: status.storageVersion };
        }),
      );
      expect(answers.length).toBe(3);
      for (const a of answers) expect(a.server).toMatch(/^3\.7\./);
      expect(new Set(answers.map((a) => a.cluster)).size).toBe(1);
    } finally {
      delete process.env.TALOS_DR_ETCD_BIN_DIR;
    }
  }, 300_000);
});
