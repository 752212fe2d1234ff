/**
 * Autopilot drills on real etcd (`--etcd real`): every simulated control-plane node owns a real etcd 3.4 member. After
 * each drill the recovered cluster is asked with Debian's etcdctl: every member answers a linearizable `get` (so there
 * is a leader and a quorum) with exactly the keys and values of the snapshot the wizard uploaded, at its revision, and
 * the data-loss figure is the real revisions. Skipped (with a message) where etcd is not installed.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { findPackageRoot } from '../../src/paths.js';
import { startDrillSim } from '../../src/wizard/drill.js';
import { afterAll, describe, expect, it, onTestFinished, vi } from 'vitest';
import { readKeyBucket } from '../../src/etcd/keys.js';
import { RealEtcd } from '../../src/sim/real-etcd.js';
import { realEtcdMissing } from '../../src/sim/real-etcd-tools.js';
import { peer, skipReason } from '../peers/peers.js';
import { drillOnRealEtcd, etcdctlJson, nextAddressBase, processesMentioning, type RealDrill } from './harness.js';

const missing = realEtcdMissing();
if (missing) console.warn(`SKIPPED: the drills on real etcd need etcd and etcdctl. ${missing}`);
/** upstream's etcd 3.7 and etcdutl 3.7 (scripts/build-peers.sh), where built */
const etcd37 = peer('etcd') && peer('etcdutl') ? dirname(peer('etcd')!) : null;
if (!etcd37) console.warn(`lost-quorum runs on Debian's etcd:${skipReason('etcd', 'etcdutl')}`);

const runs: RealDrill[] = [];
afterAll(async () => {
  for (const r of runs) await r.sim.stop();
});

interface GetAnswer {
  header: { revision: number; member_id: number };
  kvs?: { key: string; value: string; mod_revision: number }[];
  count?: number;
}
interface MemberListAnswer {
  members: { ID: number; name: string; peerURLs: string[]; clientURLs?: string[] }[];
}

const decode = (b64: string): string => Buffer.from(b64, 'base64').toString('utf8');

/** What every recovered member answers, checked against the uploaded snapshot file with etcdctl and our reader. */
async function expectRealClusterHolds(r: RealDrill, expectedLost: number | 'any'): Promise<void> {
  expect(r.lines.at(-1)).toBe('outcome: recovered');
  expect(r.code).toBe(0);
  expect(r.lines.at(-2)).toContain('(data checked on real etcd: the restored keys equal the snapshot)');

  const snapshotFile = r.context.snapshot?.file;
  expect(snapshotFile).toBeTruthy();
  const file = snapshotFile as string;
  // the snapshot's revision in etcd's own words, and its live keys
  const status = await etcdctlJson<{ revision: number; totalKey: number }>('snapshot', 'status', file);
  const expected = await readKeyBucket(file);
  expect(expected.size).toBeGreaterThan(50);

  const report = r.sim.dataReport();
  expect(report.etcd).toBe('real');
  expect(report.keysMatchSnapshot).toBe(true);
  expect(report.restoredRevision).toBe(status.revision);
  expect(report.lostRevisions).toBe(report.lastWriteRevision - status.revision);
  if (expectedLost !== 'any') expect(report.lostRevisions).toBe(expectedLost);

  const controlPlane = r.sim.view().filter((v) => v.machineType === 'controlplane');
  const endpoints = controlPlane.map((v) => v.etcdClientUrl as string);
  expect(endpoints.every((e) => /^http:\/\/127\.\d+\.\d+\.\d+:\d+$/.test(e))).toBe(true);

  // one cluster: every member lists every node by its hostname
  for (const endpoint of endpoints) {
    const list = await etcdctlJson<MemberListAnswer>('--endpoints', endpoint, 'member', 'list');
    expect(list.members.map((m) => m.name).sort()).toEqual(controlPlane.map((v) => v.hostname).sort());
  }
  // every member serves the snapshot's keys at the snapshot's revision, through a linearizable read (needs a leader)
  for (const endpoint of endpoints) {
    const got = await etcdctlJson<GetAnswer>(
      '--endpoints',
      endpoint,
      '--command-timeout=10s',
      'get',
      '',
      '--prefix',
      '--consistency=l',
    );
    expect(got.header.revision).toBe(status.revision);
    const keys = new Map((got.kvs ?? []).map((kv) => [decode(kv.key), decode(kv.value)]));
    expect(keys.size).toBe(expected.size);
    for (const [key, value] of expected) expect(keys.get(key)).toBe(value.toString('utf8'));
    expect(Math.max(...(got.kvs ?? []).map((kv) => kv.mod_revision))).toBeLessThanOrEqual(status.revision);
  }
}

