/**
 * The pure pieces the wizard calls: talos-backup names, the newest backup's age, the snapshot against the live
 * cluster's newest revision, and the storage version against the etcd the target Talos restores with; and an age
 * identity that never shows its key; the download line's rate and time left.
 */
import { describe, expect, test } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { generateIdentity } from 'age-encryption';
import { loadIdentity } from '../../src/backups/identity.js';
import { TransferLine } from '../../src/commands/import.js';
import { parseBackupName, plainSnapshotName } from '../../src/backups/names.js';
import {
  formatDuration,
  newestBackupAge,
  restoringEtcdFor,
  snapshotFreshness,
  storageVersionCheck,
} from '../../src/backups/freshness.js';

describe('talos-backup names', () => {
  test.each([
    ['prod-1-2026-12-02T10:00:00Z.snap', 'prod-1', '2026-12-02T10:00:00.000Z', []],
    ['backups/prod-1-2026-12-02T10:00:00Z.snap.zst', 'prod-1', '2026-12-02T10:00:00.000Z', ['zstd']],
    ['prod-1/prod-1-2026-12-02T11:00:00+01:00.snap.age', 'prod-1', '2026-12-02T10:00:00.000Z', ['age']],
    [
      'a/b/my-cluster-2026-01-31T23:59:59-05:00.snap.zst.age',
      'my-cluster',
      '2026-02-01T04:59:59.000Z',
      ['zstd', 'age'],
    ],
  ])('%s', (key, cluster, iso, layers) => {
    const name = parseBackupName(key);
    expect(name).toMatchObject({ cluster, layers });
    expect(name?.takenAt.toISOString()).toBe(iso);
  });

  test.each(['notes.txt', 'prod-2026-12-02.snap', 'prod-2026-12-02T10:00:00Z.snap.gz', 'prod-1/'])(
    '%s is not one',
    (key) => expect(parseBackupName(key)).toBeNull(),
  );

  test('the plain name drops .age and .zst; a name by hand gets .snap', () => {
    expect(plainSnapshotName('x/prod-2026-12-02T10:00:00Z.snap.zst.age')).toBe('prod-2026-12-02T10:00:00Z.snap');
    expect(plainSnapshotName('/tmp/backup.age')).toBe('backup.snap');
    expect(plainSnapshotName('etcd.db.zst')).toBe('etcd.db');
  });
});

describe('the newest backup', () => {
  const now = new Date('2026-12-02T12:00:00Z');

  test('a recent one is fresh, with its age', () => {
    const age = newestBackupAge(new Date('2026-12-02T11:50:00Z'), now);
    expect(age).toMatchObject({ verdict: 'fresh', ageMs: 600_000 });
    expect(age.sentence).toBe('The newest backup is 10 min old (2026-12-02T11:50:00.000Z).');
  });

  test('one older than a day: the backup job stopped (talos-backup#46, #54)', () => {
    const age = newestBackupAge(new Date('2026-11-28T09:00:00Z'), now);
    expect(age.verdict).toBe('stale');
    expect(age.sentence).toMatch(/^The newest backup is 4 d 3 h old .*: the backup job has stopped or is failing;/);
  });

  test('none, or one from the future (a wrong clock)', () => {
    expect(newestBackupAge(null, now).verdict).toBe('none');
    expect(newestBackupAge(new Date('2026-12-02T14:00:00Z'), now).sentence).toMatch(
      /in the future .* a clock is wrong/,
    );
  });

  test.each([
    [0, '0 s'],
    [59_000, '59 s'],
    [3_600_000, '1 h'],
    [3_660_000, '1 h 1 min'],
    [47 * 3_600_000, '47 h'],
    [50 * 3_600_000, '2 d 2 h'],
  ])('%d ms reads as %s', (ms, text) => expect(formatDuration(ms)).toBe(text));
});

