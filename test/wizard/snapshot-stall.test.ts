/**
 * Step 3's snapshot effect against the simulated cluster whose etcd serves nowhere (talos#14212: EtcdSnapshot then
 * stays open with no byte): the first-byte watchdog stops the call, and the failure is not one to retry unchanged, so
 * the machine goes back to the choice with the next sources (a raw copy, another member) instead of asking again.
 */
import { afterEach, expect, test } from 'vitest';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSimulator } from '../../src/sim/index.js';
import type { SimCluster } from '../../src/sim/types.js';
import { createTalosClient, type GrpcTalosClient } from '../../src/talos/client.js';
import { loadTalosconfig } from '../../src/talos/talosconfig.js';
import { createIncidentDir } from '../../src/journal/incident.js';
import { Journal, readJournal } from '../../src/journal/journal.js';
import { takeSnapshot } from '../../src/wizard/snapshot.js';
import { ActionError } from '../../src/wizard/ledger.js';

let sim: SimCluster | null = null;
let client: GrpcTalosClient | null = null;
let dir = '';

afterEach(async () => {
  client?.close();
  await sim?.stop();
  client = null;
  sim = null;
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('a snapshot that never streams a byte fails at once as not worth retrying, saying why and what comes next', async () => {
  dir = mkdtempSync(join(tmpdir(), 'talos-dr-stall-'));
  const base = `127.${1 + Math.floor(Math.random() * 250)}.${1 + Math.floor(Math.random() * 250)}.2`;
  sim = await startSimulator({
    scenario: 'etcd-down-raw-copy',
    dir: join(dir, 'sim'),
    port: 0,
    addressBase: base,
    speed: 1000,
  });
  client = createTalosClient(loadTalosconfig({ talosconfig: sim.talosconfigPath }, {}), {
    snapshotFirstByteTimeoutMs: 400,
  });
  const incident = createIncidentDir(join(dir, 'incident'));
  const node = sim.nodes[0]!;
  const deps = {
    client,
    connectMaintenance: null,
    incident,
    journal: new Journal(incident.dir),
    operator: 'test',
    statusTimeoutMs: 1000,
  };
  const option = { id: `api:${node}`, method: 'api' as const, node, file: null, label: 'snapshot', failed: null };
  const error = await takeSnapshot(deps, option, `snapshot:api:${node}:0`).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(ActionError);
  expect((error as ActionError).retryable).toBe(false);
  expect((error as Error).message).toMatch(
    /sent no byte of the etcd snapshot in 0\.4 s, so the call was stopped: its etcd is probably not serving; take a raw copy of its database or a snapshot from another member instead/,
  );
  expect(readdirSync(incident.snapshots)).toEqual([]);
  // the journal says why the call ended
  const after = readJournal(incident.dir).find((r) => r.kind === 'action' && r.phase === 'after');
  expect(JSON.stringify(after)).toMatch(/probably not serving/);
});