/** Stops the simulator and proves that none of its etcd processes is left (found by their data dirs). */
async function expectStopsEveryProcess(r: RealDrill): Promise<void> {
  expect((await processesMentioning(r.dir)).length).toBeGreaterThan(0);
  await r.sim.stop();
  expect(await processesMentioning(r.dir)).toEqual([]);
}

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

  it('etcd-down-raw-copy: the real member/snap/db, restored with skip-hash-check by etcd itself', async () => {
    const r = await drillOnRealEtcd('etcd-down-raw-copy');
    runs.push(r);
    expect(r.lines).toContainEqual(expect.stringMatching(/^step 3\/\d+ snapshot: raw from .*skip-hash-check/));
    expect(r.context.snapshot?.needsSkipHashCheck).toBe(true);
    // the raw copy is the db of a stopped member that was behind: the real revisions say what was lost
    await expectRealClusterHolds(r, 'any');
    await expectStopsEveryProcess(r);
  }, 240_000);

  it('hardware-failure: the blank machines get their configs back and join the restored member for real', async () => {
    const r = await drillOnRealEtcd('hardware-failure');
    runs.push(r);
    await expectRealClusterHolds(r, 0);
    await expectStopsEveryProcess(r);
  }, 240_000);

  // single-node's drill is this one: the given snapshot etcd saved 25 revisions back, restored on the second round
  // (before, an undamaged single-node drill ran too, for the 25 revisions lost and the refused resume asserted below;
  // a restore that succeeds on its first round is every other drill here)
  it('single-node, the snapshot damaged on the node after its upload: etcd refuses the restore in its own words, step 8 wipes and uploads again; the cluster recovers, 25 revisions lost, and the ended drill cannot be resumed', async () => {
    const damage: { at: string | null; dbLeft: boolean } = { at: null, dbLeft: false };
    // One byte of the uploaded file is flipped once it is complete, just before etcd's first restore reads it. Before,
    // a timer polled the file every 5 ms for its final size, which raced the restore on a loaded machine.
    const restore = RealEtcd.prototype.restore;
    const spy = vi.spyOn(RealEtcd.prototype, 'restore').mockImplementation(async function (
      this: RealEtcd,
      path,
      skipHashCheck,
      self,
    ) {
      if (damage.at !== null) return restore.call(this, path, skipHashCheck, self);
      damage.at = path;
      const bytes = await readFile(path);
      const at = Math.floor(bytes.length / 2);
      bytes[at] = (bytes[at] ?? 0) ^ 0xff;
      await writeFile(path, bytes);
      try {
        return await restore.call(this, path, skipHashCheck, self);
      } finally {
        // etcd copies the file into member/snap/db before it checks the hash, and leaves it there (so a second
        // Bootstrap is refused until the node is wiped again)
        damage.dbLeft = existsSync(this.dbPath);
      }
    });
    onTestFinished(() => spy.mockRestore());
    const r = await drillOnRealEtcd('single-node');
    runs.push(r);
    const node = r.sim.nodes[0] as string;
    expect(damage.at).toBe(join(r.dir, 'sim', 'nodes', node, 'var', 'lib', 'etcd.snapshot'));
    expect(damage.dbLeft).toBe(true);
    // etcd's own text: the trailer and the computed sha256, as Go prints byte slices; then step 8 again
    const verify = r.lines.filter((l) => l.startsWith('step 9/'));
    expect(verify[0]).toMatch(
      /^step 9\/\d+ verify: failed: 127\.\d+\.\d+\.\d+: the restore failed: .*expected sha256 \[(\d+ ){31}\d+\], got \[(\d+ ){31}\d+\]; step 8 offers a new wipe$/,
    );
    // the new round under its own operation ids: the node wiped again, the snapshot uploaded again, Bootstrap again
    const opIds = new Set(
      (await readFile(join(r.dir, 'journal.jsonl'), 'utf8'))
        .split('\n')
        .filter(Boolean)
        .map((l) => (JSON.parse(l) as { opId?: string }).opId),
    );
    for (const id of [`reset:${node}:restore-1`, `upload:${node}:r1:0`, `bootstrap:${node}:r1`]) {
      expect(opIds).toContain(id);
    }
    // and the second restore holds the snapshot's data: the given snapshot's 25 revisions are lost
    await expectRealClusterHolds(r, 25);
    expect(r.lines.at(-2)).toContain('data lost 25 revisions');
    await expectStopsEveryProcess(r);
    // the members ended with the drill: resuming it is refused in one sentence, and starts nothing
    await expect(
      startDrillSim(r.dir, 'single-node', { addressBase: nextAddressBase(), speed: 50, restore: true }),
    ).rejects.toThrow(/ran on real etcd processes, which ended with it, so it cannot be resumed/);
    expect(await processesMentioning(r.dir)).toEqual([]);
  }, 240_000);
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
    onTestFinished(() => {
      if (child.exitCode === null) child.kill('SIGTERM');
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
