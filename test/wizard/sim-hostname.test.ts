/**
 * The lost-quorum drill as the wizard first sees it: no member list answers (etcd has no leader, facts §2), yet the
 * HOST column names every node, because the simulator answers COSI HostnameStatuses network/hostname as a real node
 * does (siderolabs/talos: pkg/machinery/resources/network/hostname_status.go@v1.14.0-rc.1:17,25-28).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { loadClientFromFlags, type GrpcTalosClient } from '../../src/talos/client.js';
import { createIncidentDir } from '../../src/journal/incident.js';
import { Journal } from '../../src/journal/journal.js';
import { observeNodes } from '../../src/wizard/observe.js';
import { startBench, type Bench } from '../sim/helpers.js';

let bench: Bench;
let client: GrpcTalosClient;
let journal: Journal;
beforeAll(async () => {
  bench = await startBench('lost-quorum');
  client = loadClientFromFlags({ talosconfig: bench.sim.talosconfigPath }, {}).client;
});
afterAll(async () => {
  journal?.close();
  client?.close();
  await bench?.close();
});

it("names every node in the lost-quorum drill by the machine's own hostname, though no member list answers", async () => {
  const incident = createIncidentDir(join(mkdtempSync(join(tmpdir(), 'talos-dr-sim-host-')), 'incident'));
  journal = new Journal(incident.dir);
  const deps = { client, connectMaintenance: null, incident, journal, operator: 'tester', statusTimeoutMs: 1500 };
  const views = await observeNodes(deps, bench.sim.nodes);
  expect(views.map((v) => v.members)).toEqual(views.map(() => null));
  expect(views.map((v) => v.hostname)).toEqual(['cp-1', 'cp-2', 'cp-3']);
});
