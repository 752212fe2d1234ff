/**
 * startSimulator: checks what was asked (addresses, folder, talosconfig, real etcd), builds the cluster afresh or from
 * a saved state, serves it and writes its talosconfig.
 */
import { constants, existsSync } from 'node:fs';
import { access, mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { buildFresh } from './fresh-cluster.js';
import { realEtcdMissing } from './real-etcd-tools.js';
import { buildRestored, loadSavedState, resumeInFlight } from './saved-state.js';
import { ipv4ToNumber, loadScenario, type Scenario } from './scenario.js';
import { SimStartError } from './start-error.js';
import { DEFAULT_ADDRESS_BASE, DEFAULT_SIM_PORT, type SimCluster, type StartOptions } from './types.js';

/** The highest address a node may have: 127.255.255.255 is the loopback network's broadcast address. */
const LAST_LOOPBACK = ipv4ToNumber('127.255.255.254') as number;

function validateAddressBase(base: string, count: number): void {
  const start = ipv4ToNumber(base);
  if (start === null || Math.floor(start / 2 ** 24) !== 127 || start % 256 === 0) {
    throw new SimStartError(
      `--address-base ${base} is not a loopback address like 127.0.0.2; the simulator only listens on 127.0.0.0/8.`,
      'usage',
    );
  }
  if (start + count - 1 > LAST_LOOPBACK) {
    throw new SimStartError(
      `--address-base ${base} leaves no room for ${count} nodes; pick a lower address, e.g. 127.0.0.2.`,
      'usage',
    );
  }
}

async function ensureWritableDir(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await access(dir, constants.W_OK);
  } catch {
    throw new SimStartError(`Cannot write to ${dir}; pick a folder you can write to with --dir.`);
  }
}

export async function startSimulator(opts: StartOptions): Promise<SimCluster> {
  const dir = resolve(opts.dir);
  const speed = opts.speed ?? 1;
  const saved = opts.restoreFrom ? await loadSavedState(opts.restoreFrom) : null;
  const def = saved ? saved.scenario : loadScenarioOrExplain(opts.scenario);
  // A restored cluster keeps its addresses: its certificates and configurations name them.
  const base = saved ? saved.addressBase : (opts.addressBase ?? DEFAULT_ADDRESS_BASE);
  validateAddressBase(base, def.nodes.length);
  await ensureWritableDir(dir);
  const talosconfigPath = resolve(opts.talosconfigPath ?? join(dir, 'talosconfig'));
  // A resumed drill finds the talosconfig this simulator wrote before (same CA and client): it is kept as it is.
  const reuseTalosconfig = saved !== null && existsSync(talosconfigPath);
  if (!reuseTalosconfig && existsSync(talosconfigPath)) {
    throw new SimStartError(
      `${talosconfigPath} already exists; the simulator never overwrites a talosconfig, so pick another --dir or remove it.`,
      'usage',
    );
  }
  if (opts.etcd === 'real' && !saved) {
    // the quota and the alarms are the built-in model's: real etcd processes would start without them
    if (def.alarms.length > 0 || def.etcdQuotaBytes !== null) {
      throw new SimStartError(
        `Scenario ${def.name} sets an etcd quota or alarms, which only the built-in etcd model plays; start it without --etcd real.`,
        'usage',
      );
    }
    const missing = realEtcdMissing();
    if (missing) throw new SimStartError(missing);
  }
  const sim = saved
    ? await buildRestored(saved, dir, opts.speed)
    : await buildFresh(def, dir, base, speed, opts.etcd ?? 'model');
  await sim.listen(opts.port ?? (saved ? saved.port : DEFAULT_SIM_PORT));
  try {
    if (reuseTalosconfig) sim.talosconfigPath = talosconfigPath;
    else await sim.writeTalosconfig(talosconfigPath);
  } catch (error) {
    await sim.stop();
    throw error;
  }
  if (saved) {
    await resumeInFlight(sim);
    sim.resumeClocks();
  } else {
    // "Unreachable for a while" counts from the moment the cluster serves.
    sim.startFaultClock();
    sim.kick();
  }
  return sim;
}

function loadScenarioOrExplain(name: string): Scenario {
  try {
    return loadScenario(name);
  } catch (error) {
    throw new SimStartError((error as Error).message, 'usage');
  }
}
