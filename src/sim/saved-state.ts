/**
 * A drill's saved simulator state (talos-dr-sim-state/1): its format, reading it back, rebuilding the cluster from it
 * and continuing the steps that were in flight when it was saved. Writing it is Simulator.saveState (cluster.ts).
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { caFromJson, type PemPair } from '../talos/pki.js';
import { Simulator } from './cluster.js';
import { ModelEtcd } from './model-etcd.js';
import { fromSavedHistory, type EtcdMemberInfo, type SavedEtcd, type SavedHistoryEvent } from './etcd-backend.js';
import { FaultInjector } from './faults.js';
import { SimNode } from './node.js';
import type { NodeState } from './node-state.js';
import type { Scenario } from './scenario.js';
import { SimStartError } from './start-error.js';
import { etcdVersionOf } from './versions.js';

export interface SavedState {
  format: 'talos-dr-sim-state/1';
  scenario: Scenario;
  addressBase: string;
  port: number;
  speed: number;
  ca: string;
  client: PemPair;
  serverCerts: Record<string, PemPair>;
  maintenanceCerts: Record<string, PemPair>;
  originalConfigs: Record<string, string>;
  fullHistory: SavedHistoryEvent[];
  originalMembers: EtcdMemberInfo[];
  lastWriteRevision: number;
  restored: { node: string; revision: number; snapshotKeys: [string, string][] } | null;
  faultsRemaining: number[];
  /** upload: an uploaded snapshot waiting on the node (/var/lib/etcd.snapshot), base64, so a resumed drill keeps it. */
  nodes: { state: NodeState; etcd: SavedEtcd; calls: SimNode['calls']; upload?: string }[];
}

export async function buildRestored(saved: SavedState, dir: string, speed: number | undefined): Promise<Simulator> {
  if (saved.nodes.some((n) => n.etcd.real)) {
    throw new SimStartError(
      'This drill ran on real etcd processes, which ended with it, so it cannot be resumed; start it afresh with --etcd real.',
    );
  }
  const ca = await caFromJson(saved.ca);
  const pki = { ca, client: saved.client, serverCerts: saved.serverCerts, maintenanceCerts: saved.maintenanceCerts };
  const sim = new Simulator(
    saved.scenario,
    dir,
    saved.addressBase,
    speed ?? saved.speed,
    pki,
    saved.originalConfigs,
    fromSavedHistory(saved.fullHistory),
    saved.originalMembers,
    saved.lastWriteRevision,
    saved.restored,
  );
  const nodes: SimNode[] = [];
  for (const [i, entry] of saved.nodes.entries()) {
    const root = join(dir, 'nodes', entry.state.address);
    const etcd = new ModelEtcd(join(root, 'var', 'lib', 'etcd'), etcdVersionOf(saved.scenario.talosVersion));
    await etcd.load(entry.etcd);
    const node = new SimNode(i, entry.state, etcd, root, sim);
    Object.assign(node.calls, entry.calls);
    if (entry.upload) {
      await mkdir(dirname(node.uploadPath), { recursive: true });
      await writeFile(node.uploadPath, Buffer.from(entry.upload, 'base64'), { mode: 0o600 });
    }
    nodes.push(node);
  }
  sim.attach(nodes, new FaultInjector(saved.scenario.faults, sim.clock, saved.faultsRemaining));
  return sim;
}

/** Steps that were in flight when the state was saved continue from where they stood. */
export async function resumeInFlight(sim: Simulator): Promise<void> {
  for (const node of sim.nodesList) {
    if (node.state.mode === 'resetting') await node.finishReset();
    else if (node.state.mode === 'running' && node.state.pendingReset) node.beginReset();
    else if (node.state.mode === 'rebooting') await node.boot();
    else if (node.state.mode === 'running' && node.isControlPlane) {
      const etcdState = node.etcdState;
      const crashed = node.state.etcdCrashes || Boolean(node.state.etcdRemoved);
      if (crashed) node.resumeCrashLoop();
      else if (etcdState === 'Running') node.schedulePromotion();
      if (
        !crashed &&
        (etcdState === 'Starting' || etcdState === 'Preparing' || (etcdState === 'Waiting' && node.state.timeSynced))
      ) {
        node.startEtcdService();
      }
    }
    // a boot, or a kubelet restart (step 10), that the saved state cut short
    if (node.state.mode === 'running') {
      node.continueBoot();
      node.continueRestart('kubelet');
    }
  }
  sim.kick();
}

export async function loadSavedState(path: string): Promise<SavedState> {
  let saved: SavedState;
  try {
    saved = JSON.parse(await readFile(path, 'utf8')) as SavedState;
  } catch {
    throw new SimStartError(
      `Cannot read the saved simulator state ${path}; it is missing or damaged, so start the drill afresh.`,
    );
  }
  if (saved.format !== 'talos-dr-sim-state/1') {
    throw new SimStartError(`${path} is not a talos-dr simulator state; start the drill afresh.`);
  }
  return saved;
}