describe('the snapshot against the live cluster', () => {
  test('live data newer: how much newer, where, and that it needs a decision', () => {
    const f = snapshotFreshness(
      4821,
      [
        { node: '10.0.0.2', revision: 4900, source: 'reported' },
        { node: '10.0.0.3', revision: 5012, source: 'raw-copy' },
      ],
      new Date('2026-12-02T10:00:00Z'),
      new Date('2026-12-02T12:30:00Z'),
    );
    expect(f).toMatchObject({ verdict: 'older', behind: 191, liveNode: '10.0.0.3', needsDecision: true });
    expect(f.sentence).toBe(
      "The live data is newer than the snapshot: 10.0.0.3 holds revision 5012 in a raw copy of its database, 191 revisions past the snapshot's 4821, taken 2 h 30 min ago; restoring it loses those writes.",
    );
  });

  test('as new as the newest member: no decision needed', () => {
    const f = snapshotFreshness(5012, [{ node: '10.0.0.3', revision: 5012, source: 'reported' }]);
    expect(f).toMatchObject({ verdict: 'current', behind: 0, needsDecision: false });
  });

  test('no member readable: unknown, and a decision', () => {
    expect(snapshotFreshness(10, [])).toMatchObject({ verdict: 'unknown', needsDecision: true, liveRevision: null });
  });
});

describe('storage version against the restoring etcd', () => {
  test.each([
    ['v1.12.12', '3.6'],
    ['1.13.4', '3.6'],
    ['v1.14.7', '3.7'],
    ['v1.11.6', null],
    ['nonsense', null],
  ])('Talos %s restores with etcd %s', (talos, etcd) => expect(restoringEtcdFor(talos)).toBe(etcd));

  test('a 3.7 snapshot on Talos 1.13 (etcd 3.6): warned, naming both', () => {
    const check = storageVersionCheck('3.7.0', 'v1.13.2');
    expect(check.verdict).toBe('newer-than-target');
    expect(check.sentence).toBe(
      'The snapshot was written by etcd 3.7, newer than the etcd 3.6 Talos v1.13.2 restores with; restore on a Talos version that ships etcd 3.7 or newer.',
    );
  });

  test('same or older, or no storage version (etcd 3.5 data): fine', () => {
    expect(storageVersionCheck('3.6.0', 'v1.14.0').verdict).toBe('ok');
    expect(storageVersionCheck('3.6.0', 'v1.12.0').verdict).toBe('ok');
    expect(storageVersionCheck(null, 'v1.12.0').verdict).toBe('ok');
  });
});

describe('an age identity in memory', () => {
  test('its key never shows in JSON or in an inspected object', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'talos-dr-identity-'));
    try {
      const secret = await generateIdentity();
      writeFileSync(join(dir, 'key.txt'), `# created: now\n${secret}\n`);
      const identity = await loadIdentity(join(dir, 'key.txt'));
      expect(identity.keys).toEqual([secret]);
      expect(JSON.stringify({ identity })).not.toContain('AGE-SECRET-KEY');
      expect(inspect(identity)).not.toContain('AGE-SECRET-KEY');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the download line', () => {
  test('bytes of the total, rate and time left, rewritten in place on a terminal; nothing elsewhere', () => {
    let clock = 0;
    const written: string[] = [];
    const terminal = { isTTY: true, write: (s: string) => written.push(s) };
    const line = new TransferLine(terminal, 'downloading', () => clock);
    clock = 1000;
    line.update(1024 * 1024, 4 * 1024 * 1024);
    expect(written.at(-1)).toBe('\r\x1b[2Kdownloading: 1.0 MiB of 4.0 MiB, 1.0 MiB/s, 3 s left');
    clock = 1100;
    line.update(2 * 1024 * 1024, 4 * 1024 * 1024);
    expect(written).toHaveLength(1);
    line.done();
    expect(written.at(-1)).toBe('\r\x1b[2K');
    const pipe: string[] = [];
    const quiet = new TransferLine({ write: (s: string) => pipe.push(s) }, 'downloading', () => clock);
    quiet.update(1, 2);
    quiet.done();
    expect(pipe).toEqual([]);
  });
});
