/**
 * Autopilot drills on real etcd (`--etcd real`): every simulated control-plane node owns a real etcd 3.4 member. After
 * each drill the recovered cluster is asked with Debian's etcdctl: every member answers a linearizable `get` (so there
 * is a leader and a quorum) with exactly the keys and values of the snapshot the wizard uploaded, at its revision, and
 * the data-loss figure is the real revisions. Skipped (with a message) where etcd is not installed.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { findPackageRoot } from '../../src/paths.js';
import { afterAll, describe, expect, it, onTestFinished } from 'vitest';
import { realEtcdMissing } from '../../src/sim/real-etcd-tools.js';
import { peer, skipReason } from '../peers/peers.js';
import { drillOnRealEtcd, nextAddressBase, processesMentioning, type RealDrill } from './harness.js';
import { expectRealClusterHolds, expectStopsEveryProcess } from './drill-checks.js';

const missing = realEtcdMissing();
if (missing) console.warn(`SKIPPED: the drills on real etcd need etcd and etcdctl. ${missing}`);
/** upstream's etcd 3.7 and etcdutl 3.7 (scripts/build-peers.sh), where built */
const etcd37 = peer('etcd') && peer('etcdutl') ? dirname(peer('etcd')!) : null;
if (!etcd37) console.warn(`lost-quorum runs on Debian's etcd:${skipReason('etcd', 'etcdutl')}`);

const runs: RealDrill[] = [];
afterAll(async () => {
  for (const r of runs) {
    await r.sim.stop();
    // each drill's folder holds its members' data (about 250 MB: etcd preallocates its WAL), left behind it filled /tmp
    rmSync(dirname(r.dir), { recursive: true, force: true });
  }
});

describe.skipIf(missing !== null)('autopilot drills on real etcd members', () => {
  // On the etcd Talos 1.14 runs where scripts/build-peers.sh built it (formerly etcd37.test.ts, a lost-quorum drill of
  // its own): etcdutl 3.7 restores the upload and every member answers as etcd 3.7 in one cluster. Debian's etcd
  // still runs every other drill here (lost-quorum-5 is the same procedure on five members).
  it(`lost-quorum: snapshot of the leaderless survivor, wipe all, restore; three real members hold the data${etcd37 ? ' (etcd 3.7)' : ''}`, async () => {
    if (etcd37) process.env.TALOS_DR_ETCD_BIN_DIR = etcd37;
    let r: RealDrill;
    try {
      r = await drillOnRealEtcd('lost-quorum');
    } finally {
      delete process.env.TALOS_DR_ETCD_BIN_DIR;
    }
    runs.push(r);
    expect(r.lines).toContainEqual(expect.stringMatching(/^step 3\/\d+ snapshot: api from /));
    await expectRealClusterHolds(r, 0);
    if (etcd37) {
      const answers = await Promise.all(
        r.sim
          .view()
          .filter((n) => n.machineType === 'controlplane')
          .map(async (n) => {
            const url = n.etcdClientUrl as string;
            const version = (await (await fetch(`${url}/version`)).json()) as { etcdserver: string };
            const status = (await (
              await fetch(`${url}/v3/maintenance/status`, { method: 'POST', body: '{}' })
            ).json()) as { header: { cluster_id: string } };
            return { server: version.etcdserver, cluster: status.header.cluster_id };
          }),
      );
      expect(answers.length).toBe(3);
      for (const a of answers) expect(a.server).toMatch(/^3\.7\./);
      expect(new Set(answers.map((a) => a.cluster)).size).toBe(1);
    }
    await expectStopsEveryProcess(r);
  }, 300_000);

  it('lost-quorum-5: five real members, all wiped and restored; every one joins, is promoted and holds the data', async () => {
    const r = await drillOnRealEtcd('lost-quorum-5');
    runs.push(r);
    expect(r.lines).toContainEqual(expect.stringMatching(/^step 3\/\d+ snapshot: api from /));
    await expectRealClusterHolds(r, 0);
    await expectStopsEveryProcess(r);
  }, 300_000);
});

describe.skipIf(missing !== null)('talos-dr sim --etcd real', () => {
  it('serves real members on the nodes’ loopback addresses and stops every one of them by pid on SIGTERM', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'talos-dr-real-sim-'));
    const cli = join(findPackageRoot(), 'dist/src/cli.js');
    const base = nextAddressBase();
    const child = spawn(
      process.execPath,
      [cli, 'sim', '--scenario', 'lost-quorum', '--dir', dir, '--port', '0', '--address-base', base, '--etcd', 'real'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    onTestFinished(async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    });
    const deadline = Date.now() + 60_000;
    while (!out.includes('\n') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(out).toMatch(/^ready endpoints=/);
    // cp-1 runs (leaderless); cp-2 and cp-3 crash-loop with damaged WALs, so they have no process
    const pids = await processesMentioning(dir);
    expect(pids).toHaveLength(1);
    const args = readFileSync(`/proc/${pids[0]}/cmdline`, 'utf8').split('\0');
    const prefix = base.replace(/\.2$/, '.');
    for (const flag of ['--listen-client-urls=', '--listen-peer-urls=']) {
      const url = args.find((a) => a.startsWith(flag)) ?? '';
      expect(url.slice(flag.length)).toMatch(new RegExp(`^http://${prefix.replace(/\./g, '\\.')}2:\\d+$`));
    }
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(await processesMentioning(dir)).toEqual([]);
  }, 120_000);
});
