/**
 * Issue 17 item 1: a snapshot file typed as a relative path at "use another snapshot file". The effect of step 3
 * (takeSnapshot) on a real file, a real incident folder and its journal: the file is copied into the incident's
 * snapshots/ (0600, sha256 journalled) and the recovery goes on with that absolute copy, so a resume from another
 * folder, or the original moved away, still uploads it. Before: the path was kept as typed.
 */
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { buildEtcdSnapshot } from '../../src/etcd/writer.js';
import { createIncidentDir } from '../../src/journal/incident.js';
import { Journal, readJournal } from '../../src/journal/journal.js';
import { takeSnapshot, verifySnapshotFile } from '../../src/wizard/snapshot.js';
import type { TalosClient } from '../../src/talos/types.js';
import { content } from '../backups/fixtures.js';

const cwd = process.cwd();
const cleanup: (() => void)[] = [];
afterEach(() => {
  process.chdir(cwd);
  for (const c of cleanup.splice(0)) c();
});

describe('a snapshot file given by a relative path', () => {
  it('is copied into the incident folder (0600, sha256 journalled) and used from there', async () => {
    const work = mkdtempSync(join(tmpdir(), 'talos-dr-given-'));
    cleanup.push(() => rmSync(work, { recursive: true, force: true }));
    mkdirSync(join(work, 'backups'));
    const bytes = buildEtcdSnapshot(content);
    writeFileSync(join(work, 'backups', 'etcd.db'), bytes);
    chmodSync(join(work, 'backups', 'etcd.db'), 0o644);
    const incident = createIncidentDir(join(work, 'incident'));
    const journal = new Journal(incident.dir);
    cleanup.push(() => journal.close());

    process.chdir(work);
    const info = await takeSnapshot(
      { client: {} as TalosClient, connectMaintenance: null, incident, journal, operator: 'tester' },
      { id: 'file', method: 'file', file: 'backups/etcd.db', label: 'use another snapshot file' } as never,
      'snapshot:0',
    );
    process.chdir(tmpdir());

    expect(isAbsolute(info.file)).toBe(true);
    expect(info.file.startsWith(`${incident.snapshots}/`)).toBe(true);
    expect(statSync(info.file).mode & 0o777).toBe(0o600);
    const sha = createHash('sha256').update(bytes).digest('hex');
    expect(info.sha256).toBe(sha);
    expect(readFileSync(info.file).equals(bytes)).toBe(true);
    const record = readJournal(incident.dir).find((r) => r.what.includes('copied into the incident folder'));
    expect(record?.data).toMatchObject({ from: join(work, 'backups', 'etcd.db'), sha256: sha, file: info.file });

    // the original moved away: the upload's re-check reads the copy, from another folder
    rmSync(join(work, 'backups'), { recursive: true });
    await expect(
      verifySnapshotFile(
        { client: {} as TalosClient, connectMaintenance: null, incident, journal, operator: 'tester' },
        info.file,
      ),
    ).resolves.toEqual({ sha256: sha });
  });
});
