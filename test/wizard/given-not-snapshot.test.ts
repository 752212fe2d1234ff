/**
 * Issue 18 item 12 in the wizard: a given file that is not an etcd snapshot (here gzip) is refused from its first
 * pages, with the format's one sentence, before anything is hashed or copied: the option fails (not worth retrying
 * unchanged) and the incident's snapshots/ stays empty. Before: the whole file was read, copied into the incident
 * folder and hashed again, and only then found unusable.
 */
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterEach, expect, it } from 'vitest';
import { buildEtcdSnapshot } from '../../src/etcd/writer.js';
import { createIncidentDir } from '../../src/journal/incident.js';
import { Journal } from '../../src/journal/journal.js';
import { takeSnapshot } from '../../src/wizard/snapshot.js';
import { ActionError } from '../../src/wizard/ledger.js';
import type { TalosClient } from '../../src/talos/types.js';
import type { SnapshotOption } from '../../machines/recovery-types.js';
import { content } from '../backups/fixtures.js';

const cleanup: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanup.splice(0)) c();
});

it('a gzip-compressed snapshot given as the file: refused with its sentence, nothing copied', async () => {
  const work = mkdtempSync(join(tmpdir(), 'talos-dr-given-gz-'));
  cleanup.push(() => rmSync(work, { recursive: true, force: true }));
  const file = join(work, 'etcd.db.gz');
  writeFileSync(file, gzipSync(buildEtcdSnapshot(content)));
  const incident = createIncidentDir(join(work, 'incident'));
  const journal = new Journal(incident.dir);
  cleanup.push(() => journal.close());
  const option: SnapshotOption = { id: `file:${file}`, method: 'file', node: null, file, label: '', failed: null };
  const error = await takeSnapshot(
    { client: {} as TalosClient, connectMaintenance: null, incident, journal, operator: 'tester' },
    option,
    'snapshot:0',
  ).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(ActionError);
  expect((error as Error).message).toMatch(/^The file is gzip-compressed: decompress it first \(gunzip\)/);
  expect((error as ActionError).retryable).toBe(false);
  expect(readdirSync(incident.snapshots)).toEqual([]);
});
