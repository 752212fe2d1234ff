/**
 * Issue 16, before anything is wiped: a snapshot file written by an etcd newer than the one the target Talos restores
 * with, chosen at step 3 on a simulated Talos 1.14 cluster (etcd 3.7) over the real wire. The storage-version warning
 * and the file's unknown freshness (no member's data was read) are on screen when step 3 ends, stay there for the
 * upload, and are journalled (so the report lists them). Before: nothing was said and the restore would fail after
 * the wipe.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { waitFor } from 'xstate';
import { buildEtcdSnapshot } from '../../src/etcd/writer.js';
import { readJournal } from '../../src/journal/journal.js';
import { content } from '../backups/fixtures.js';
import { closeGrounds, startGround, startSessionOn } from '../drill/harness.js';

const scratch = mkdtempSync(join(tmpdir(), 'talos-dr-warnings-'));
afterAll(async () => {
  await closeGrounds();
  rmSync(scratch, { recursive: true, force: true });
});

it('a snapshot from a newer etcd than the target Talos restores with: warned on screen and journalled', async () => {
  const file = join(scratch, 'from-etcd-3.8.snapshot');
  writeFileSync(file, buildEtcdSnapshot({ ...content, storageVersion: '3.8.0' }));
  const g = await startGround('lost-quorum');
  const session = startSessionOn(g);
  const { actor } = session;
  const at = (id: string) =>
    waitFor(actor, (s) => s.context.prompt?.id === id || s.status === 'done', { timeout: 20_000 });
  await at('confirm-nodes');
  actor.send({ type: 'answer.yes' });
  await at('snapshot-source');
  actor.send({ type: 'choose', option: 'file', path: file });
  await waitFor(actor, (s) => s.matches({ procedure: 'backup' }) || s.status === 'done', { timeout: 20_000 });
  const { warnings, snapshot } = actor.getSnapshot().context;
  expect(snapshot?.storageVersion).toBe('3.8.0');
  const storage =
    /^The snapshot was written by etcd 3\.8, newer than the etcd 3\.7 Talos v1\.14\.\d+ restores with; restore on a Talos version that ships etcd 3\.8 or newer\.$/;
  expect(warnings.some((w) => storage.test(w))).toBe(true);
  expect(warnings).toContainEqual(
    expect.stringMatching(/^No member's data could be read, so it is unknown whether the snapshot \(revision 4, taken/),
  );
  const journalled = readJournal(g.incident.dir).filter((r) => r.kind === 'warning');
  expect(journalled.some((r) => storage.test(r.what))).toBe(true);
  // nothing destructive happened on the way
  expect(Object.values(g.sim.destructiveCalls().reset).every((n) => n === 0)).toBe(true);
}, 60_000);
