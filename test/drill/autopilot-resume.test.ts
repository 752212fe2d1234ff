/**
 * A resumed autopilot drill whose saved state already waits at a prompt: the crash came after the machine asked
 * (state.json is written before anything else happens) but before the autopilot answered. The autopilot must answer
 * the prompt that is open when it starts, not only prompts that open later — otherwise the drill sits until its time
 * limit. Deterministic: the first session is stopped at the prompt on purpose instead of killed at a random moment.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { waitFor, type Snapshot } from 'xstate';
import { startSimulator } from '../../src/sim/index.js';
import type { SimCluster } from '../../src/sim/types.js';
import { createIncidentDir, type IncidentPaths } from '../../src/journal/incident.js';
import { Journal } from '../../src/journal/journal.js';
import { loadTalosconfig } from '../../src/talos/talosconfig.js';
import { createTalosClient } from '../../src/talos/client.js';
import type { TalosClient } from '../../src/talos/types.js';
import { connectMaintenance } from '../../src/talos/maintenance.js';
import { driveAutopilot, startSession, type Session } from '../../src/commands/recovery-session.js';
import { timingFor } from '../../src/commands/recovery-run.js';
import { nextAddressBase, SPEED } from './harness.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

interface Ground {
  sim: SimCluster;
  client: TalosClient;
  incident: IncidentPaths;
  journal: Journal;
}

async function ground(): Promise<Ground> {
  const dir = join(mkdtempSync(join(tmpdir(), 'talos-dr-pilot-')), 'incident');
  const incident = createIncidentDir(dir);
  const sim = await startSimulator({
    scenario: 'lost-quorum',
    dir: join(dir, 'sim'),
    port: 0,
    addressBase: nextAddressBase(),
    speed: SPEED,
    talosconfigPath: join(dir, 'sim', 'talosconfig'),
  });
  await sim.writeGiven(dir);
  const client = createTalosClient(loadTalosconfig({ talosconfig: sim.talosconfigPath }, {}), {
    defaultTimeoutMs: 2000,
    connectTimeoutMs: 2000,
  });
  const journal = new Journal(dir);
  cleanups.push(async () => {
    client.close();
    journal.close();
    await sim.stop();
  });
  return { sim, client, incident, journal };
}

function session(g: Ground, restore?: Snapshot<unknown>): Session {
  const s = startSession({
    deps: {
      client: g.client,
      connectMaintenance: (node) => connectMaintenance(`${node}:${g.sim.port}`, { connectTimeoutMs: 2000 }),
      incident: g.incident,
      journal: g.journal,
      operator: 'autopilot',
      statusTimeoutMs: 1000,
    },
    input: {
      nodes: g.sim.nodes,
      operator: 'autopilot',
      mode: 'drill',
      timing: timingFor(SPEED),
      givenSnapshots: g.sim.scenario.given
        .filter((x) => x.kind === 'snapshot')
        .map((x) => join(g.incident.dir, x.path)),
    },
    envelope: { mode: 'drill', nodes: g.sim.nodes },
    ...(restore ? { restore } : {}),
  });
  cleanups.push(() => s.stop());
  return s;
}

describe('autopilot on a resumed drill', () => {
  it('answers the prompt that is already open when it starts, and the drill recovers', async () => {
    const g = await ground();
    const first = session(g);
    const confirm = await waitFor(first.actor, (s) => s.context.prompt?.id === 'confirm-nodes', { timeout: 20_000 });
    first.actor.send(confirm.context.prompt!.recommended!);
    const asking = await waitFor(first.actor, (s) => s.context.prompt?.id === 'snapshot-source', {
      timeout: 20_000,
    });
    expect(asking.context.prompt?.recommended).not.toBeNull();
    const saved = first.actor.getPersistedSnapshot();
    first.stop();

    const second = session(g, saved);
    expect(second.actor.getSnapshot().context.prompt?.id).toBe('snapshot-source');
    const lines: string[] = [];
    const stopPilot = driveAutopilot(second, g.journal, {
      print: (l) => lines.push(l),
      timeLimitMs: 60_000,
      repeatPauseMs: timingFor(SPEED).pollMs,
    });
    try {
      const context = await second.settled;
      expect(context.outcome).toBe('recovered');
    } finally {
      stopPilot();
    }
    expect(lines.some((l) => l.startsWith('step 3/9 snapshot:'))).toBe(true);
  }, 90_000);
});
