/**
 * Issue 17 item 5 end to end: the bootstrap node reboots when the snapshot upload starts, and stays down for 240 s of
 * simulated time (real hardware takes minutes). A rebooting node refuses connections, so before, the upload's five
 * quick tries (about 31 s of backoff) were spent on the reboot and the drill stopped at "upload failed. Try again?"
 * mid-bootstrap (autopilot does not guess at a failure: `failed`). Now the machine waits for the node to answer again
 * and uploads once it does. The real client against the simulator, autopilot answering, as `drill --autopilot`.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runScenario, type DrillRun } from './harness.js';

const runs: DrillRun[] = [];
afterAll(async () => {
  for (const r of runs) await r.sim.stop();
});

/** lost-quorum, with cp-1 rebooting (240 s) when the upload reaches it. */
function rebootingUploadScenario(): string {
  const lostQuorum = readFileSync(join(import.meta.dirname, '..', '..', 'scenarios', 'lost-quorum.yaml'), 'utf8');
  const yaml = lostQuorum
    .replace('name: lost-quorum', 'name: upload-target-reboots')
    .replace('rebootSec: 45', 'rebootSec: 240')
    .concat('faults:\n  - { kind: reboot-during, node: cp-1, method: EtcdRecover, times: 1 }\n');
  const file = join(mkdtempSync(join(tmpdir(), 'talos-dr-upload-reboot-')), 'upload-target-reboots.yaml');
  writeFileSync(file, yaml);
  return file;
}

describe('a drill whose upload target reboots for longer than five quick tries', () => {
  it('waits for the node to answer again, uploads, bootstraps once and recovers', async () => {
    const r = await runScenario(rebootingUploadScenario());
    runs.push(r);
    expect(r.lines.at(-1)).toBe('outcome: recovered');
    expect(r.code).toBe(0);
    expect(r.sim.dataReport().keysMatchSnapshot).toBe(true);
    expect(Object.values(r.sim.destructiveCalls().bootstrap).reduce((a, b) => a + b, 0)).toBe(1);
    // the upload was cut by the reboot and sent again after the node answered: two upload operations, the first failed
    const uploads = r.journal.filter(
      (j) => j.kind === 'action' && j.phase === 'before' && j.what.startsWith('upload '),
    );
    expect(uploads.length).toBeGreaterThanOrEqual(2);
    expect(new Set(uploads.map((u) => u.opId)).size).toBe(uploads.length);
  }, 120_000);
});
