/**
 * Autopilot drills on real etcd (`--etcd real`) that restore from what is not a plain snapshot or onto what is not a
 * plain node: a raw member/snap/db copy (skip-hash-check), blank machines given their configs back, and an upload
 * damaged on the node (etcd refuses it in its own words, step 8 wipes and uploads again). Checked as drills.test.ts
 * checks its drills (drill-checks.ts); split from it so the two run side by side. Skipped where etcd is not installed.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { existsSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { startDrillSim } from '../../src/wizard/drill.js';
import { afterAll, describe, expect, it, onTestFinished, vi } from 'vitest';
import { RealEtcd } from '../../src/sim/real-etcd.js';
import { realEtcdMissing } from '../../src/sim/real-etcd-tools.js';
import { drillOnRealEtcd, nextAddressBase, processesMentioning, type RealDrill } from './harness.js';
import { expectRealClusterHolds, expectStopsEveryProcess } from './drill-checks.js';

const missing = realEtcdMissing();
if (missing) console.warn(`SKIPPED: the drills on real etcd need etcd and etcdctl. ${missing}`);

const runs: RealDrill[] = [];
afterAll(async () => {
  for (const r of runs) {
    await r.sim.stop();
    // each drill's folder holds its members' data (about 250 MB: etcd preallocates its WAL), left behind it filled /tmp
    rmSync(dirname(r.dir), { recursive: true, force: true });
  }
});

describe.skipIf(missing !== null)(
  'autopilot drills on real etcd members: restores from a raw copy, blank machines, a damaged upload',
  () => {
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
  },
);
