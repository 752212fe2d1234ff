/**
 * Issue 16: the newest backup's age at the assessment. A backup job that silently stopped is a known failure
 * (siderolabs/talos-backup#46, #54): the assessment ages every backup location the user gave, journals each, and warns
 * on screen about a stale or missing one, before anything is decided. The effect runs over the real wire (the project's
 * client against a loopback gRPC server) on real files; the machine's warning is checked on the in-memory cluster.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActor, fromPromise, toPromise, waitFor } from 'xstate';
import { createTalosClient } from '../../src/talos/client.js';
import { loadTalosconfig } from '../../src/talos/talosconfig.js';
import type { TalosClient } from '../../src/talos/types.js';
import { createIncidentDir } from '../../src/journal/incident.js';
import { Journal, readJournal } from '../../src/journal/journal.js';
import { recoveryActors } from '../../src/wizard/actors.js';
import { backupLocations } from '../../machines/recovery/steps/2-assess.js';
import { fakeCluster, NODES } from '../components/fake-cluster.js';
import type { AssessOutput, NodeView, RecoveryEvent } from '../../machines/recovery.js';
import { makePki, startFakeTalos, writeTalosconfig, type FakeTalos } from '../talos/fake-talos.js';

let talos: FakeTalos;
let client: TalosClient;
let work: string;

beforeAll(async () => {
  const pki = await makePki();
  talos = await startFakeTalos(pki, {});
  client = createTalosClient(loadTalosconfig({ talosconfig: writeTalosconfig(pki, [talos.address]) }, {}));
  work = mkdtempSync(join(tmpdir(), 'talos-dr-backup-age-'));
});

afterAll(async () => {
  client?.close();
  await talos?.stop();
  rmSync(work, { recursive: true, force: true });
});

/** A talos-backup file named for `takenAt`, as talos-backup names them (<cluster>-<RFC3339>.snap.zst.age). */
function backupFile(takenAt: Date): string {
  const file = join(work, `prod-${takenAt.toISOString().replace(/\.\d{3}Z$/, 'Z')}.snap.zst.age`);
  writeFileSync(file, 'not read: only its name is');
  return file;
}

describe('the backup age at the assessment', () => {
  it('ages each backup location given, journals each, and marks a stale one as worrying', async () => {
    const incident = createIncidentDir(join(work, 'incident'));
    const journal = new Journal(incident.dir);
    const deps = { client, connectMaintenance: null, incident, journal, operator: 'tester', statusTimeoutMs: 1000 };
    const stale = backupFile(new Date(Date.now() - (9 * 24 + 6) * 3600_000));
    const fresh = backupFile(new Date(Date.now() - 10 * 60_000));
    const missing = join(work, 'prod-2026-01-01T00:00:00Z.snap.zst.age.gone');
    const assess = recoveryActors(deps, { pollMs: 20, nodeBackTimeoutMs: 1000 }).assess;
    const out = await toPromise(
      createActor(assess, { input: { nodes: ['10.5.0.2'], backups: [stale, fresh, missing] } }).start(),
    );
    expect(out.backupAges?.map((a) => [a.location, a.worrying])).toEqual([
      [stale, true],
      [fresh, false],
      [missing, true],
    ]);
    expect(out.backupAges?.[0]?.sentence).toMatch(/9 d \d+ h old/);
    const records = readJournal(incident.dir).filter((r) => r.what === 'backup age');
    expect(records.map((r) => r.kind)).toEqual(['warning', 'observation', 'warning']);
    journal.close();
  });

  it('only S3 locations and talos-backup files are aged, never a drill’s plain snapshot file', () => {
    expect(
      backupLocations(['s3://b/prod', '/x/prod-2026-11-01T00:00:00Z.snap.zst', '/x/a.snap.age', '/given/etcd.db']),
    ).toEqual(['s3://b/prod', '/x/prod-2026-11-01T00:00:00Z.snap.zst', '/x/a.snap.age']);
  });

  it('the wizard shows a worrying age as a warning while it assesses', async () => {
    const cluster = fakeCluster();
    const sentence = 's3://b/prod: the newest backup is 9 days old; the backup job may have stopped.';
    let given: string[] | undefined;
    const machine = cluster.machine.provide({
      actors: {
        assess: fromPromise<AssessOutput, { nodes: string[]; backups?: string[] }>(async ({ input }) => {
          given = input.backups;
          return {
            observations: NODES.map((n) => cluster.views.get(n) as NodeView),
            volumes: {},
            backupAges: [{ location: 's3://b/prod', sentence, worrying: true }],
          };
        }),
      },
    });
    const actor = createActor(machine, {
      input: { nodes: NODES, operator: 'a', mode: 'recover', givenSnapshots: ['s3://b/prod', '/given/etcd.db'] },
    }).start();
    // the questions before the assessment (which nodes) take their recommended answers
    actor.subscribe((x) => {
      if (x.context.prompt?.id === 'confirm-nodes') actor.send(x.context.prompt.recommended as RecoveryEvent);
    });
    const s = await waitFor(actor, (x) => x.context.warnings.length > 0, { timeout: 5000 });
    expect(s.context.warnings).toEqual([sentence]);
    expect(given).toEqual(['s3://b/prod']);
    actor.stop();
  });
});
