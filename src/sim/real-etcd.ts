/**
 * The second EtcdBackend: every simulated control-plane node owns a real etcd member process (Debian's etcd 3.4) on
 * its own loopback address, with its data directory inside the node's simulated EPHEMERAL. The node model and the
 * cluster's quorum bookkeeping stay as they are; what they read (membership, ids, status, revisions, keys) is what
 * the member itself answered last (refreshed before every RPC that shows it), and what they do (start, stop, wipe,
 * restore, join, snapshot) is done to the real member with etcd's own tools.
 *
 * Every process is tracked in one registry per simulator (RealEtcdFleet) and in a process-wide set that is killed on
 * the process's 'exit', so nothing outlives the simulator.
 */
import { etcdPrograms } from './real-etcd-tools.js';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { openSync, closeSync, readdirSync } from 'node:fs';
import { cp, mkdir, mkdtemp, open, readFile, readdir, rm, stat } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { HistoryEvent } from '../etcd/writer.js';
import {
  EtcdRestoreError,
  type EtcdBackend,
  type EtcdLocalStatus,
  type EtcdMemberInfo,
  type MemberIdentity,
  type SavedEtcd,
} from './etcd-backend.js';

/** etcd start flags for speed on a small shared machine (loopback only, tiny data). */
const SPEED_FLAGS = [
  '--heartbeat-interval=50',
  '--election-timeout=500',
  '--snapshot-count=2000',
  '--quota-backend-bytes=67108864',
  '--logger=zap',
  '--log-level=warn',
];
const ETCDCTL_ENV = { ...process.env, ETCDCTL_API: '3' };
const QUERY_TIMEOUT_MS = 1500;
const READY_TIMEOUT_MS = 20_000;

// ---- the process registry ----

