/**
 * The simulated Talos cluster's public API: what `talos-dr sim`, `talos-dr drill` and the test suites code against.
 * The simulator knows nothing of the wizard; the wizard knows the simulator only through these types.
 */

export type ScenarioProcedure = 'full-recovery' | 'replace-member' | 'nospace' | 'wait' | 'none';

/** The right outcome of a scenario (PRODUCT.md §4), for a drill's score and the tests. */
export type ExpectedOutcome =
  'recovered' | 'member-replaced' | 'nospace-cleared' | 'stopped-quorum-intact' | 'nothing-to-do' | 'failed';

/** A file the scenario hands the trainee, relative to the incident folder (always under `given/`). */
export interface GivenFile {
  /** e.g. `given/configs/127.0.0.2.yaml` or `given/snapshots/etcd-2h-old.snapshot` */
  path: string;
  kind: 'machine-config' | 'snapshot';
  /** For machine configs: the node address the backup belongs to. */
  node?: string;
  description: string;
}

export interface ScenarioInfo {
  name: string;
  /** One or two sentences: what happened. */
  description: string;
  /** What a trainee should achieve; also the drill's pass mark. */
  expectedOutcome: ExpectedOutcome;
  /** The procedure a trainer expects, one short line (e.g. "snapshot from the survivor, wipe all, bootstrap"). */
  rightAnswer: string;
  /**
   * Which procedure is right: full-recovery (snapshot, wipe, bootstrap), replace-member (quorum holds: remove and
   * replace the broken member), nospace (defragment, disarm), wait (a node comes back by itself), none.
   */
  procedure: ScenarioProcedure;
  /** The drill's time limit; autopilot ends a wait that cannot finish at this limit. */
  timeLimitSec: number;
  /** A planned swap's machine to take out (a control-plane hostname); absent in every other scenario. */
  retire?: string;
  /** Number of simulated nodes (control-plane and workers). */
  nodeCount: number;
  /** Talos behaviour the nodes have ('1.11' default, '1.14' adds a dedicated ETCD partition). */
  talosVersion: string;
  given: GivenFile[];
}

export interface StartOptions {
  /** A shipped scenario name (`scenarios/<name>.yaml`) or a path to a user-written YAML scenario. */
  scenario: string;
  /** Where node data (bbolt files, state) go. Must exist or be creatable. `talosconfig` is written here. */
  dir: string;
  /** TCP port every node listens on; 0 picks a free one (the same for all nodes). Default 50000. */
  port?: number;
  /** First node address; the others count up from it (127.0.0.2, .3, …). Default 127.0.0.2. Loopback only. */
  addressBase?: string;
  /** Time compression: every simulated delay is divided by this. Tests use large values (e.g. 100). Default 1. */
  speed?: number;
  /** Restore a cluster saved with saveState (sim-state.json) instead of building the scenario's starting state. */
  restoreFrom?: string;
  /** Where to write the talosconfig (default `<dir>/talosconfig`). An existing file is refused. */
  talosconfigPath?: string;
  /** Each node's etcd: the built-in model (default) or a real etcd member process (needs etcd and etcdctl). */
  etcd?: 'model' | 'real';
}

/**
 * Counters of destructive calls per node address (so resume tests can prove nothing was repeated). Every call the node
 * received counts, whether it was refused (e.g. AlreadyExists) or carried out.
 */
export interface DestructiveCalls {
  reset: Record<string, number>;
  bootstrap: Record<string, number>;
  apply: Record<string, number>;
  reboot: Record<string, number>;
  recover: Record<string, number>;
  /** EtcdRemoveMemberByID, counted on the node the call went to (not the member removed). */
  removeMember: Record<string, number>;
  leave: Record<string, number>;
  forfeitLeadership: Record<string, number>;
  defragment: Record<string, number>;
  alarmDisarm: Record<string, number>;
  serviceRestart: Record<string, number>;
}

/** For a drill's score: what data a recovery lost. */
export interface DataReport {
  /** Revision of the last write before the outage (the cluster's newest data). */
  lastWriteRevision: number;
  /** Revision the bootstrap node's etcd holds after recovery; null while nothing has been restored. */
  restoredRevision: number | null;
  /** lastWriteRevision - restoredRevision (0 when nothing is lost or nothing restored yet). */
  lostRevisions: number;
  /** After a recovery: the bootstrap node's keys equal the uploaded snapshot's keys. null before a recovery. */
  keysMatchSnapshot: boolean | null;
  /** Where the figures come from: the built-in model, or the real etcd members (revisions and keys they answered). */
  etcd?: 'model' | 'real';
}

/** A coarse view of one node, for a trainer's screen and the tests (the wizard must learn the same over the wire). */
export interface SimNodeView {
  address: string;
  hostname: string;
  machineType: 'init' | 'controlplane' | 'worker' | 'maintenance';
  /** Talos etcd service state (Running, Preparing, Waiting, Failed, Finished, …); null on a worker/maintenance node. */
  etcdState: string | null;
  reachable: boolean;
  /** Keys in the node's etcd (by key, live values only), null when the node has no etcd data. */
  etcdRevision: number | null;
  /** With `etcd: 'real'`: the node's etcd member's client URL on its loopback address (for etcdctl). */
  etcdClientUrl?: string;
}

export interface SimCluster {
  /** `ip:port` of every control-plane node (the talosconfig endpoints). */
  endpoints: string[];
  /** Control-plane node IPs (the talosconfig nodes). */
  nodes: string[];
  /** Every simulated node IP, workers included. */
  allNodes: string[];
  port: number;
  talosconfigPath: string;
  /** The talosconfig context name, always `talos-dr-sim`. */
  context: string;
  scenario: ScenarioInfo;
  /** The PEM of the CA the talosconfig trusts. */
  caPem: string;
  /** The SPKI fingerprint (base64 sha256) of each maintenance-mode node's self-signed cert, by address (added when a node enters maintenance). */
  maintenanceFingerprints: Record<string, string>;
  destructiveCalls(): DestructiveCalls;
  dataReport(): DataReport;
  view(): SimNodeView[];
  /**
   * Writes what the scenario hands the trainee into an incident folder: `given/configs/<ip>.yaml` (earlier
   * machine-config backups) and `given/snapshots/<name>` (an older snapshot file). Returns the paths written.
   * Existing files are left untouched (never overwritten).
   */
  writeGiven(incidentDir: string): Promise<string[]>;
  /**
   * One Kubernetes write through a member (the first serving one when no address is given), as the apiserver makes
   * it: refused with etcd's own text over the quota or under a NOSPACE alarm (and over the quota it raises the alarm).
   * For trainers and tests: the data are not changed.
   */
  etcdWrite(address?: string): Promise<EtcdWriteResult>;
  /** Saves the whole cluster (PKI, every node's state and etcd data, counters) to one JSON file, atomically. */
  saveState(path: string): Promise<void>;
  /** Stops every listener and timer; afterwards nothing is listening. Idempotent. */
  stop(): Promise<void>;
}

export type EtcdWriteResult = { ok: true } | { ok: false; error: string };

export const SIM_CONTEXT = 'talos-dr-sim';
export const DEFAULT_SIM_PORT = 50000;
export const DEFAULT_ADDRESS_BASE = '127.0.0.2';

/** Implemented in src/sim/start.ts; re-exported from src/sim/index.ts. */
export type StartSimulator = (opts: StartOptions) => Promise<SimCluster>;
/** Lists the shipped scenarios (scenarios/*.yaml), sorted by name. */
export type ListScenarios = () => ScenarioInfo[];
