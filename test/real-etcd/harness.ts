/**
 * Runs `talos-dr drill --autopilot --etcd real` in-process (the same startDrillSim and runDrill the command uses), but
 * keeps the simulator and its etcd members running afterwards so a test can ask the real members with etcdctl.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { onTestFinished } from 'vitest';
import { runDrill, startDrillSim } from '../../src/wizard/drill.js';
import { createIncidentDir } from '../../src/journal/incident.js';
import { Journal } from '../../src/journal/journal.js';
import { readState } from '../../src/journal/state.js';
import type { SimCluster } from '../../src/sim/types.js';
import type { RecoveryContext } from '../../machines/recovery.js';

const run = promisify(execFile);

let base = 10 + Math.floor(Math.random() * 200);
/** A loopback range of its own for each run (127.N.M.2…), so runs never collide. */
export function nextAddressBase(): string {
  base = (base + 1) % 240;
  return `127.${base + 1}.${(process.pid % 200) + 30}.2`;
}

export interface RealDrill {
  code: number;
  lines: string[];
  dir: string;
  sim: SimCluster;
  context: RecoveryContext;
}

/** `beforeDrill` runs once the simulator is up and the given files are written (to damage something, say). */
export async function drillOnRealEtcd(
  scenario: string,
  opts: { speed?: number; beforeDrill?: (sim: SimCluster, dir: string) => void | Promise<void> } = {},
): Promise<RealDrill> {
  const speed = opts.speed ?? 50;
  const dir = join(mkdtempSync(join(tmpdir(), 'talos-dr-real-etcd-')), 'incident');
  const incident = createIncidentDir(dir);
  const addressBase = nextAddressBase();
  const starting = startDrillSim(dir, scenario, { addressBase, speed, restore: false, etcd: 'real' });
  // The members end with the test, whatever ends it: a test that times out (even while the members are still being
  // seeded) never reaches its own stop, and vitest ends its worker without the 'exit' event the fleet's last-resort
  // kill listens for, so etcd processes were left running.
  onTestFinished(async () => {
    const started = await starting.catch(() => null);
    await started?.sim.stop();
  }, 120_000);
  const { sim, save } = await starting;
  try {
    await sim.writeGiven(dir);
    await opts.beforeDrill?.(sim, dir);
    const journal = new Journal(dir);
    const lines: string[] = [];
    const code = await runDrill({
      operator: 'autopilot',
      print: (line) => lines.push(line),
      signal: new AbortController().signal,
      sim,
      save,
      incident,
      journal,
      scenario,
      speed,
      addressBase,
      realEtcd: true,
    });
    const state = readState(dir);
    if (!state.ok) throw new Error(state.reason);
    const context = (state.envelope.snapshot as { context: RecoveryContext }).context;
    return { code, lines, dir, sim, context };
  } catch (error) {
    await sim.stop();
    throw error;
  }
}

/** Runs Debian's etcdctl (API v3) and parses its JSON answer. */
export async function etcdctlJson<T>(...args: string[]): Promise<T> {
  const { stdout } = await run('etcdctl', [...args, '-w', 'json'], {
    env: { ...process.env, ETCDCTL_API: '3' },
    maxBuffer: 32 << 20,
  });
  return JSON.parse(stdout) as T;
}

/**
 * etcd member processes whose data directory lies under `dir` (found by their `--data-dir=` argument), started as
 * `etcd` from the PATH or by a path (TALOS_DR_ETCD_BIN_DIR's etcd 3.7).
 */
export async function processesMentioning(dir: string): Promise<number[]> {
  try {
    const { stdout } = await run('pgrep', ['-f', `^([^ ]*/)?etcd --name=[^ ]* --data-dir=${dir}/`]);
    return stdout
      .split('\n')
      .filter(Boolean)
      .map(Number)
      .filter((pid) => pid !== process.pid);
  } catch {
    return []; // pgrep exits 1 when nothing matches
  }
}
