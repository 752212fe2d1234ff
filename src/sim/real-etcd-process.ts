/**
 * One real etcd member's process and data directory (the base of RealEtcd): start, stop and crash, readiness, what the
 * member last answered (the cache the node model reads), and what is done to its data with etcd's own tools (wipe,
 * restore, a new cluster's bootstrap). Membership and the reads the node model makes are RealEtcd's (real-etcd.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { openSync, closeSync, readdirSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { EtcdRestoreError, type EtcdLocalStatus, type EtcdMemberInfo, type MemberIdentity } from './etcd-backend.js';
import {
  etcdWords,
  gateway,
  hex,
  offlineTool,
  sleep,
  b64,
  toMember,
  type GatewayHeader,
  type GatewayMember,
} from './real-etcd-calls.js';
import { terminate, type RealEtcdFleet } from './real-etcd-fleet.js';
import { etcdPrograms } from './real-etcd-tools.js';

/** etcd start flags for speed on a small shared machine (loopback only, tiny data). */
const SPEED_FLAGS = [
  '--heartbeat-interval=50',
  '--election-timeout=500',
  '--snapshot-count=2000',
  '--quota-backend-bytes=67108864',
  '--logger=zap',
  '--log-level=warn',
];
const READY_TIMEOUT_MS = 20_000;

export interface Cache {
  clusterId: string | null;
  memberId: string | null;
  members: EtcdMemberInfo[];
  status: EtcdLocalStatus | null;
  revision: number | null;
  keys: Map<string, string>;
}

export const emptyCache = (): Cache => ({
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
  /** How the member's JSON gateway is asked (tests put a busy member's lost answer in between). */
  gateway?: typeof gateway;
}

export interface PendingStart {
  state: 'new' | 'existing';
  initialCluster: string;
  token: string;
}

export abstract class RealEtcdProcess {
  readonly dataDir: string;
  readonly dbPath: string;
  readonly clientUrl: string;
  readonly peerUrl: string;
  protected name: string;
  private child: ChildProcess | null = null;
  protected wanted = false;
  protected ready = false;
  protected pending: PendingStart | null = null;
  private lifecycle: Promise<void> = Promise.resolve();
  protected cache: Cache = emptyCache();
  /** Bumped by every stop, wipe, restore and bootstrap, so a join still trying gives up. */
  protected generation = 0;

  constructor(protected readonly opts: RealEtcdOptions) {
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

  protected enqueue(step: () => Promise<void>): Promise<void> {
    const next = this.lifecycle.then(step, step);
    this.lifecycle = next.catch(() => undefined);
    return next;
  }

  protected async spawnNow(): Promise<void> {
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

  protected async killNow(): Promise<void> {
    const child = this.child;
    if (!child) return;
    await terminate(child, 5000);
    if (this.child === child) this.child = null;
  }

  protected ask<T>(path: string, body: unknown, timeoutMs?: number): Promise<T> {
    return (this.opts.gateway ?? gateway)<T>(this.clientUrl, path, body, timeoutMs);
  }

  /**
   * Polls the member until it answers a status request (no leader needed), then reads what it says until one read
   * succeeds, and tells the cluster. Both go on for as long as this process lives (as Talos's etcd service keeps
   * waiting for its member): the cluster decides quorum from what the member said, and nothing else reads a member
   * that has not said it yet, so one lost answer on a busy machine (the first read after a restore timed out in CI)
   * left the node "Running but not healthy" for good.
   */
  private async awaitReady(child: ChildProcess): Promise<void> {
    const alive = (): boolean => this.child === child && !this.opts.fleet.isClosed;
    const started = Date.now();
    while (alive()) {
      const answered = await this.ask('/v3/maintenance/status', {}, 500).then(
        () => true,
        () => false,
      );
      if (answered) break;
      // a member slow to come up is asked less often, never given up on while it runs
      await sleep(Date.now() - started < READY_TIMEOUT_MS ? 100 : 1000);
    }
    if (!alive()) return;
    this.ready = true;
    this.pending = null;
    while (alive() && !(await this.refresh({ keys: true }))) await sleep(200);
    if (alive()) this.opts.onChange();
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

  /**
   * Re-reads what the member itself says: ids, membership, status, revision (and, on request, every live key).
   * False when it did not answer (the last answer is kept).
   */
  async refresh(opts: { keys?: boolean } = {}): Promise<boolean> {
    if (!this.ready || !this.child) return false;
    const generation = this.generation;
    try {
      const [status, list] = await Promise.all([
        this.ask<{
          header?: GatewayHeader;
          version?: string;
          dbSize?: string;
          dbSizeInUse?: string;
          leader?: string;
          raftIndex?: string;
          raftTerm?: string;
          raftAppliedIndex?: string;
        }>('/v3/maintenance/status', {}),
        this.ask<{ header?: GatewayHeader; members?: GatewayMember[] }>('/v3/cluster/member/list', {}),
      ]);
      const leader = status.leader && status.leader !== '0' ? hex(status.leader) : null;
      // the keys are read before anything is kept, so one answer is kept whole: a reader that sees this member's
      // cluster id also sees the keys read with it (before, the ids came first and the keys one read later)
      const keys = opts.keys ? await this.readKeys() : this.cache.keys;
      // stopped, wiped or restored meanwhile: this answer is from the member that was, not from the one there now
      if (generation !== this.generation) return false;
      this.cache = {
        clusterId: hex(status.header?.cluster_id),
        memberId: hex(status.header?.member_id),
        members: (list.members ?? []).map(toMember),
        revision: Number(status.header?.revision ?? '0'),
        status: {
          memberId: hex(status.header?.member_id),
          dbSize: Number(status.dbSize ?? '0'),
          dbSizeInUse: Number(status.dbSizeInUse ?? status.dbSize ?? '0'),
          raftIndex: Number(status.raftIndex ?? '0'),
          raftAppliedIndex: Number(status.raftAppliedIndex ?? status.raftIndex ?? '0'),
          raftTerm: Number(status.raftTerm ?? '0'),
          serverVersion: status.version ?? '3.4.23',
          leaderId: leader,
        },
        keys,
      };
      return true;
    } catch {
      // the member is going away or busy; keep the last answer
      return false;
    }
  }

  /**
   * refresh(), asked again until the member answers, for as long as it serves and at most `budgetMs`: for the reads
   * whose answer is what the node shows from then on (a member stopped after the seed is never asked again; a member
   * whose membership changed keeps the old list until something asks it, and without quorum nothing does). False when
   * the member never answered in time (its last answer is kept).
   */
  async reread(opts: { keys?: boolean } = {}, budgetMs = READY_TIMEOUT_MS): Promise<boolean> {
    const deadline = Date.now() + budgetMs;
    for (;;) {
      if (await this.refresh(opts)) return true;
      if (!this.ready || !this.child || Date.now() >= deadline) return false;
      await sleep(200);
    }
  }

  private async readKeys(): Promise<Map<string, string>> {
    const answer = await this.ask<{ kvs?: { key: string; value?: string }[] }>(
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

  /** The membership as this member last listed it (RealEtcd). */
  abstract members(): EtcdMemberInfo[];

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
