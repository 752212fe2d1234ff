/**
 * Issue 16 in the wizard: step 3's snapshot effect takes a talos-backup snapshot where it lives — the newest under an
 * S3 prefix (a real S3-compatible server on 127.0.0.1: gofakes3, built by scripts/build-s3.sh) or a `.snap.zst.age`
 * file — decrypts, decompresses and verifies it into the incident folder as `talos-dr import` does, journals the
 * sha256 chain, and says how fresh it is against the members' data read in this incident (raw copies over the real
 * wire from the simulator). Before: a talos-backup file was refused as "age data, not a bbolt database", and S3 was not
 * a source at all.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createHash } from 'node:crypto';
import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SNAPSHOT, makeBackup, makeKey, rfc3339, s3Missing, s3TestEnv, startFakeS3 } from './fixtures.js';
import type { AgeKey, FakeS3 } from './fixtures.js';
import { createIncidentDir } from '../../src/journal/incident.js';
import { Journal, readJournal } from '../../src/journal/journal.js';
import { takeSnapshot } from '../../src/wizard/snapshot.js';
import { ActionError } from '../../src/wizard/ledger.js';
import type { TalosClient } from '../../src/talos/types.js';
import type { SnapshotOption } from '../../machines/recovery-types.js';
import { SPEED, closeGrounds, startGround } from '../drill/harness.js';
import { startSession } from '../../src/wizard/session.js';
import { timingFor } from '../../src/wizard/run.js';
import { waitFor } from 'xstate';
import { backupAges } from '../../src/backups/assessment.js';

const skipReason = s3Missing;

const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');
const HOUR = 3600_000;
const takenAt = Date.now() - 3 * HOUR;
const newest = `prod-1-${rfc3339(takenAt)}.snap.zst.age`;
const older = `prod-1-${rfc3339(takenAt - 24 * HOUR)}.snap.zst.age`;

let dir = '';
let server: FakeS3 | null = null;
let key: AgeKey;
let encrypted: Buffer;
/** the process environment the effect reads (AWS settings, TALOS_DR_IDENTITY), restored after */
const saved = { ...process.env };

beforeAll(async () => {
  if (skipReason) return;
  dir = mkdtempSync(join(tmpdir(), 'talos-dr-wizard-s3-'));
  key = makeKey(dir, 'key.txt');
  server = await startFakeS3();
  Object.assign(process.env, { ...s3TestEnv(dir), AWS_ENDPOINT_URL_S3: server.endpoint });
  const src = join(dir, 'src');
  mkdirSync(src);
  const file = makeBackup(src, newest.replace(/\.zst\.age$/, ''), SNAPSHOT, { zstd: true, age: key });
  encrypted = readFileSync(file);
  await server.put(`prod-1/${newest}`, encrypted);
  const old = makeBackup(src, older.replace(/\.zst\.age$/, ''), SNAPSHOT, { zstd: true, age: key });
  await server.put(`prod-1/${older}`, readFileSync(old));
}, 60_000);