const everyChild = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Last resort: whatever is still running when this process exits (a crash, process.exit) is killed by its pid.
  process.on('exit', () => {
    for (const child of everyChild) {
      if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
        try {
          process.kill(child.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
  });
}

/** The etcd processes of one simulator: started here, stopped here (by pid), also on failure. */
export class RealEtcdFleet {
  readonly children = new Set<ChildProcess>();
  readonly backends: RealEtcd[] = [];
  private closed = false;

  constructor() {
    installExitHook();
  }

  track(child: ChildProcess): void {
    this.children.add(child);
    everyChild.add(child);
    child.once('exit', () => {
      this.children.delete(child);
      everyChild.delete(child);
    });
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Stops every member (SIGTERM, then SIGKILL after 3 s) and waits until each has exited. Idempotent. */
  async stopAll(): Promise<void> {
    this.closed = true;
    for (const backend of this.backends) backend.halt();
    await Promise.all([...this.children].map((child) => terminate(child, 3000)));
  }
}

async function terminate(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** A free TCP port on this exact loopback address (bind to 0, read it back, close). */
export async function freePortOn(address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, address, () => {
      const bound = server.address();
      const port = typeof bound === 'object' && bound ? bound.port : 0;
      server.close(() => resolve(port));
    });
  });
}

// ---- etcd's own tools ----

interface ToolResult {
  ok: boolean;
  stdout: string;
  stderr: string;
}

/** etcd's offline tool: upstream's etcdutl when configured (etcdPrograms), else etcdctl 3.4's same commands. */
function offlineTool(args: string[]): Promise<ToolResult> {
  const etcdutl = etcdPrograms().etcdutl;
  return etcdutl ? etcdctl(args, 30_000, etcdutl) : etcdctl(args);
}

function etcdctl(args: string[], timeoutMs = 30_000, program = 'etcdctl'): Promise<ToolResult> {
  return new Promise((resolve) => {
    execFile(
      program,
      args,
      { env: ETCDCTL_ENV, timeout: timeoutMs, maxBuffer: 8 << 20, encoding: 'utf8' },
      (error, stdout, stderr) => resolve({ ok: !error, stdout, stderr }),
    );
  });
}

/**
 * etcd's own words from a failed etcdctl: the `Error: …` line (without the prefix), or a Go panic's first line, or
 * the last line of output.
 */
export function etcdWords(output: string): string {
  const lines = output
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
  const error = lines.find((l) => l.startsWith('Error: '));
  if (error) return error.slice('Error: '.length);
  const panic = lines.find((l) => l.startsWith('panic: ') || l.startsWith('fatal error: '));
  if (panic) return panic;
  const unexpected = lines.find((l) => l.startsWith('unexpected fault address') || l.includes('SIGBUS'));
  if (unexpected) return unexpected;
  const last = [...lines].reverse().find((l) => !l.startsWith('{')) ?? lines.at(-1);
  return last ?? 'etcdctl failed without a message';
}

/** uint64 as JSON decimal string → 16 lowercase hex digits. */
const hex = (decimal: string | undefined): string =>
  BigInt(decimal ?? '0')
    .toString(16)
    .padStart(16, '0');

interface GatewayMember {
  ID?: string;
  name?: string;
  peerURLs?: string[];
  clientURLs?: string[];
  isLearner?: boolean;
}
interface GatewayHeader {
  cluster_id?: string;
  member_id?: string;
  revision?: string;
  raft_term?: string;
}

async function gateway<T>(clientUrl: string, path: string, body: unknown, timeoutMs = QUERY_TIMEOUT_MS): Promise<T> {
  const response = await fetch(`${clientUrl}${path}`, {
    method: 'POST',
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await response.text();
  let parsed: T & { error?: string; message?: string };
  try {
    parsed = JSON.parse(text) as T & { error?: string; message?: string };
  } catch {
    throw new Error(`etcd answered ${response.status}: ${text.slice(0, 200)}`);
  }
  if (!response.ok || parsed.error) throw new Error(parsed.message ?? parsed.error ?? `HTTP ${response.status}`);
  return parsed;
}

const b64 = (s: string | Uint8Array): string => Buffer.from(s).toString('base64');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function toMember(m: GatewayMember): EtcdMemberInfo {
  return {
    id: hex(m.ID),
    name: m.name ?? '',
    peerUrls: [...(m.peerURLs ?? [])],
    clientUrls: [...(m.clientURLs ?? [])],
    isLearner: m.isLearner ?? false,
  };
}

// ---- one member ----

interface Cache {
  clusterId: string | null;
  memberId: string | null;
  members: EtcdMemberInfo[];
  status: EtcdLocalStatus | null;
  revision: number | null;
  keys: Map<string, string>;
}

const emptyCache = (): Cache => ({
  clusterId: null,
  memberId: null,
  members: [],
  status: null,
  revision: null,
  keys: new Map(),
});

export interface RealEtcdOptions {
  fleet: RealEtcdFleet;
  /** The node's loopback address; the member listens only there. */
  address: string;
  /** The node's hostname (the member's name until a restore, join or bootstrap names it). */
  name: string;
  /** The node's /var/lib/etcd inside its simulated EPHEMERAL. */
  dataDir: string;
  clientPort: number;
  peerPort: number;
  /** etcd's own log (stderr) goes here. */
  logFile: string;
  /** Called when something the cluster decides quorum from changed (the member came up, crashed, refreshed). */
  onChange: () => void;
}

interface PendingStart {
  state: 'new' | 'existing';
  initialCluster: string;
  token: string;
}

/**
 * etcd's answer to promoting a member that is a voter already (etcd-io/etcd
 * etcdserver/api/v3rpc/rpctypes/error.go@v3.4.23:45); the answer while the learner is behind starts the same way and
 * goes on "which is in sync with leader" (:46), so the end of the text tells them apart.
 */
const NOT_A_LEARNER = /can only promote a learner member$/;

export class RealEtcd implements EtcdBackend {
  readonly dataDir: string;
  readonly dbPath: string;
  readonly clientUrl: string;
  readonly peerUrl: string;
  private name: string;
  private child: ChildProcess | null = null;
  private wanted = false;
  private ready = false;
  private pending: PendingStart | null = null;
  private lifecycle: Promise<void> = Promise.resolve();
  private cache: Cache = emptyCache();
  /** Bumped by every stop, wipe, restore and bootstrap, so a join still trying gives up. */
  private generation = 0;
  private joinInFlight: Promise<EtcdMemberInfo> | null = null;

  constructor(private readonly opts: RealEtcdOptions) {
    this.dataDir = opts.dataDir;
    this.dbPath = join(opts.dataDir, 'member', 'snap', 'db');
    this.clientUrl = `http://${opts.address}:${opts.clientPort}`;
    this.peerUrl = `http://${opts.address}:${opts.peerPort}`;
    this.name = opts.name;
    opts.fleet.backends.push(this);
  }

  /** The pid of the running member (tests, logs), or null. */
  get pid(): number | null {
    return this.child?.pid ?? null;
  }

  hasData(): boolean {
    try {
      return readdirSync(this.dataDir).length > 0;
    } catch {
      return false;
    }
  }

  isRunning(): boolean {
    return this.wanted;
  }

  /** The member serves clients (it answered since it last started). */
  isReady(): boolean {
    return this.ready;
  }

  start(): void {
    if (this.wanted || this.opts.fleet.isClosed) return;
    this.wanted = true;
    void this.enqueue(() => this.spawnNow());
  }

  stop(): void {
    if (!this.wanted && !this.child) return;
    this.wanted = false;
    this.ready = false;
    this.generation++;
    void this.enqueue(() => this.killNow());
  }

  /** The fleet is stopping: no more starts. */
  halt(): void {
    this.wanted = false;
    this.ready = false;
  }

  /** Waits until every queued start/stop has been carried out. */
  settled(): Promise<void> {
    return this.lifecycle;
  }

  private enqueue(step: () => Promise<void>): Promise<void> {
    const next = this.lifecycle.then(step, step);
    this.lifecycle = next.catch(() => undefined);
    return next;
  }

  private async spawnNow(): Promise<void> {
    if (!this.wanted || this.opts.fleet.isClosed) return;
    if (this.child && this.child.exitCode === null && this.child.signalCode === null) return;
    // Without data and without a bootstrap or a join, etcd would found a cluster of its own: Talos never lets it
    // (it waits in Preparing); the join in progress starts it.
    if (!this.pending && !this.hasData()) return;
    await mkdir(dirname(this.dataDir), { recursive: true });
    await mkdir(dirname(this.opts.logFile), { recursive: true });
    const args = [
      `--name=${this.name}`,
      `--data-dir=${this.dataDir}`,
      `--listen-client-urls=${this.clientUrl}`,
      `--advertise-client-urls=${this.clientUrl}`,
      `--listen-peer-urls=${this.peerUrl}`,
      `--initial-advertise-peer-urls=${this.peerUrl}`,
      ...SPEED_FLAGS,
    ];
    const pending = this.pending;
    if (pending) {
      args.push(
        `--initial-cluster=${pending.initialCluster}`,
        `--initial-cluster-state=${pending.state}`,
        `--initial-cluster-token=${pending.token}`,
      );
    } else {
      // With data present etcd ignores these; without, it would make a one-member cluster of its own.
      args.push(`--initial-cluster=${this.name}=${this.peerUrl}`);
    }
    const log = openSync(this.opts.logFile, 'a');
    let child: ChildProcess;
    try {
      child = spawn(etcdPrograms().etcd, args, { stdio: ['ignore', log, log] });
    } finally {
      closeSync(log);
    }
    this.opts.fleet.track(child);
    this.child = child;
    this.ready = false;
    child.once('error', () => undefined);
    child.once('exit', () => {
      if (this.child !== child) return;
      this.child = null;
      const unexpected = this.wanted;
      this.wanted = false;
      this.ready = false;
      if (unexpected && !this.opts.fleet.isClosed) this.opts.onChange();
    });
    void this.awaitReady(child);
  }

  private async killNow(): Promise<void> {
    const child = this.child;
    if (!child) return;
    await terminate(child, 5000);
    if (this.child === child) this.child = null;
  }

  /** Polls the member until it answers a status request (no leader needed), then refreshes and tells the cluster. */
  private async awaitReady(child: ChildProcess): Promise<void> {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (Date.now() < deadline && this.child === child && !this.opts.fleet.isClosed) {
      const answered = await gateway(this.clientUrl, '/v3/maintenance/status', {}, 500).then(
        () => true,
        () => false,
      );
      if (answered) {
        this.ready = true;
        this.pending = null;
        await this.refresh({ keys: true });
        if (this.child === child && !this.opts.fleet.isClosed) this.opts.onChange();
        return;
      }
      await sleep(100);
    }
  }

  /** Waits until the member answers (after start/join), or gives up after `timeoutMs`. */
  async waitReady(timeoutMs = READY_TIMEOUT_MS): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.ready) return true;
      if (!this.wanted) return false;
      await sleep(50);
    }
    return this.ready;
  }

  /** Re-reads what the member itself says: ids, membership, status, revision (and, on request, every live key). */
  async refresh(opts: { keys?: boolean } = {}): Promise<void> {
    if (!this.ready || !this.child) return;
    try {
      const [status, list] = await Promise.all([
        gateway<{
          header?: GatewayHeader;
          version?: string;
          dbSize?: string;
          dbSizeInUse?: string;
          leader?: string;
          raftIndex?: string;
          raftTerm?: string;
          raftAppliedIndex?: string;
        }>(this.clientUrl, '/v3/maintenance/status', {}),
        gateway<{ header?: GatewayHeader; members?: GatewayMember[] }>(this.clientUrl, '/v3/cluster/member/list', {}),
      ]);
      const leader = status.leader && status.leader !== '0' ? hex(status.leader) : null;
      this.cache.clusterId = hex(status.header?.cluster_id);
      this.cache.memberId = hex(status.header?.member_id);
      this.cache.members = (list.members ?? []).map(toMember);
      this.cache.revision = Number(status.header?.revision ?? '0');
      this.cache.status = {
        memberId: hex(status.header?.member_id),
        dbSize: Number(status.dbSize ?? '0'),
        dbSizeInUse: Number(status.dbSizeInUse ?? status.dbSize ?? '0'),
        raftIndex: Number(status.raftIndex ?? '0'),
        raftAppliedIndex: Number(status.raftAppliedIndex ?? status.raftIndex ?? '0'),
        raftTerm: Number(status.raftTerm ?? '0'),
        serverVersion: status.version ?? '3.4.23',
        leaderId: leader,
      };
      if (opts.keys) this.cache.keys = await this.readKeys();
    } catch {
      // the member is going away or busy; keep the last answer
    }
  }

  private async readKeys(): Promise<Map<string, string>> {
    const answer = await gateway<{ kvs?: { key: string; value?: string }[] }>(
      this.clientUrl,
      '/v3/kv/range',
      { key: b64('\0'), range_end: b64('\0'), serializable: true },
      5000,
    );
    const keys = new Map<string, string>();
    for (const kv of answer.kvs ?? []) {
      keys.set(Buffer.from(kv.key, 'base64').toString('utf8'), Buffer.from(kv.value ?? '', 'base64').toString('utf8'));
    }
    return keys;
  }

  async wipe(): Promise<void> {
    this.generation++;
    this.wanted = false;
    this.ready = false;
    await this.enqueue(() => this.killNow());
    await rm(this.dataDir, { recursive: true, force: true });
    this.pending = null;
    this.cache = emptyCache();
  }

  /** etcd's own restore (`etcdctl snapshot restore`) into a new one-member cluster named after the node. */
  async restore(snapshotPath: string, skipHashCheck: boolean, self: MemberIdentity): Promise<void> {
    this.generation++;
    this.wanted = false;
    this.ready = false;
    await this.enqueue(() => this.killNow());
    // etcd 3.4 refuses an existing --data-dir even when empty (Talos's etcd 3.6 accepts an empty one): the node
    // checked it is empty, so it goes, exactly as the empty /var/lib/etcd would be accepted by Talos.
    if (!this.hasData()) await rm(this.dataDir, { recursive: true, force: true });
    await mkdir(dirname(this.dataDir), { recursive: true });
    const token = `talos-dr-${randomBytes(6).toString('hex')}`;
    const args = [
      'snapshot',
      'restore',
      snapshotPath,
      `--data-dir=${this.dataDir}`,
      `--name=${self.name}`,
      `--initial-cluster=${self.name}=${this.peerUrl}`,
      `--initial-advertise-peer-urls=${this.peerUrl}`,
      `--initial-cluster-token=${token}`,
      `--skip-hash-check=${skipHashCheck ? 'true' : 'false'}`,
    ];
    const result = await offlineTool(args);
    if (!result.ok) throw new EtcdRestoreError(etcdWords(`${result.stdout}\n${result.stderr}`));
    this.name = self.name;
    this.pending = null;
    this.cache = emptyCache();
    // What was restored, in etcd's own words (revision and keys); ids come from the member once it runs.
    const status = await offlineTool(['snapshot', 'status', '-w', 'json', this.dbPath]);
    if (status.ok) {
      try {
        this.cache.revision = (JSON.parse(status.stdout) as { revision: number }).revision;
      } catch {
        // leave it unknown until the member answers
      }
    }
  }

  async initialize(self: MemberIdentity): Promise<void> {
    this.generation++;
    this.wanted = false;
    this.ready = false;
    await this.enqueue(() => this.killNow());
    await rm(this.dataDir, { recursive: true, force: true });
    this.name = self.name;
    this.pending = {
      state: 'new',
      initialCluster: `${self.name}=${this.peerUrl}`,
      token: `talos-dr-${randomBytes(6).toString('hex')}`,
    };
    this.cache = emptyCache();
  }

  /** This member as a learner still to be promoted, and the member that took it in. */
  private learner: { id: string | undefined; via: RealEtcd } | null = null;

  /**
   * MemberPromote through the member that took it in, retried while etcd's leader refuses it ("can only promote a
   * learner member which is in sync with leader": etcd-io/etcd etcdserver/server.go@v3.4.23:1800-1826) as Talos
   * retries it (siderolabs/talos internal/app/machined/pkg/system/services/etcd.go@v1.14.0-rc.1:622-666). Resolves
   * once the member itself answers as a voter (false: the node was stopped, wiped or the simulator ended first).
   */
  async promote(): Promise<boolean> {
    const learner = this.learner;
    if (!learner?.id) return false;
    const generation = this.generation;
    const current = (): boolean => generation === this.generation && !this.opts.fleet.isClosed;
    for (;;) {
      if (!current()) return false;
      try {
        await gateway(learner.via.clientUrl, '/v3/cluster/member/promote', { ID: learner.id }, 5000);
        break;
      } catch (error) {
        // removed meanwhile: nothing left to promote or to wait for
        if (/member not found/i.test(String(error))) {
          this.learner = null;
          return true;
        }
        // an earlier try went through but its answer was lost (a timeout on a busy machine)
        if (NOT_A_LEARNER.test(String(error))) break;
        await sleep(300);
      }
    }
    this.learner = null;
    await this.awaitOwnPromotion(hex(learner.id), current);
    return current();
  }

  /**
   * The leader has promoted this member; the member itself applies that when the leader's next message reaches it,
   * and until then it refuses its member list as it refuses every call but Status and a serializable Range ("rpc not
   * supported for learner": etcd-io/etcd etcdserver/api/v3rpc/interceptor.go@v3.4.23:51-53, util.go@v3.4.23:128-138).
   * What the node shows (its cluster, its member list, so its health) is read from this member's own answers, so
   * they are read again until it lists itself as a voter: one read right after the leader's answer lost that race on
   * a busy machine, left the member's view empty for good, and its node never turned healthy.
   */
  private async awaitOwnPromotion(id: string, current: () => boolean): Promise<void> {
    while (current() && this.wanted) {
      await this.refresh();
      const self = this.cache.members.find((m) => m.id === id);
      if (this.cache.memberId === id && self && !self.isLearner) return;
      await sleep(100);
    }
  }

  /**
   * Joins as Talos makes a member join: `member add` on the running cluster, then etcd starts with the existing
   * cluster and receives the data from the leader. Retries while etcd refuses a reconfiguration (another member was
   * added and has not started yet).
   */
  async join(source: EtcdBackend, self: MemberIdentity): Promise<EtcdMemberInfo> {
    // The node may ask again while a join is still trying (the cluster re-evaluates joins on every change): one join.
    if (this.joinInFlight) return this.joinInFlight;
    this.joinInFlight = this.joinOnce(source, self).finally(() => {
      this.joinInFlight = null;
    });
    return this.joinInFlight;
  }

  private async joinOnce(source: EtcdBackend, self: MemberIdentity): Promise<EtcdMemberInfo> {
    if (!(source instanceof RealEtcd)) throw new Error('etcdserver: no leader');
    this.wanted = false;
    this.ready = false;
    await this.enqueue(() => this.killNow());
    await rm(this.dataDir, { recursive: true, force: true });
    this.name = self.name;
    const generation = ++this.generation;
    let added: { member?: GatewayMember; members?: GatewayMember[] } | null = null;
    // Talos keeps trying to join for as long as the service runs; so does this, until the node or simulator stops.
    while (!added && generation === this.generation && !this.opts.fleet.isClosed) {
      try {
        // A member added before (a join that was interrupted) is reused rather than added twice.
        const list = await gateway<{ members?: GatewayMember[] }>(source.clientUrl, '/v3/cluster/member/list', {});
        const existing = (list.members ?? []).find((m) => (m.peerURLs ?? []).includes(this.peerUrl));
        added = existing
          ? { member: existing, members: list.members ?? [] }
          : await gateway(
              source.clientUrl,
              '/v3/cluster/member/add',
              // as Talos does: MemberAddAsLearner (talos services/etcd.go@v1.14.1:322)
              { peerURLs: [this.peerUrl], isLearner: true },
              5000,
            );
      } catch {
        await sleep(300);
      }
    }
    // Given up (the node was reset or the simulator stopped meanwhile): the caller's generation check ignores it.
    if (!added?.member)
      return { id: '0000000000000000', name: self.name, peerUrls: [], clientUrls: [], isLearner: false };
    const newId = added.member.ID;
    this.learner = { id: newId, via: source };
    let unnamed = 0;
    const initialCluster = (added.members ?? [])
      .flatMap((m) => {
        const name = m.ID === newId ? self.name : m.name || `unstarted-${++unnamed}`;
        return (m.peerURLs ?? []).map((url) => `${name}=${url}`);
      })
      .join(',');
    this.pending = { state: 'existing', initialCluster, token: 'unused-for-existing' };
    this.cache = emptyCache();
    this.wanted = true;
    await this.enqueue(() => this.spawnNow());
    await this.waitReady();
    await this.refresh({ keys: true });
    return toMember({ ...added.member, name: self.name, clientURLs: [this.clientUrl] });
  }

  /** The membership changed (raft replicated it): members the cluster removed are removed for real, then re-read. */
  async applyMembership(members: EtcdMemberInfo[]): Promise<void> {
    if (this.ready) {
      const keep = new Set(members.map((m) => m.id));
      for (const gone of this.cache.members.filter((m) => !keep.has(m.id))) {
        await gateway(this.clientUrl, '/v3/cluster/member/remove', { ID: BigInt(`0x${gone.id}`).toString() }).catch(
          () => undefined,
        );
      }
    }
    await this.refresh();
  }

  members(): EtcdMemberInfo[] {
    return this.cache.members.map((m) => ({ ...m, peerUrls: [...m.peerUrls], clientUrls: [...m.clientUrls] }));
  }

  memberId(): string | null {
    return this.cache.memberId;
  }

  clusterId(): string | null {
    return this.cache.clusterId;
  }

  status(): EtcdLocalStatus {
    return (
      this.cache.status ?? {
        memberId: this.cache.memberId ?? '0000000000000000',
        dbSize: 0,
        dbSizeInUse: 0,
        raftIndex: 0,
        raftAppliedIndex: 0,
        raftTerm: 0,
        serverVersion: '3.4.23',
        leaderId: null,
      }
    );
  }

  /** etcd's own snapshot: `etcdctl snapshot save` from this member (the database plus its sha256 trailer). */
  async snapshot(): Promise<Buffer> {
    const dir = await mkdtemp(join(tmpdir(), 'talos-dr-etcd-snapshot-'));
    try {
      const file = join(dir, 'snapshot.db');
      const result = await etcdctl(
        ['--endpoints', this.clientUrl, '--command-timeout=20s', 'snapshot', 'save', file],
        30_000,
      );
      if (!result.ok) throw new Error(etcdWords(`${result.stdout}\n${result.stderr}`));
      return await readFile(file);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  revision(): number | null {
    return this.hasData() || this.ready ? this.cache.revision : null;
  }

  liveKeys(): Map<string, string> {
    return new Map(this.cache.keys);
  }

  save(): SavedEtcd {
    return { running: this.wanted, dirty: false, data: null, real: true };
  }

  /** Seeding: the next start creates or joins with these flags, under this name. */
  seedPending(pending: PendingStart, name: string): void {
    this.pending = pending;
    this.name = name;
  }

  /** Seeding: remembers what the member said while it was last up (for a member kept stopped or behind). */
  rememberCache(): Cache {
    return { ...this.cache, members: this.members(), keys: new Map(this.cache.keys) };
  }

  restoreCache(cache: Cache): void {
    this.cache = cache;
  }

  forgetCache(): void {
    this.cache = emptyCache();
  }
}

// ---- a scenario's starting state, written through etcd's API, then its faults applied for real ----

export type RealFate = 'run' | 'stop' | 'crash' | 'wipe';

export interface RealSeedNode {
  backend: RealEtcd;
  hostname: string;
  /** Part of the original etcd cluster (a control-plane node). */
  member: boolean;
  /** Revisions (events) this member misses at the outage. */
  behind: number;
  /** What the outage did to it: keeps running, stopped, data damaged (crash-loops), data gone. */
  fate: RealFate;
}

export interface RealSeedResult {
  members: EtcdMemberInfo[];
  lastWriteRevision: number;
}

/** Damages the write-ahead log as a crash does (the database file stays intact, so a raw copy still works). */
async function damageWal(dataDir: string): Promise<void> {
  const walDir = join(dataDir, 'member', 'wal');
  const files = (await readdir(walDir).catch(() => [] as string[])).filter((f) => f.endsWith('.wal')).sort();
  const last = files.at(-1);
  if (!last) return;
  const path = join(walDir, last);
  const size = (await stat(path)).size;
  const handle = await open(path, 'r+');
  try {
    // Garbage over the first records after the header: etcd fails to replay the log ("crc mismatch").
    await handle.write(randomBytes(Math.min(4096, Math.max(0, size - 64))), 0, undefined, 64);
  } finally {
    await handle.close();
  }
}

async function put(writer: RealEtcd, event: HistoryEvent): Promise<number> {
  const answer =
    event.kind === 'put'
      ? await gateway<{ header?: GatewayHeader }>(
          writer.clientUrl,
          '/v3/kv/put',
          { key: b64(event.key), value: b64(event.value) },
          5000,
        )
      : await gateway<{ header?: GatewayHeader }>(
          writer.clientUrl,
          '/v3/kv/deleterange',
          { key: b64(event.key) },
          5000,
        );
  return Number(answer.header?.revision ?? '0');
}

/**
 * Builds the scenario's etcd cluster for real: every original member starts in one new cluster, the history is
 * written through etcd's API (one change per revision, so revisions equal the scenario's), members that are behind
 * are stopped at their revision (their data directory kept as it was then), the trainee's older snapshot is taken
 * with `etcdctl snapshot save` at its revision, then the outage: members stopped, WALs damaged, data removed.
 */
export async function seedRealCluster(opts: {
  nodes: RealSeedNode[];
  history: HistoryEvent[];
  /** Take the given snapshot after the event with this revision (null: the scenario gives none). */
  givenSnapshotRevision: number | null;
  givenSnapshotPath: string;
}): Promise<RealSeedResult> {
  const members = opts.nodes.filter((n) => n.member);
  if (members.length === 0) return { members: [], lastWriteRevision: opts.history.at(-1)?.revision ?? 0 };
  const token = `talos-dr-${randomBytes(6).toString('hex')}`;
  const initialCluster = members.map((n) => `${n.hostname}=${n.backend.peerUrl}`).join(',');
  for (const n of members) {
    await rm(n.backend.dataDir, { recursive: true, force: true });
    n.backend.seedPending({ state: 'new', initialCluster, token }, n.hostname);
    n.backend.start();
  }
  for (const n of members) {
    if (!(await n.backend.waitReady())) throw new Error(`etcd on ${n.hostname} did not start (see its etcd.log)`);
  }
  // The freshest member writes; the others follow by raft. Members behind stop at their point, keep that data dir.
  const writer = [...members].sort((a, b) => a.behind - b.behind)[0] as RealSeedNode;
  const stash = new Map<RealSeedNode, { dir: string; cache: Cache }>();
  const total = opts.history.length;
  const checkpoints = members
    .filter((n) => n.behind > 0 && n !== writer)
    .map((n) => ({ node: n, after: Math.max(0, total - n.behind) }));
  let written = 0;
  let revision = 1;
  const takeGiven = async (): Promise<void> => {
    await mkdir(dirname(opts.givenSnapshotPath), { recursive: true });
    const result = await etcdctl(['--endpoints', writer.backend.clientUrl, 'snapshot', 'save', opts.givenSnapshotPath]);
    if (!result.ok) throw new Error(`etcdctl snapshot save failed: ${etcdWords(result.stderr)}`);
  };
  const atCheckpoint = async (): Promise<void> => {
    for (const { node } of checkpoints.filter((c) => c.after === written)) {
      await waitRevision(node.backend, revision);
      await node.backend.refresh({ keys: true });
      node.backend.stop();
      await node.backend.settled();
      const dir = `${node.backend.dataDir}.at-${revision}`;
      await rm(dir, { recursive: true, force: true });
      await cp(node.backend.dataDir, dir, { recursive: true });
      stash.set(node, { dir, cache: node.backend.rememberCache() });
      node.backend.start();
      await node.backend.waitReady();
    }
    if (opts.givenSnapshotRevision !== null && revision === opts.givenSnapshotRevision) await takeGiven();
  };
  await atCheckpoint();
  for (const event of opts.history) {
    revision = await put(writer.backend, event);
    written++;
    await atCheckpoint();
  }
  for (const n of members) {
    await waitRevision(n.backend, revision);
    await n.backend.refresh({ keys: true });
  }
  const originalMembers = writer.backend.members();
  // The outage: members die (killed, data damaged or gone); a member that keeps running is never restarted, since a
  // restarted etcd without quorum would not serve clients at all (it cannot publish itself through raft).
  const down = members.filter((n) => n.fate !== 'run' || stash.has(n));
  for (const n of down) n.backend.stop();
  for (const n of down) await n.backend.settled();
  for (const [node, kept] of stash) {
    await rm(node.backend.dataDir, { recursive: true, force: true });
    await cp(kept.dir, node.backend.dataDir, { recursive: true });
    await rm(kept.dir, { recursive: true, force: true });
    node.backend.restoreCache(kept.cache);
  }
  for (const n of members) {
    if (n.fate === 'crash') await damageWal(n.backend.dataDir);
    if (n.fate === 'wipe') {
      await rm(n.backend.dataDir, { recursive: true, force: true });
      n.backend.forgetCache();
    }
  }
  return { members: originalMembers, lastWriteRevision: revision };
}

async function waitRevision(backend: RealEtcd, revision: number): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    try {
      const status = await gateway<{ header?: GatewayHeader }>(backend.clientUrl, '/v3/maintenance/status', {});
      if (Number(status.header?.revision ?? '0') >= revision) return;
    } catch {
      // not up yet
    }
    await sleep(50);
  }
  throw new Error(`etcd at ${backend.clientUrl} did not reach revision ${revision}`);
}
