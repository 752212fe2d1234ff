/**
 * The simulated cluster: builds a scenario's nodes (or restores a saved drill), decides quorum and membership across
 * members, serves them on the wire, writes the talosconfig and the trainee's `given/` files, and reports what data a
 * recovery lost.
 */
import { randomBytes } from 'node:crypto';
import { constants, existsSync } from 'node:fs';
import { access, mkdir, readFile, utimes, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import writeFileAtomic from 'write-file-atomic';
import { readKeyBucket } from '../etcd/keys.js';
import { buildEtcdSnapshot, type HistoryEvent } from '../etcd/writer.js';
import {
  caFromJson,
  caToJson,
  generateCa,
  issueClientCert,
  issueServerCert,
  spkiFingerprint,
  talosconfigYaml,
  type CertificateAuthority,
  type PemPair,
} from '../talos/pki.js';
import type { ClusterView } from './api.js';
import { SimClock } from './clock.js';
import {
  fromSavedHistory,
  memberFor,
  peerUrl,
  ModelEtcd,
  randomMemberId,
  toSavedHistory,
  type EtcdAlarm,
  type EtcdMemberInfo,
  type SavedEtcd,
  type SavedHistoryEvent,
} from './etcd-backend.js';
import { FaultInjector } from './faults.js';
import { freePortOn, RealEtcd, RealEtcdFleet, seedRealCluster, type RealFate } from './real-etcd.js';
import { realEtcdMissing } from './real-etcd-tools.js';
import { generateClusterSecrets, machineConfigYaml } from './machine-config.js';
import {
  ETCD_UNHEALTHY,
  etcdFirstWaitingText,
  SimNode,
  type ClusterHooks,
  type NodeState,
  type ServiceRecord,
} from './node.js';
import {
  ETCD_DEFAULT_QUOTA_BYTES,
  ipv4ToNumber,
  loadScenario,
  nodeAddress,
  scenarioInfo,
  type Scenario,
  type ScenarioNode,
} from './scenario.js';
import { etcdVersionOf } from './versions.js';
import { SimWire } from './server.js';
import {
  DEFAULT_ADDRESS_BASE,
  DEFAULT_SIM_PORT,
  SIM_CONTEXT,
  type DataReport,
  type DestructiveCalls,
  type EtcdWriteResult,
  type SimCluster,
  type SimNodeView,
  type StartOptions,
} from './types.js';

/** A simulator start that cannot go ahead: the message is the one sentence the user sees. */
export class SimStartError extends Error {
  constructor(
    message: string,
    readonly kind: 'usage' | 'failure' = 'failure',
  ) {
    super(message);
  }
}

interface SavedState {
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

const KINDS = ['pods', 'services/specs', 'configmaps', 'secrets', 'deployments', 'leases'];
const NAMESPACES = ['default', 'kube-system', 'monitoring', 'payments'];

/** Kubernetes-like history: creates, a few updates and deletes, one change per revision (starting at 2). */
function generateHistory(keys: number, valueBytes: number): HistoryEvent[] {
  const history: HistoryEvent[] = [];
  const versions = new Map<string, { created: number; version: number }>();
  let revision = 1;
  const put = (key: string): void => {
    revision++;
    const prior = versions.get(key);
    const state = prior ? { created: prior.created, version: prior.version + 1 } : { created: revision, version: 1 };
    versions.set(key, state);
    const body = JSON.stringify({ kind: key.split('/')[2], name: key.split('/').pop(), rev: revision });
    const value = Buffer.alloc(Math.max(valueBytes, body.length), ' ');
    value.write(body);
    history.push({ kind: 'put', revision, key, value, createRevision: state.created, version: state.version });
  };
  const names: string[] = [];
  for (let i = 0; i < keys; i++) {
    const kind = KINDS[i % KINDS.length] ?? 'pods';
    const ns = NAMESPACES[Math.floor(i / KINDS.length) % NAMESPACES.length] ?? 'default';
    const name = `/registry/${kind}/${ns}/app-${String(i).padStart(4, '0')}`;
    names.push(name);
    put(name);
  }
  // Some churn, as a live cluster has: leases renewed, a few objects deleted.
  names.filter((n) => n.includes('/leases/')).forEach(put);
  for (const name of names.filter((_, i) => i % 17 === 5)) {
    revision++;
    history.push({ kind: 'delete', revision, key: name });
    versions.delete(name);
  }
  return history;
}

const lastRevision = (h: readonly HistoryEvent[]): number => h[h.length - 1]?.revision ?? 0;

/** How often the simulated kube-apiservers write (lease renewals come every few seconds on a live cluster). */
const API_SERVER_WRITE_MS = 5_000;

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

function etcdServiceHistory(
  condition: ScenarioNode['etcd'],
  timeSync: boolean,
  now: number,
  talosVersion: string,
): ServiceRecord {
  const events: ServiceRecord['events'] = [];
  const at = (msg: string, state: string, ago: number): void => {
    events.push({ msg, state, ts: now - ago * 1000 });
  };
  at('Starting service', 'Starting', 86_400);
  at(etcdFirstWaitingText(talosVersion), 'Waiting', 86_399);
  if (!timeSync) {
    at('Waiting for time sync', 'Waiting', 86_398);
  } else if (condition === 'wiped') {
    at('Running pre state', 'Preparing', 1_200);
  } else {
    at('Running pre state', 'Preparing', 86_396);
    at('Creating service runner', 'Preparing', 86_395);
    at(`Started task etcd (PID ${2000 + Math.floor(Math.random() * 6000)}) for container etcd`, 'Running', 86_394);
    at('Health check successful', 'Running', 86_380);
    if (condition === 'no-quorum' || condition === 'not-serving')
      at(`Health check failed: ${ETCD_UNHEALTHY}`, 'Running', 600);
    if (condition === 'crashloop') {
      // the restart runner's loop: the task starts and exits again every 5 s (node.ts crashLoop)
      for (const ago of [10, 5, 0]) {
        if (ago < 10)
          at(`Started task etcd (PID ${2000 + Math.floor(Math.random() * 6000)}) for container etcd`, 'Running', ago);
        at('Error running Containerd(etcd), going to restart forever: task "etcd" failed: exit code 2', 'Waiting', ago);
      }
    }
    if (condition === 'stopped') at('Service finished successfully', 'Finished', 900);
  }
  const last = events[events.length - 1];
  const healthy = last?.state === 'Running' && condition === 'healthy';
  const lastChange = events.filter((e) => e.msg.startsWith('Health')).at(-1)?.ts ?? now;
  const health =
    last?.state === 'Running'
      ? { unknown: false, healthy, lastMessage: healthy ? '' : ETCD_UNHEALTHY, lastChange }
      : condition === 'crashloop'
        ? { unknown: false, healthy: false, lastMessage: 'service not running', lastChange: now }
        : { unknown: true, healthy: false, lastMessage: '', lastChange: -62135596800000 };
  return { id: 'etcd', state: last?.state ?? 'Waiting', events, health };
}

class Simulator implements SimCluster, ClusterView, ClusterHooks {
  readonly context = SIM_CONTEXT;
  readonly clock: SimClock;
  readonly nodesList: SimNode[] = [];
  private wire!: SimWire;
  private faultInjector!: FaultInjector;
  private stopped = false;
  private kicking = false;
  private kickAgain = false;
  /** With `etcd: 'real'`: the etcd processes of this simulator, and the given snapshot etcd saved while seeding. */
  fleet: RealEtcdFleet | null = null;
  realGivenSnapshot: string | null = null;
  endpoints: string[] = [];
  nodes: string[] = [];
  allNodes: string[] = [];
  port = 0;
  talosconfigPath = '';
  caPem = '';
  maintenanceFingerprints: Record<string, string> = {};
  scenario;

  constructor(
    readonly def: Scenario,
    readonly dir: string,
    readonly addressBase: string,
    speed: number,
    readonly pki: {
      ca: CertificateAuthority;
      client: PemPair;
      serverCerts: Record<string, PemPair>;
      maintenanceCerts: Record<string, PemPair>;
    },
    readonly originalConfigs: Record<string, string>,
    readonly fullHistory: HistoryEvent[],
    readonly originalMembers: EtcdMemberInfo[],
    readonly lastWriteRevision: number,
    private restored: SavedState['restored'],
  ) {
    this.clock = new SimClock(speed);
    this.scenario = scenarioInfo(def, addressBase);
    this.caPem = pki.ca.certPem;
  }

  get timing(): Scenario['timing'] {
    return this.def.timing;
  }

  // ---- quorum and membership ----

  /**
   * The membership as the member with the highest raft index sees it (the first such in node order). One pass with
   * one status() per node: this runs several times per RPC and per node in kick(), and a sort with status() in its
   * comparator was a large part of a 200-node simulator's time (bench/fanout.mjs).
   */
  private clusterMembers(clusterId: string): EtcdMemberInfo[] {
    let best: SimNode | null = null;
    let bestIndex = -Infinity;
    for (const node of this.nodesList) {
      if (node.etcd.clusterId() !== clusterId) continue;
      const index = node.etcd.status().raftIndex;
      if (index > bestIndex) {
        best = node;
        bestIndex = index;
      }
    }
    return best ? best.etcd.members() : [];
  }

  /** The running, reachable members of a cluster (its voters) and, when more than half of its members, quorum. */
  private quorumState(clusterId: string | null): { voters: SimNode[]; quorum: boolean } {
    if (!clusterId) return { voters: [], quorum: false };
    // learners do not vote (etcd raft): quorum is a majority of the voting members
    const members = this.clusterMembers(clusterId).filter((m) => !m.isLearner);
    const ids = new Set(members.map((m) => m.id));
    const voters = this.nodesList.filter(
      (n) =>
        n.etcd.clusterId() === clusterId &&
        n.state.mode === 'running' &&
        n.etcd.isRunning() &&
        n.reachable &&
        ids.has(n.etcd.memberId() ?? ''),
    );
    return { voters, quorum: members.length > 0 && voters.length > members.length / 2 };
  }

  private clusterHasQuorum(clusterId: string | null): boolean {
    return this.quorumState(clusterId).quorum;
  }

  hasQuorum(node: SimNode): boolean {
    return this.clusterHasQuorum(node.etcd.clusterId());
  }

  leaderId(node: SimNode): string | null {
    const { voters, quorum } = this.quorumState(node.etcd.clusterId());
    if (!quorum) return null;
    // a leader that was moved keeps leading while it is a voter; otherwise the first voter leads (a new election)
    const moved = this.movedLeader.get(node.etcd.clusterId() ?? '');
    if (moved && voters.some((v) => v.etcd.memberId() === moved)) return moved;
    return voters[0]?.etcd.memberId() ?? null;
  }

  discoveredMembers(): SimNode[] {
    return this.nodesList.filter((n) => n.state.config !== null && n.state.type !== null);
  }

  /** Leaders moved by MoveLeader (EtcdForfeitLeadership), by cluster id. */
  private readonly movedLeader = new Map<string, string>();

  /** etcd's MoveLeader: leadership goes to the first other voter; its member, or null when there is none. */
  moveLeader(node: SimNode): EtcdMemberInfo | null {
    const clusterId = node.etcd.clusterId();
    const { voters } = this.quorumState(clusterId);
    const next = voters.find((v) => v !== node && v.etcd.memberId());
    const nextId = next?.etcd.memberId();
    if (!clusterId || !nextId) return null;
    this.movedLeader.set(clusterId, nextId);
    return node.etcd.members().find((m) => m.id === nextId) ?? null;
  }

  quorumMember(node: SimNode): SimNode | null {
    const own = node.etcd.clusterId();
    const ids = own
      ? [own]
      : [...new Set(this.nodesList.map((n) => n.etcd.clusterId()).filter((c): c is string => c !== null))];
    for (const id of ids) {
      const { voters, quorum } = this.quorumState(id);
      if (!quorum) continue;
      const member = voters.find((n) => n.etcdServing);
      if (member) return member;
    }
    return null;
  }

  joinSource(joiner: SimNode): SimNode | null {
    return this.quorumMember(joiner);
  }

  /** The node whose learner is not promoted yet: etcd allows one learner at a time. */
  private learner: SimNode | null = null;

  acquireJoin(node: SimNode): boolean {
    if (this.learner && this.learner !== node) return false;
    // a learner of another machine still listed (never started, or not promoted yet): etcd refuses a second one
    // ("too many learner members in cluster", etcd-io/etcd api/v3rpc/rpctypes/error.go@v3.6.14:49)
    // (the built-in model's membership; real members answer for themselves, with their own peer ports)
    const source = this.fleet ? null : this.quorumMember(node);
    const own = peerUrl(node.address);
    if (source?.etcd.members().some((m) => m.isLearner && !m.peerUrls.includes(own))) return false;
    this.learner = node;
    return true;
  }

  /**
   * MemberAddAsLearner as Talos's etcd service sends it (siderolabs/talos
   * internal/app/machined/pkg/system/services/etcd.go@v1.14.0-rc.1:280-333): a member with the joiner's hostname is
   * removed first; a learner with the joiner's peer URL and no name is the joiner's own earlier try, reused; else a
   * new learner with no name and no client URLs (they come when its etcd starts) joins the membership.
   */
  async addLearner(joiner: SimNode, source: SimNode): Promise<string> {
    const url = peerUrl(joiner.address);
    const members = source.etcd.members();
    for (const old of members.filter((m) => m.name === joiner.hostname)) this.markRemoved(old.id, joiner);
    const earlier = members.find((m) => m.isLearner && m.name === '' && m.peerUrls.includes(url));
    const id = earlier?.id ?? randomMemberId();
    await this.changeMembership(source.etcd.clusterId(), (list) => {
      const next = list.filter((m) => m.name !== joiner.hostname);
      if (next.some((m) => m.id === id)) return next;
      return [...next, { id, name: '', peerUrls: [url], clientUrls: [], isLearner: true }];
    });
    return id;
  }

  /**
   * One membership change, applied to every member's own list in the same tick, as raft applies one log entry on
   * each member. Copying one member's whole list to the others instead let a copy taken before a newer change land
   * after it (a learner's name lost under load, the member then promoted without a name).
   */
  async changeMembership(
    clusterId: string | null,
    change: (members: EtcdMemberInfo[]) => EtcdMemberInfo[],
  ): Promise<void> {
    if (!clusterId) return;
    await this.onEach(
      this.nodesList.filter((n) => n.etcd.clusterId() === clusterId),
      (n) => n.etcd.applyMembership(change(n.etcd.members())),
    );
  }

  /** The machine that held a removed member id (other than `except`) learns it was removed, if its etcd runs. */
  private markRemoved(memberId: string, except?: SimNode): void {
    for (const n of this.nodesList) {
      if (n !== except && n.etcd.memberId() === memberId) n.removedFromCluster();
    }
  }

  releaseJoin(node: SimNode): void {
    if (this.learner === node) this.learner = null;
    this.kick();
  }

  /**
   * Copies the source's membership to every other member. All members change in the same tick (each applyMembership
   * changes its member in memory before it writes the file): a replication awaited node by node let a slower, older
   * one overwrite a newer learner's entry on the nodes it had not reached yet.
   */
  async replicateMembership(source: SimNode): Promise<void> {
    const id = source.etcd.clusterId();
    const members = source.etcd.members();
    await this.onEach(
      this.nodesList.filter((node) => node !== source && id && node.etcd.clusterId() === id),
      (node) => node.etcd.applyMembership(members),
    );
  }

  /**
   * Runs a change on several members: the built-in model in one tick (see replicateMembership); real members one at a
   * time, as before, since each may call its etcd (a member removal through each would race).
   */
  private async onEach(nodes: SimNode[], change: (node: SimNode) => Promise<void> | undefined): Promise<void> {
    if (this.fleet) {
      for (const node of nodes) await change(node);
      return;
    }
    await Promise.all(nodes.map(change));
  }

  /**
   * etcd's MemberRemove through a member with quorum. Returns 'not-found' for an id etcd does not list, or etcd's
   * refusal under its strict reconfiguration check (on by default; etcd-io/etcd
   * server/etcdserver/server.go@v3.6.14:1613-1652 mayRemoveMember): removing a voting member must leave enough
   * started voting members for a quorum, and must not break the quorum of the members that are up now.
   */
  async removeMember(
    node: SimNode,
    memberId: string,
  ): Promise<'removed' | 'not-found' | 'unhealthy' | 'not-enough-started'> {
    const source = this.quorumMember(node);
    if (!source) return 'not-found';
    const members = source.etcd.members();
    const member = members.find((m) => m.id === memberId);
    if (!member) return 'not-found';
    const refusal = this.mayRemoveMember(source, members, member);
    if (refusal) return refusal;
    const id = source.etcd.clusterId();
    if (this.fleet) {
      // real members: each is told the list without the member (RealEtcd removes it through its etcd)
      const remaining = members.filter((m) => m.id !== memberId);
      await this.onEach(
        this.nodesList.filter((n) => id && n.etcd.clusterId() === id && n.etcd.memberId() !== memberId),
        (n) => n.etcd.applyMembership(remaining),
      );
    } else {
      await this.changeMembership(id, (list) => list.filter((m) => m.id !== memberId));
    }
    this.markRemoved(memberId);
    // a learner that goes frees the one learner slot
    if (this.learner && member.peerUrls.includes(peerUrl(this.learner.address))) this.learner = null;
    this.kick();
    return 'removed';
  }

  private mayRemoveMember(
    source: SimNode,
    members: EtcdMemberInfo[],
    member: EtcdMemberInfo,
  ): 'unhealthy' | 'not-enough-started' | null {
    if (member.isLearner) return null;
    const voting = members.filter((m) => !m.isLearner);
    // IsReadyToRemoveVotingMember: started (named) voting members left must reach the new quorum
    const startedAfter = voting.filter((m) => m.id !== member.id && m.name !== '').length;
    if (startedAfter < Math.floor((voting.length - 1) / 2) + 1) return 'not-enough-started';
    const { voters } = this.quorumState(source.etcd.clusterId());
    const active = new Set(voters.map((n) => n.etcd.memberId()));
    // a member that is down is not part of the active quorum: removing it is safe
    if (!active.has(member.id)) return null;
    if (active.size - 1 < 1 + Math.floor((voting.length - 1) / 2)) return 'unhealthy';
    return null;
  }

  // ---- alarms and the quota (NOSPACE) ----

  /** etcd's --quota-backend-bytes on the members (the scenario's, else etcd's default). */
  quotaBytes(): number {
    return this.def.etcdQuotaBytes ?? ETCD_DEFAULT_QUOTA_BYTES;
  }

  /** Writes an alarm change to every member of the cluster (etcd applies it through raft on each). */
  private async replicateAlarms(clusterId: string | null, alarms: EtcdAlarm[]): Promise<void> {
    if (!clusterId) return;
    await this.onEach(
      this.nodesList.filter((n) => n.etcd.clusterId() === clusterId),
      (n) => n.etcd.setAlarms?.(alarms),
    );
  }

  /** The cluster's alarms as the node's member holds them. */
  alarmsOf(node: SimNode): EtcdAlarm[] {
    return node.etcd.alarms?.() ?? [];
  }

  /**
   * AlarmDisarm with an empty member: etcd's client lists the alarms and disarms each (etcd-io/etcd
   * client/v3/maintenance.go@v3.6.14:161-189); the answer is the alarms disarmed. Needs quorum (through raft).
   */
  async disarmAlarms(node: SimNode): Promise<EtcdAlarm[]> {
    const alarms = this.alarmsOf(node);
    await this.replicateAlarms(node.etcd.clusterId(), []);
    this.kick(); // a health check that failed on CORRUPT passes again
    return alarms;
  }

  /**
   * One write of the kube-apiserver through a member (Talos points each apiserver at its local etcd). etcd checks the
   * quota first: over it, the member raises NOSPACE for itself through raft and refuses (etcd-io/etcd
   * server/etcdserver/api/v3rpc/quota.go@v3.6.14:37-50; server/storage/quota.go: Size + cost < quota); with a NOSPACE
   * alarm active every write is refused (apply/uber_applier.go@v3.6.14:101-109, the capped applier), reads still work.
   */
  async etcdWrite(address?: string): Promise<EtcdWriteResult> {
    const node = address ? this.resolve(address) : this.nodesList.find((n) => n.etcdServing && this.hasQuorum(n));
    if (!node || !node.etcdServing) return { ok: false, error: 'etcdserver: request timed out' };
    if (!this.hasQuorum(node)) return { ok: false, error: 'etcdserver: no leader' };
    const spaceExceeded = 'etcdserver: mvcc: database space exceeded';
    const alarms = this.alarmsOf(node);
    // a CORRUPT alarm refuses reads and writes alike (etcd-io/etcd server/etcdserver/apply/corrupt.go@v3.6.14:29-38)
    if (alarms.some((a) => a.alarm === 'CORRUPT')) return { ok: false, error: 'etcdserver: corrupt cluster' };
    if (alarms.some((a) => a.alarm === 'NOSPACE')) return { ok: false, error: spaceExceeded };
    const memberId = node.etcd.memberId();
    const writeCost = 512;
    if (memberId && node.etcd.status().dbSize + writeCost >= this.quotaBytes()) {
      await this.replicateAlarms(node.etcd.clusterId(), [...alarms, { memberId, alarm: 'NOSPACE' }]);
      this.kick();
      return { ok: false, error: spaceExceeded };
    }
    return { ok: true };
  }

  /** Every control-plane node's apiserver writes (leases, events) every few seconds while its etcd serves. */
  private apiServerWrites(): void {
    if (this.def.etcdQuotaBytes === null || this.stopped) return;
    this.clock.after(API_SERVER_WRITE_MS, () => {
      const writers = this.nodesList.filter((n) => n.isControlPlane && n.etcdServing && this.hasQuorum(n));
      void Promise.all(writers.map((n) => this.etcdWrite(n.address).catch(() => undefined))).finally(() =>
        this.apiServerWrites(),
      );
    });
  }

  /** Re-evaluates quorum, serving, health and joins everywhere; coalesces nested calls. */
  kick(): void {
    if (this.stopped) return;
    if (this.kicking) {
      this.kickAgain = true;
      return;
    }
    this.kicking = true;
    try {
      do {
        this.kickAgain = false;
        // Quorum per cluster id, once per pass (nothing in the loop changes it): a pass stays O(nodes) quorum checks.
        const quorumOf = new Map<string | null, boolean>();
        for (const node of this.nodesList) {
          const id = node.etcd.clusterId();
          let quorum = quorumOf.get(id);
          if (quorum === undefined) {
            quorum = this.clusterHasQuorum(id);
            quorumOf.set(id, quorum);
          }
          if (quorum && node.etcd.isRunning() && node.state.mode === 'running') node.state.etcdServing = true;
          node.refreshEtcdHealth(quorum);
        }
        for (const node of this.nodesList) node.tryJoin();
      } while (this.kickAgain);
    } finally {
      this.kicking = false;
    }
  }

  countCall(kind: keyof DestructiveCalls, node: SimNode): void {
    node.calls[kind]++;
  }

  clockSleep(simMs: number, signal: AbortSignal): Promise<boolean> {
    return this.clock.sleep(simMs, signal);
  }

  realMs(simMs: number): number {
    return this.clock.real(simMs);
  }

  /**
   * Records what the restored snapshot held, read with the toolkit's reader (the restore already accepted the file).
   * Awaited before the node deletes the upload: a read still in flight when the file went would fail. A file that
   * cannot be read leaves the restored member's own keys as the record.
   */
  async onRestored(node: SimNode, snapshotFile: string): Promise<void> {
    const revision = node.etcd.revision() ?? 0;
    this.restored = { node: node.address, revision, snapshotKeys: [...node.etcd.liveKeys()] };
    const keys = await readKeyBucket(snapshotFile).catch(() => null);
    if (!keys) return;
    const snapshotKeys = [...keys].map(([key, value]): [string, string] => [key, value.toString('utf8')]);
    this.restored = { node: node.address, revision, snapshotKeys };
  }

  offline(node: SimNode): void {
    if (!this.stopped) this.wire.offline(node);
  }

  async relisten(node: SimNode): Promise<void> {
    if (this.stopped) return;
    // Made when a machine first enters maintenance mode (e.g. after its STATE was wiped): startup stays quick.
    if (node.inMaintenance && !this.pki.maintenanceCerts[node.address]) {
      const cert = await maintenanceCertificate(node.address);
      this.pki.maintenanceCerts[node.address] = cert;
      this.maintenanceFingerprints[node.address] = spkiFingerprint(cert.certPem);
    }
    await this.wire.relisten(node);
  }

  resolve(target: string): SimNode | undefined {
    const host = target.replace(/^\[|\]$/g, '').replace(/:\d+$/, '');
    return this.nodesList.find((n) => n.address === host || n.hostname === host);
  }

  // ---- SimCluster ----

  destructiveCalls(): DestructiveCalls {
    const calls: DestructiveCalls = {
      reset: {},
      bootstrap: {},
      apply: {},
      reboot: {},
      recover: {},
      removeMember: {},
      leave: {},
      forfeitLeadership: {},
      defragment: {},
      alarmDisarm: {},
      serviceRestart: {},
    };
    for (const node of this.nodesList) {
      for (const kind of Object.keys(calls) as (keyof DestructiveCalls)[]) calls[kind][node.address] = node.calls[kind];
    }
    return calls;
  }

  dataReport(): DataReport {
    const restored = this.restored;
    const etcd = this.fleet ? ('real' as const) : ('model' as const);
    if (!restored)
      return {
        lastWriteRevision: this.lastWriteRevision,
        restoredRevision: null,
        lostRevisions: 0,
        keysMatchSnapshot: null,
        etcd,
      };
    const node = this.nodesList.find((n) => n.address === restored.node);
    const now = node ? [...node.etcd.liveKeys()] : [];
    const expected = new Map(restored.snapshotKeys);
    const match = now.length === expected.size && now.every(([k, v]) => expected.get(k) === v);
    return {
      lastWriteRevision: this.lastWriteRevision,
      restoredRevision: restored.revision,
      lostRevisions: Math.max(0, this.lastWriteRevision - restored.revision),
      keysMatchSnapshot: match,
      etcd,
    };
  }

  view(): SimNodeView[] {
    return this.nodesList.map((n) => ({
      address: n.address,
      hostname: n.hostname,
      machineType: n.inMaintenance || !n.state.type ? 'maintenance' : n.state.type,
      etcdState: n.etcdState,
      reachable: n.reachable,
      etcdRevision: n.etcd.revision(),
      ...(n.etcd instanceof RealEtcd ? { etcdClientUrl: n.etcd.clientUrl } : {}),
    }));
  }

  async writeGiven(incidentDir: string): Promise<string[]> {
    const written: string[] = [];
    /** Writes a given file unless it is there already (a resumed drill keeps its files, and their dates). */
    const put = async (relative: string, content: Buffer | string, mtime?: Date): Promise<void> => {
      const path = join(incidentDir, relative);
      await mkdir(dirname(path), { recursive: true, mode: 0o700 });
      try {
        await writeFile(path, content, { flag: 'wx', mode: 0o600 });
        written.push(path);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
        return;
      }
      if (mtime) await utimes(path, mtime, mtime);
    };
    for (const file of this.scenario.given) {
      if (file.kind === 'machine-config' && file.node) await put(file.path, this.originalConfigs[file.node] ?? '');
    }
    const snapshot = this.def.given.snapshot;
    const file = this.scenario.given.find((g) => g.kind === 'snapshot');
    // The wizard tells a snapshot file's age by its mtime: dated when the routine backup took it, not now.
    const takenAt = snapshot?.ageMinutes ? new Date(Date.now() - snapshot.ageMinutes * 60_000) : undefined;
    if (snapshot && file && this.realGivenSnapshot) {
      // saved by etcd itself (etcdctl snapshot save) at that revision while the scenario's data were written
      await put(file.path, await readFile(this.realGivenSnapshot), takenAt);
    } else if (snapshot && file) {
      const upTo = this.lastWriteRevision - snapshot.revisionsBehind;
      const history = this.fullHistory.filter((e) => e.revision <= upTo);
      const members = this.originalMembers.map((m) => ({
        id: m.id,
        name: m.name,
        peerURLs: m.peerUrls,
        clientURLs: m.clientUrls,
      }));
      await put(file.path, buildEtcdSnapshot({ history, consistentIndex: 1000 + history.length, members }), takenAt);
    }
    return written;
  }

  async saveState(path: string): Promise<void> {
    // a real member is asked again (its keys too), so the state and the data report say what etcd holds now
    await Promise.all(this.nodesList.map((n) => n.etcd.refresh?.({ keys: true })));
    const state: SavedState = {
      format: 'talos-dr-sim-state/1',
      scenario: this.def,
      addressBase: this.addressBase,
      port: this.port,
      speed: this.clock.speed,
      ca: caToJson(this.pki.ca),
      client: this.pki.client,
      serverCerts: this.pki.serverCerts,
      maintenanceCerts: this.pki.maintenanceCerts,
      originalConfigs: this.originalConfigs,
      fullHistory: toSavedHistory(this.fullHistory),
      originalMembers: this.originalMembers,
      lastWriteRevision: this.lastWriteRevision,
      restored: this.restored,
      faultsRemaining: this.faultInjector.remaining,
      nodes: await Promise.all(
        this.nodesList.map(async (n) => {
          const upload = await readFile(n.uploadPath).catch(() => null);
          return {
            state: n.state,
            etcd: n.etcd.save(),
            calls: { ...n.calls },
            ...(upload ? { upload: upload.toString('base64') } : {}),
          };
        }),
      ),
    };
    await writeFileAtomic(path, `${JSON.stringify(state)}\n`, { mode: 0o600 });
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.clock.stop();
    await this.wire.close();
    await this.fleet?.stopAll();
  }

  // ---- start ----

  startFaultClock(): void {
    this.faultInjector.applyUnreachable(this.nodesList);
    for (const fault of this.def.faults) {
      if (fault.kind !== 'down') continue;
      this.nodesList.find((n) => n.hostname === fault.node)?.powerOffFor((fault.forSec ?? 0) * 1000);
    }
    this.apiServerWrites();
  }

  /** A resumed drill: the background writes go on, a powered-off node still boots when it was due to. */
  resumeClocks(): void {
    for (const node of this.nodesList) node.schedulePowerOn();
    this.apiServerWrites();
  }

  attach(nodes: SimNode[], faults: FaultInjector): void {
    this.nodesList.push(...nodes);
    this.faultInjector = faults;
    this.wire = new SimWire(
      { view: this, faults, resolve: (t) => this.resolve(t), scratchDir: join(this.dir, 'scratch') },
      {
        caPem: this.pki.ca.certPem,
        serverCert: (n) => this.pki.serverCerts[n.address] as PemPair,
        maintenanceCert: (n) => this.pki.maintenanceCerts[n.address] as PemPair,
      },
    );
  }

  async listen(port: number): Promise<void> {
    try {
      this.port = await this.wire.listenAll(this.nodesList, port);
    } catch (error) {
      // Everything started so far stops, the cluster's clock too: a timer left running (a crash-looping etcd's
      // 5 s restarts) kept a refused `talos-dr sim` alive after its sentence.
      await this.stop();
      const text = error instanceof Error ? error.message : String(error);
      if (/EADDRINUSE|address already in use|No address added/i.test(text)) {
        throw new SimStartError(
          `Port ${port} is already in use on ${this.addressBase}; pick another with --port (0 picks a free one) or another --address-base.`,
        );
      }
      if (/EADDRNOTAVAIL|Cannot assign/i.test(text)) {
        throw new SimStartError(
          `Cannot listen on ${this.addressBase}; use a 127.x.y.z address with --address-base.`,
          'usage',
        );
      }
      throw new SimStartError(`The simulator could not listen on port ${port}: ${text.split('\n')[0]}.`);
    }
    const controlPlane = this.def.nodes
      .map((n, i) => ({ n, address: nodeAddress(this.addressBase, i) }))
      .filter(({ n }) => n.type !== 'worker');
    this.nodes = controlPlane.map((c) => c.address);
    this.endpoints = this.nodes.map((a) => `${a}:${this.port}`);
    this.allNodes = this.nodesList.map((n) => n.address);
    for (const [address, cert] of Object.entries(this.pki.maintenanceCerts)) {
      this.maintenanceFingerprints[address] = spkiFingerprint(cert.certPem);
    }
  }

  async writeTalosconfig(path: string): Promise<void> {
    const yaml = talosconfigYaml({
      context: SIM_CONTEXT,
      endpoints: this.endpoints,
      nodes: this.nodes,
      ca: this.pki.ca,
      client: this.pki.client,
    });
    try {
      await writeFile(path, yaml, { flag: 'wx', mode: 0o600 });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
        throw new SimStartError(
          `${path} already exists; the simulator never overwrites a talosconfig, so pick another --dir or remove it.`,
          'usage',
        );
      }
      throw new SimStartError(`Cannot write ${path}; pick a folder you can write to with --dir.`);
    }
    this.talosconfigPath = path;
  }
}

function freshNodeState(address: string, sn: ScenarioNode, def: Scenario, config: string | null): NodeState {
  return {
    address,
    hostname: sn.hostname,
    type: sn.state === 'maintenance' ? null : sn.type,
    mode: sn.state === 'maintenance' ? 'maintenance' : sn.state === 'down' ? 'off' : 'running',
    config,
    stagedConfig: null,
    talosVersion: def.talosVersion,
    etcdPartition: def.etcdPartition,
    ephemeralMounted: sn.state === 'running',
    timeSynced: sn.timeSync,
    etcdServing: sn.etcd === 'healthy' || sn.etcd === 'no-quorum',
    etcdCrashes: sn.etcd === 'crashloop',
    bootstrap: null,
    pendingReset: null,
    bootId: randomBytes(16)
      .toString('hex')
      .replace(/^(.{8})(.{4})(.{4})(.{4})/, '$1-$2-$3-$4-'),
    services: {},
    eventLog: [],
  };
}

/** A blank machine makes its own throwaway CA and certificate; nobody can verify it, talosctl pins or skips it. */
async function maintenanceCertificate(address: string): Promise<PemPair> {
  const own = await generateCa({ commonName: 'maintenance' });
  return issueServerCert(own, { ips: [address], dnsNames: ['talos-maintenance'] });
}

async function issuePki(addresses: { address: string; hostname: string; maintenance: boolean }[]) {
  const ca = await generateCa();
  const client = await issueClientCert(ca, { roles: ['os:admin'] });
  const serverCerts: Record<string, PemPair> = {};
  const maintenanceCerts: Record<string, PemPair> = {};
  for (const { address, hostname, maintenance } of addresses) {
    serverCerts[address] = await issueServerCert(ca, { ips: [address], dnsNames: [hostname] });
    if (maintenance) maintenanceCerts[address] = await maintenanceCertificate(address);
  }
  return { ca, client, serverCerts, maintenanceCerts };
}

async function buildFresh(
  def: Scenario,
  dir: string,
  base: string,
  speed: number,
  etcdKind: 'model' | 'real' = 'model',
): Promise<Simulator> {
  const addresses = def.nodes.map((n, i) => ({
    address: nodeAddress(base, i),
    hostname: n.hostname,
    maintenance: n.state === 'maintenance',
  }));
  const pki = await issuePki(addresses);
  const secrets = generateClusterSecrets();
  const firstCp = addresses[def.nodes.findIndex((n) => n.type !== 'worker')]?.address ?? base;
  const originalConfigs: Record<string, string> = {};
  def.nodes.forEach((n, i) => {
    const address = nodeAddress(base, i);
    originalConfigs[address] = machineConfigYaml(secrets, {
      type: n.type,
      hostname: n.hostname,
      address,
      talosVersion: def.talosVersion,
      clusterName: 'talos-dr-sim',
      controlPlaneEndpoint: `https://${firstCp}:6443`,
      etcdPartition: def.etcdPartition,
      etcdQuotaBytes: def.etcdQuotaBytes,
    });
  });
  const fullHistory = generateHistory(def.data.keys, def.data.valueBytes);
  let lastWriteRevision = lastRevision(fullHistory);
  const clusterId = randomMemberId();
  let members = def.nodes
    .map((n, i) => ({ n, address: nodeAddress(base, i) }))
    .filter(({ n }) => n.type !== 'worker')
    .map(({ n, address }) => memberFor({ name: n.hostname, address }));
  let simRef: Simulator | null = null;
  const real = etcdKind === 'real' ? await seedReal(def, dir, base, fullHistory, () => simRef?.kick()) : null;
  if (real) ({ members, lastWriteRevision } = real.seeded);
  const sim = new Simulator(def, dir, base, speed, pki, originalConfigs, fullHistory, members, lastWriteRevision, null);
  simRef = sim;
  if (real) {
    sim.fleet = real.fleet;
    sim.realGivenSnapshot = real.givenSnapshot;
  }
  const nodes: SimNode[] = [];
  for (const [i, sn] of def.nodes.entries()) {
    const address = nodeAddress(base, i);
    const root = join(dir, 'nodes', address);
    const realEtcd = real?.backends[i];
    if (realEtcd) {
      const state = freshNodeState(
        address,
        sn,
        def,
        sn.state === 'maintenance' ? null : (originalConfigs[address] ?? null),
      );
      const node = new SimNode(i, state, realEtcd, root, sim);
      if (sn.state !== 'maintenance') {
        state.services = baseServicesFor(sn.type !== 'worker');
        if (sn.type !== 'worker') {
          state.services.etcd = etcdServiceHistory(sn.etcd, sn.timeSync, Date.now(), def.talosVersion);
          if (sn.timeSync && (sn.etcd === 'healthy' || sn.etcd === 'no-quorum' || sn.etcd === 'not-serving'))
            realEtcd.start();
        }
      }
      nodes.push(node);
      continue;
    }
    const etcd = new ModelEtcd(join(root, 'var', 'lib', 'etcd'), etcdVersionOf(def.talosVersion));
    const state = freshNodeState(
      address,
      sn,
      def,
      sn.state === 'maintenance' ? null : (originalConfigs[address] ?? null),
    );
    const node = new SimNode(i, state, etcd, root, sim);
    if (sn.state !== 'maintenance') {
      state.services = baseServicesFor(sn.type !== 'worker');
      if (sn.type !== 'worker' && sn.etcd === 'wiped') {
        state.services.etcd = etcdServiceHistory(sn.etcd, sn.timeSync, Date.now(), def.talosVersion);
      } else if (sn.type !== 'worker') {
        const member = members.find((m) => m.name === sn.hostname);
        const history = fullHistory.slice(0, Math.max(0, fullHistory.length - sn.behind));
        await etcd.seed({
          clusterId,
          memberId: member?.id ?? randomMemberId(),
          members,
          history,
          consistentIndex: 5000 + history.length * 3,
          raftTerm: 7,
          alarms: def.alarms.flatMap((a) => {
            const raisedBy = members.find((m) => m.name === a.node);
            return raisedBy ? [{ memberId: raisedBy.id, alarm: a.alarm }] : [];
          }),
          freeBytes: sn.freeBytes,
        });
        state.services.etcd = etcdServiceHistory(sn.etcd, sn.timeSync, Date.now(), def.talosVersion);
        if (sn.timeSync && (sn.etcd === 'healthy' || sn.etcd === 'no-quorum' || sn.etcd === 'not-serving'))
          etcd.start();
      }
    }
    nodes.push(node);
  }
  const faults = new FaultInjector(def.faults, sim.clock);
  sim.attach(nodes, faults);
  for (const node of nodes) node.resumeCrashLoop();
  return sim;
}

/** `etcd: 'real'`: one real etcd member per node (ports per simulator), seeded through etcd's API, faults applied. */
async function seedReal(def: Scenario, dir: string, base: string, history: HistoryEvent[], onChange: () => void) {
  const fleet = new RealEtcdFleet();
  try {
    const backends: RealEtcd[] = [];
    for (const [i, sn] of def.nodes.entries()) {
      const address = nodeAddress(base, i);
      const root = join(dir, 'nodes', address);
      backends.push(
        new RealEtcd({
          fleet,
          address,
          name: sn.hostname,
          dataDir: join(root, 'var', 'lib', 'etcd'),
          clientPort: await freePortOn(address),
          peerPort: await freePortOn(address),
          logFile: join(root, 'etcd.log'),
          onChange,
        }),
      );
    }
    const fate = (sn: ScenarioNode): RealFate => {
      if (sn.state === 'maintenance' || sn.etcd === 'wiped') return 'wipe';
      if (sn.etcd === 'crashloop') return 'crash';
      return sn.state === 'running' ? 'run' : 'stop';
    };
    const given = def.given.snapshot;
    const upTo = given ? lastRevision(history) - given.revisionsBehind : null;
    const givenSnapshot = join(dir, 'etcd-given.snapshot');
    const seeded = await seedRealCluster({
      nodes: def.nodes.map((sn, i) => ({
        backend: backends[i] as RealEtcd,
        hostname: sn.hostname,
        member: sn.type !== 'worker',
        behind: sn.behind,
        fate: fate(sn),
      })),
      history,
      givenSnapshotRevision:
        upTo === null ? null : Math.max(1, lastRevision(history.filter((e) => e.revision <= upTo))),
      givenSnapshotPath: givenSnapshot,
    });
    return { fleet, backends, seeded, givenSnapshot: given ? givenSnapshot : null };
  } catch (error) {
    await fleet.stopAll();
    const text = error instanceof Error ? error.message : String(error);
    throw new SimStartError(`The real etcd cluster could not be set up: ${text.split('\n')[0]}.`);
  }
}

function baseServicesFor(controlPlane: boolean): Record<string, ServiceRecord> {
  const now = Date.now() - 86_400_000;
  const ids = ['apid', 'auditd', 'containerd', 'cri', 'dashboard', 'kubelet', 'machined', 'syslogd', 'udevd'];
  if (controlPlane) ids.push('trustd');
  const services: Record<string, ServiceRecord> = {};
  for (const id of ids.sort()) {
    services[id] = {
      id,
      state: 'Running',
      events: [
        { msg: 'Starting service', state: 'Starting', ts: now },
        { msg: 'Health check successful', state: 'Running', ts: now + 5000 },
      ],
      health: { unknown: false, healthy: true, lastMessage: '', lastChange: now + 5000 },
    };
  }
  return services;
}

async function buildRestored(saved: SavedState, dir: string, speed: number | undefined): Promise<Simulator> {
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
async function resumeInFlight(sim: Simulator): Promise<void> {
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
  }
  sim.kick();
}

async function loadSavedState(path: string): Promise<SavedState> {
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