afterAll(async () => {
  for (const name of Object.keys(process.env)) if (!(name in saved)) delete process.env[name];
  Object.assign(process.env, saved);
  await closeGrounds();
  server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const backupOption = (spec: string): SnapshotOption =>
  ({ id: `backup:${spec}`, method: 'backup', node: null, file: spec, label: spec, failed: null }) as SnapshotOption;

function incidentWithoutCluster(name: string) {
  const incident = createIncidentDir(join(dir, name));
  const journal = new Journal(incident.dir);
  return { client: {} as TalosClient, connectMaintenance: null, incident, journal, operator: 'tester' };
}

describe.skipIf(skipReason !== null)(
  `the wizard's backup source${skipReason ? ` (skipped: ${skipReason})` : ''}`,
  () => {
    test('the newest backup under an S3 prefix is downloaded, decrypted and verified into the incident folder', async () => {
      process.env.TALOS_DR_IDENTITY = key.file;
      const deps = incidentWithoutCluster('s3-newest');
      const info = await takeSnapshot(deps, backupOption('s3://backups/prod-1'), 'snapshot:backup:0');
      expect(info).toMatchObject({ method: 'file', node: null, usable: true, integrity: 'verified' });
      expect(info.source).toBe(`s3://backups/prod-1/${newest}`);
      expect(info.file.startsWith(`${deps.incident.snapshots}/`)).toBe(true);
      expect(statSync(info.file).mode & 0o777).toBe(0o600);
      expect(info.sha256).toBe(sha256(SNAPSHOT));
      // the age of the data is the time in the backup's name, not the download's
      expect(Math.abs(info.takenAt - takenAt)).toBeLessThan(1000);
      const imported = readJournal(deps.incident.dir).find((r) => /imported into the incident folder/.test(r.what));
      const chain = imported?.data?.chain as { stage: string; sha256: string }[];
      expect(chain[0]).toMatchObject({ stage: 'source', sha256: sha256(encrypted) });
      expect(chain.at(-1)).toMatchObject({ stage: 'plain', sha256: sha256(SNAPSHOT) });
      // no member's data was read in this incident: whether it loses writes is unknown, and said
      expect(info.freshness).toMatchObject({ verdict: 'unknown' });
      expect(info.freshness?.sentence).toMatch(/taken 3 h \d+ min ago|taken 3 h ago/);
      expect(JSON.stringify(readJournal(deps.incident.dir))).not.toMatch(/AGE-SECRET-KEY/);
    });

    test('a .snap.zst.age file given at "use another snapshot file" is imported, not refused', async () => {
      process.env.TALOS_DR_IDENTITY = key.file;
      const deps = incidentWithoutCluster('file');
      const file = join(dir, 'src', newest);
      const option = { id: `file:${file}`, method: 'file', node: null, file, label: file, failed: null } as const;
      const info = await takeSnapshot(deps, option, 'snapshot:file:0');
      expect(info).toMatchObject({ usable: true, sha256: sha256(SNAPSHOT), source: file });
    });

    test('the wrong key: one sentence, nothing kept', async () => {
      process.env.TALOS_DR_IDENTITY = makeKey(dir, 'other.txt').file;
      const deps = incidentWithoutCluster('wrong-key');
      const error = await takeSnapshot(deps, backupOption('s3://backups/prod-1'), 'snapshot:backup:0').catch(
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(ActionError);
      expect((error as Error).message).toMatch(/was not encrypted to the identity in .*other\.txt \(public key age1/);
      expect(readdirSync(deps.incident.snapshots)).toEqual([]);
      // an endpoint that does not answer is worth another try (the step's retry), said in one sentence
      const endpoint = process.env.AWS_ENDPOINT_URL_S3;
      process.env.AWS_ENDPOINT_URL_S3 = 'http://127.0.0.1:9';
      const away = await takeSnapshot(deps, backupOption('s3://backups/prod-1'), 'snapshot:backup:2').catch(
        (e: unknown) => e,
      );
      process.env.AWS_ENDPOINT_URL_S3 = endpoint;
      expect(away).toBeInstanceOf(ActionError);
      expect((away as ActionError).retryable).toBe(true);
      expect((away as Error).message).toMatch(
        /^The S3 endpoint cannot be reached for s3:\/\/backups\/prod-1 \(ECONNREFUSED\)/,
      );
      delete process.env.TALOS_DR_IDENTITY;
      const none = await takeSnapshot(deps, backupOption('s3://backups/prod-1'), 'snapshot:backup:1').catch(
        (e: unknown) => e,
      );
      expect((none as Error).message).toMatch(/is age-encrypted: give the identity/);
    });

    test("against live members' raw copies: the backup is older, by how many revisions, and the journal says so", async () => {
      process.env.TALOS_DR_IDENTITY = key.file;
      const g = await startGround('etcd-down-raw-copy');
      const deps = { ...g, connectMaintenance: null, statusTimeoutMs: 1000 };
      const every = {
        id: 'raw:every-member',
        method: 'raw',
        node: null,
        nodes: g.sim.nodes,
        file: null,
        label: '',
        failed: null,
      } as SnapshotOption;
      const raw = await takeSnapshot(deps, every, 'snapshot:raw:every-member:0');
      const info = await takeSnapshot(deps, backupOption('s3://backups/prod-1'), 'snapshot:backup:1');
      const behind = (raw.revision ?? 0) - (info.revision ?? 0);
      expect(behind).toBeGreaterThan(100);
      expect(info.freshness).toMatchObject({ verdict: 'older', behind, liveNode: raw.node });
      expect(info.freshness?.sentence).toBe(
        `The live data is newer than the snapshot: ${raw.node} holds revision ${raw.revision} in a raw copy of its database, ${behind} revisions past the snapshot's ${info.revision}, taken ${info.freshness?.sentence.match(/taken (.*) ago/)?.[1]} ago; restoring it loses those writes.`,
      );
      const warning = readJournal(g.incident.dir).find((r) => r.kind === 'warning' && /freshness/.test(r.what));
      expect(warning?.data).toMatchObject({ liveRevision: raw.revision, behind });
    });

    test("at assessment: the newest backup's age at each location, and a location that cannot be read says so", async () => {
      const now = new Date();
      const plain = join(dir, 'src', 'etcd-nightly.snapshot');
      writeFileSync(plain, SNAPSHOT);
      utimesSync(plain, new Date(now.getTime() - 30 * HOUR), new Date(now.getTime() - 30 * HOUR));
      const ages = await backupAges(
        ['s3://backups/prod-1', plain, 's3://backups/nothing-here', join(dir, 'gone.snap')],
        {
          env: process.env,
          now,
        },
      );
      expect(ages.map((a) => a.age?.verdict ?? null)).toEqual(['fresh', 'stale', 'none', null]);
      expect(ages[0]?.sentence).toBe(
        `s3://backups/prod-1/: The newest backup is 3 h old (${new Date(Math.floor(takenAt / 1000) * 1000).toISOString()}).`,
      );
      expect(ages[1]?.sentence).toMatch(
        /etcd-nightly\.snapshot: The newest backup is 30 h old .*the backup job has stopped or is failing/,
      );
      expect(ages[2]?.sentence).toMatch(/nothing-here\/: No talos-backup snapshot was found/);
      expect(ages[3]?.sentence).toBe(`There is no backup file at ${join(dir, 'gone.snap')}; check the path.`);
    });

    test('in the recovery: "download the newest backup in s3://…" is offered, chosen, and goes on with its warnings', async () => {
      process.env.TALOS_DR_IDENTITY = key.file;
      const g = await startGround('lost-quorum');
      const session = startSession({
        deps: { ...g, connectMaintenance: null, statusTimeoutMs: 1000 },
        input: {
          nodes: g.sim.nodes,
          operator: g.operator,
          mode: 'drill',
          timing: timingFor(SPEED),
          givenSnapshots: ['s3://backups/prod-1'],
        },
        envelope: { mode: 'drill', nodes: g.sim.nodes },
      });
      try {
        const { actor } = session;
        const at = (id: string) =>
          waitFor(actor, (s) => s.context.prompt?.id === id || s.status === 'done', { timeout: 20_000 });
        await at('confirm-nodes');
        actor.send({ type: 'answer.yes' });
        const source = (await at('snapshot-source')).context.prompt;
        expect(source?.options).toContainEqual({
          id: 'backup:s3://backups/prod-1',
          label: 'download the newest backup in s3://backups/prod-1 (decrypted and verified first)',
        });
        // a live member answers: its consistent snapshot stays the recommended source
        expect(source?.recommended).toMatchObject({ type: 'choose', option: expect.stringMatching(/^api:/) });
        // what the screen is given to draw while the backup comes in: the download, then the verification
        const shown: { label?: string; bytes: number; total: number }[] = [];
        const watch = actor.subscribe((s) => {
          const t = s.context.transfer;
          if (t && s.matches({ procedure: 'snapshot' })) shown.push({ label: t.label, bytes: t.bytes, total: t.total });
        });
        actor.send({ type: 'choose', option: 'backup:s3://backups/prod-1' });
        await waitFor(actor, (s) => s.matches({ procedure: 'backup' }) || s.status === 'done', { timeout: 20_000 });
        watch.unsubscribe();
        const downloading = `Downloading s3://backups/prod-1/${newest}`;
        expect(shown).toContainEqual({ label: downloading, bytes: 0, total: encrypted.length });
        expect(shown).toContainEqual({ label: downloading, bytes: encrypted.length, total: encrypted.length });
        expect(shown.at(-1)?.label).toMatch(/^Verifying backup-prod-1-.*\.snap$/);
        expect(actor.getSnapshot().context.transfer).toBeNull();
        const { snapshot, steps, warnings } = actor.getSnapshot().context;
        expect(snapshot).toMatchObject({ source: `s3://backups/prod-1/${newest}`, sha256: sha256(SNAPSHOT) });
        expect(steps.find((r) => r.name === 'snapshot')?.result).toContain(
          `backup s3://backups/prod-1/${newest}: revision 4,`,
        );
        // the survivor's etcd answers with newer data, and the backup's own age is said
        expect(warnings.join(' ')).toMatch(/holds newer data than this snapshot/);
        expect(warnings.join(' ')).toMatch(/unknown whether the snapshot \(revision 4, taken 3 h ago\)/);
      } finally {
        session.stop();
      }
    }, 60_000);
  },
);
