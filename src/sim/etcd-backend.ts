/**
 * One simulated node's etcd, behind one small interface so that a later version can put a real `etcd` process there
 * without touching the node model or the wire. Quorum and leadership are decided by the cluster (they depend on the
 * other members); this interface is only what one member holds and does locally.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { BoltWalker, leafElement, openBolt, runWalk } from '../etcd/bbolt.js';
import type { BucketVisitor, LeafPage, TreeVisitor } from '../etcd/bbolt.js';
import { keyValueRanges } from '../etcd/status.js';
import { buildEtcdDatabase, buildEtcdSnapshot, type HistoryEvent } from '../etcd/writer.js';

export interface EtcdMemberInfo {
  /** 16 lowercase hex digits. */
  id: string;
  name: string;
  peerUrls: string[];
  clientUrls: string[];
  isLearner: boolean;
}

/** Who this member is when it creates or joins a cluster. */
export interface MemberIdentity {
  name: string;
  address: string;
}

export interface EtcdLocalStatus {
  memberId: string;
  dbSize: number;
  dbSizeInUse: number;
  raftIndex: number;
  raftAppliedIndex: number;
  raftTerm: number;
  serverVersion: string;
  /** The leader this member knows (a real etcd says; the built-in model leaves it to the cluster). */
  leaderId?: string | null;
}

/** A restore that etcd refused; `message` is etcd's own text. */
export class EtcdRestoreError extends Error {}

export interface EtcdBackend {
  /** The node's /var/lib/etcd. */
  readonly dataDir: string;
  /** /var/lib/etcd/member/snap/db (what `Copy` reads). */
  readonly dbPath: string;
  /** /var/lib/etcd has entries (Bootstrap's AlreadyExists check). */
  hasData(): boolean;
  isRunning(): boolean;
  start(): void;
  stop(): void;
  /** Removes /var/lib/etcd entirely. */
  wipe(): Promise<void>;
  /** etcd's snapshot restore into the empty data dir, as a new one-member cluster; throws EtcdRestoreError. */
  restore(snapshotPath: string, skipHashCheck: boolean, self: MemberIdentity): Promise<void>;
  /** A plain bootstrap: a new one-member cluster with no keys. */
  initialize(self: MemberIdentity): Promise<void>;
  /**
   * Joins the cluster `source` belongs to: becomes a member and receives a full copy of its data. `memberId`: the id
   * the cluster already gave this member (added as a learner before its process started).
   */
  join(source: EtcdBackend, self: MemberIdentity, memberId?: string): Promise<EtcdMemberInfo>;
  /**
   * A real member joins as a learner and is promoted by etcd itself (resolves true once promoted); the built-in model
   * has no such method, its membership records the learner flag instead.
   */
  promote?(): Promise<boolean>;
  /** Membership change replicated to this member (another member joined or was removed). */
  applyMembership(members: EtcdMemberInfo[]): Promise<void>;
  /** This member's local view of the membership (empty without data). */
  members(): EtcdMemberInfo[];
  memberId(): string | null;
  clusterId(): string | null;
  status(): EtcdLocalStatus;
  /** An API snapshot: the database plus its sha256 trailer (a real etcd answers asynchronously). */
  snapshot(): Buffer | Promise<Buffer>;
  /** Newest revision of the data, null without data. */
  revision(): number | null;
  /** Live keys and their values. */
  liveKeys(): Map<string, string>;
  /** Everything needed to rebuild this member (sim-state.json). */
  save(): SavedEtcd;
  /** A backend with a real member re-reads what it says (ids, membership, status; keys on request). */
  refresh?(opts?: { keys?: boolean }): Promise<void>;
  /**
   * The cluster's alarms as this member holds them (etcd keeps them in its backend's alarm bucket, written through
   * raft, so every member lists the same). Optional: a backend without it has none.
   */
  alarms?(): EtcdAlarm[];
  /** An alarm change replicated to this member (raised or disarmed through raft). */
  setAlarms?(alarms: EtcdAlarm[]): Promise<void>;
  /** etcd's defragment of this member's backend: the free pages go, the database shrinks to its in-use size. */
  defragment?(): Promise<void>;
}

/** An etcd alarm (etcdserverpb.AlarmMember): which member raised it and what. */
export interface EtcdAlarm {
  /** 16 lowercase hex digits. */
  memberId: string;
  alarm: 'NOSPACE' | 'CORRUPT';
}

export interface SavedEtcd {
  running: boolean;
  dirty: boolean;
  data: SavedEtcdData | null;
  /** Saved from a real etcd member (its data lives in its process's data directory, not here). */
  real?: true;
}

/** What one member holds (a scenario seeds it, a restore or join replaces it). */
export interface EtcdData {
  clusterId: string;
  memberId: string;
  members: EtcdMemberInfo[];
  history: HistoryEvent[];
  consistentIndex: number;
  raftTerm: number;
  /** The cluster's active alarms (the alarm bucket). */
  alarms?: EtcdAlarm[];
  /**
   * Pages freed by compaction but still in the file (etcd returns them to the filesystem only on defragment): dbSize is
   * the database's in-use size plus these.
   */
  freeBytes?: number;
}

/** A history event as sim-state.json holds it: values base64. */
export type SavedHistoryEvent =
  | { kind: 'put'; revision: number; key: string; value: string; createRevision: number; version: number }
  | { kind: 'delete'; revision: number; key: string };

export const toSavedHistory = (h: readonly HistoryEvent[]): SavedHistoryEvent[] =>
  h.map((e) => (e.kind === 'put' ? { ...e, value: Buffer.from(e.value).toString('base64') } : { ...e }));
export const fromSavedHistory = (h: readonly SavedHistoryEvent[]): HistoryEvent[] =>
  h.map((e) => (e.kind === 'put' ? { ...e, value: Buffer.from(e.value, 'base64') } : { ...e }));

interface SavedEtcdData extends Omit<EtcdData, 'history'> {
  /** Values base64. */
  history: SavedHistoryEvent[];
}

/** Talos 1.11 ships etcd 3.6. */
export const ETCD_SERVER_VERSION = '3.6.4';

export const randomMemberId = (): string => {
  const id = randomBytes(8);
  id[0] = (id[0] ?? 0) | 0x10; // never a leading zero digit, so ids look like etcd's
  return id.toString('hex');
};

export const peerUrl = (address: string): string => `https://${address}:2380`;
export const clientUrl = (address: string): string => `https://${address}:2379`;

export function memberFor(self: MemberIdentity, id = randomMemberId()): EtcdMemberInfo {
  return {
    id,
    name: self.name,
    peerUrls: [peerUrl(self.address)],
    clientUrls: [clientUrl(self.address)],
    isLearner: false,
  };
}

/** Live keys from a history: puts add, tombstones remove. */
export function liveKeysOf(history: readonly HistoryEvent[]): Map<string, string> {
  const keys = new Map<string, string>();
  for (const event of history) {
    if (event.kind === 'put') keys.set(event.key, Buffer.from(event.value).toString('utf8'));
    else keys.delete(event.key);
  }
  return keys;
}

/** Go's %v of a []byte: decimal bytes in brackets, what etcd prints in its sha256 mismatch error. */
const goBytes = (bytes: Uint8Array): string => `[${Array.from(bytes).join(' ')}]`;

/** etcd's restore rules (etcd-snapshot-facts §4), with its texts. Returns the database without any trailer. */
function verifySnapshotFile(file: Buffer, path: string, skipHashCheck: boolean): Buffer {
  if (file.length < 32) throw new EtcdRestoreError(`seek ${path}: invalid argument`);
  const hasHash = file.length % 512 === 32;
  if (!hasHash && !skipHashCheck) throw new EtcdRestoreError('snapshot missing hash but --skip-hash-check=false');
  const db = hasHash ? file.subarray(0, file.length - 32) : file;
  if (hasHash && !skipHashCheck) {
    const trailer = file.subarray(file.length - 32);
    const computed = createHash('sha256').update(db).digest();
    if (!computed.equals(trailer))
      throw new EtcdRestoreError(`expected sha256 ${goBytes(trailer)}, got ${goBytes(computed)}`);
  }
  return db;
}

/** `key` bucket keys: main revision (8 bytes, big-endian) '_' sub revision (8), plus 't' for a tombstone. */
const TOMBSTONE_KEY_SIZE = 18;
const TOMBSTONE_MARK = 0x74;

/**
 * mvccpb.KeyValue's create_revision (field 2) and version (field 4). keyValueRanges (src/etcd) has already checked
 * the message and found its key and value; these two counters are all the simulator needs beyond them.
 */
function keyValueCounters(buf: Buffer, start: number, end: number): { createRevision: number; version: number } {
  const counters = { createRevision: 0, version: 0 };
  let at = start;
  const varint = (): number => {
    let value = 0;
    for (let scale = 1; at < end; scale *= 128) {
      const byte = buf[at++] as number;
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) break;
    }
    return value;
  };
  while (at < end) {
    const tag = varint();
    const wireType = tag & 7;
    if (wireType === 2) {
      const length = varint(); // read before `at` is: `at += varint()` would lose the varint's own bytes
      at += length;
    } else if (wireType === 1) {
      at += 8;
    } else if (wireType === 5) {
      at += 4;
    } else {
      const value = varint();
      if (tag >>> 3 === 2) counters.createRevision = value;
      if (tag >>> 3 === 4) counters.version = value;
    }
  }
  return counters;
}

/** Collects the `key` bucket as history (revision order) and `meta/consistent_index` while the toolkit's walker runs. */
class EtcdContentVisitor implements TreeVisitor {
  readonly history: HistoryEvent[] = [];
  consistentIndex = 0;
  malformed = 0;
  private readonly keyBucket: BucketVisitor = { leaf: (page) => this.keys(page) };
  private readonly metaBucket: BucketVisitor = { leaf: (page) => this.meta(page) };
  readonly seen = new Set<string>();

  bucket(buf: Buffer, nameStart: number, nameEnd: number, isBucket: boolean): BucketVisitor | null {
    const name = buf.toString('latin1', nameStart, nameEnd);
    if (isBucket) this.seen.add(name);
    if (!isBucket) return null;
    return name === 'key' ? this.keyBucket : name === 'meta' ? this.metaBucket : null;
  }

  private keys(page: LeafPage): void {
    for (let i = 0; i < page.count; i++) {
      const { keyStart: revStart, keySize: revSize, valueSize } = leafElement(page, i);
      const buf = page.buf;
      const kvStart = revStart + revSize;
      const kvEnd = kvStart + valueSize;
      const ranges = revSize >= 8 ? keyValueRanges(buf, kvStart, kvEnd) : null;
      if (ranges === null || ranges.keyStart < 0) {
        this.malformed++;
        continue;
      }
      const revision = Number(buf.readBigInt64BE(revStart));
      const key = buf.toString('utf8', ranges.keyStart, ranges.keyEnd);
      if (revSize === TOMBSTONE_KEY_SIZE && buf[revStart + TOMBSTONE_KEY_SIZE - 1] === TOMBSTONE_MARK) {
        this.history.push({ kind: 'delete', revision, key });
        continue;
      }
      // Copied: the walker reuses its page buffers.
      const value =
        ranges.valueStart < 0 ? Buffer.alloc(0) : Buffer.from(buf.subarray(ranges.valueStart, ranges.valueEnd));
      this.history.push({ kind: 'put', revision, key, value, ...keyValueCounters(buf, kvStart, kvEnd) });
    }
  }

  private meta(page: LeafPage): void {
    for (let i = 0; i < page.count; i++) {
      const { keyStart, keySize, valueSize } = leafElement(page, i);
      if (valueSize === 8 && page.buf.toString('latin1', keyStart, keyStart + keySize) === 'consistent_index') {
        this.consistentIndex = Number(page.buf.readBigUInt64BE(keyStart + keySize));
      }
    }
  }
}

/**
 * The etcd content of the database in the first `dataEnd` bytes of a file (a snapshot's trailer excluded), read with
 * the snapshot toolkit's bbolt walker (src/etcd/bbolt.ts), which checks the structure as it goes. Returns the reason
 * etcd would give when it cannot use the file, instead of content.
 */
async function readEtcdContent(
  path: string,
  dataEnd: number,
): Promise<{ history: HistoryEvent[]; consistentIndex: number } | { problem: string }> {
  const handle = await open(path, 'r');
  try {
    // bbolt's own error for a file that is not a database; the walker's sentences say more for damaged ones.
    const opened = openBolt(handle.fd, dataEnd);
    if (!opened.ok) return { problem: 'invalid database' };
    const visitor = new EtcdContentVisitor();
    const walk = await runWalk(new BoltWalker(handle.fd, dataEnd, opened.db, visitor));
    const firstProblem = walk.problems[0];
    if (firstProblem !== undefined) return { problem: firstProblem };
    if (!visitor.seen.has('key') || !visitor.seen.has('meta'))
      return { problem: 'not an etcd database (no key or meta bucket)' };
    if (visitor.malformed > 0)
      return { problem: `${visitor.malformed} values in the key bucket are not etcd key/values` };
    return { history: visitor.history, consistentIndex: visitor.consistentIndex };
  } finally {
    await handle.close();
  }
}

/** The built-in model: etcd's data as real bbolt files (written with src/etcd/writer), state in memory. */
export class ModelEtcd implements EtcdBackend {
  readonly dbPath: string;
  private data: EtcdData | null = null;
  private running = false;
  /** A failed restore leaves a partial member/snap/db behind, as etcd does: the data dir is not empty. */
  private dirty = false;

  constructor(
    readonly dataDir: string,
    /** The etcd release the node runs: what EtcdStatus reports and the storage version its database carries. */
    private readonly serverVersion = ETCD_SERVER_VERSION,
  ) {
    this.dbPath = join(dataDir, 'member', 'snap', 'db');
  }

  /** Creates a member with existing data (a scenario's starting state). */
  async seed(content: EtcdData): Promise<void> {
    this.data = { ...content, members: content.members.map((m) => ({ ...m })) };
    this.dirty = false;
    await this.persist();
  }

  hasData(): boolean {
    return this.data !== null || this.dirty;
  }

  isRunning(): boolean {
    return this.running;
  }

  start(): void {
    this.running = true;
  }

  stop(): void {
    this.running = false;
  }

  async wipe(): Promise<void> {
    this.running = false;
    this.data = null;
    this.dirty = false;
    await rm(this.dataDir, { recursive: true, force: true });
  }

  async restore(snapshotPath: string, skipHashCheck: boolean, self: MemberIdentity): Promise<void> {
    const file = await readFile(snapshotPath);
    // etcd copies the file into member/snap/db before it checks anything, so a refusal leaves the dir non-empty.
    await mkdir(dirname(this.dbPath), { recursive: true });
    await writeFile(this.dbPath, file);
    this.dirty = true;
    const db = verifySnapshotFile(file, snapshotPath, skipHashCheck);
    const content = await readEtcdContent(snapshotPath, db.length);
    if ('problem' in content) throw new EtcdRestoreError(`cannot open database at ${this.dbPath} (${content.problem})`);
    const member = memberFor(self);
    this.data = {
      clusterId: randomMemberId(),
      memberId: member.id,
      members: [member],
      history: content.history,
      // etcd restore starts raft afresh: the applied index is the consistent index it wrote, plus one conf change.
      consistentIndex: Math.max(1, content.consistentIndex) + 1,
      raftTerm: 2,
    };
    this.dirty = false;
    await this.persist();
  }

  async initialize(self: MemberIdentity): Promise<void> {
    const member = memberFor(self);
    this.data = {
      clusterId: randomMemberId(),
      memberId: member.id,
      members: [member],
      history: [],
      consistentIndex: 1,
      raftTerm: 2,
    };
    this.dirty = false;
    await this.persist();
  }

  async join(source: EtcdBackend, self: MemberIdentity, memberId?: string): Promise<EtcdMemberInfo> {
    if (!(source instanceof ModelEtcd) || !source.data) throw new Error('etcdserver: no leader');
    const from = source.data;
    const listed = from.members.find((m) => m.id === memberId);
    const member = listed ? { ...listed } : memberFor(self, memberId);
    const members = [...from.members.filter((m) => m.name !== self.name && m.id !== member.id), member];
    this.data = {
      clusterId: from.clusterId,
      memberId: member.id,
      members,
      history: from.history.map((e) => ({ ...e })),
      consistentIndex: from.consistentIndex + 1,
      raftTerm: from.raftTerm,
      // a joining member receives the leader's snapshot: the alarms come with it, the free pages do not
      alarms: (from.alarms ?? []).map((a) => ({ ...a })),
    };
    await this.persist();
    return member;
  }

  async applyMembership(members: EtcdMemberInfo[]): Promise<void> {
    if (!this.data) return;
    this.data.members = members.map((m) => ({ ...m }));
    this.data.consistentIndex += 1;
    await this.persist();
  }

  members(): EtcdMemberInfo[] {
    return this.data
      ? this.data.members.map((m) => ({ ...m, peerUrls: [...m.peerUrls], clientUrls: [...m.clientUrls] }))
      : [];
  }

  memberId(): string | null {
    return this.data?.memberId ?? null;
  }

  clusterId(): string | null {
    return this.data?.clusterId ?? null;
  }

  alarms(): EtcdAlarm[] {
    return (this.data?.alarms ?? []).map((a) => ({ ...a }));
  }

  async setAlarms(alarms: EtcdAlarm[]): Promise<void> {
    if (!this.data) return;
    this.data.alarms = alarms.map((a) => ({ ...a }));
    this.data.consistentIndex += 1;
    await this.persist();
  }

  /**
   * etcd's defragment rewrites the backend into a new file without the free pages (etcd-io/etcd:
   * server/storage/backend/backend.go@v3.6.14:466 defrag): dbSize falls to dbSizeInUse. The data and the index stay.
   */
  async defragment(): Promise<void> {
    if (!this.data) return;
    this.data.freeBytes = 0;
    await this.persist();
  }

  status(): EtcdLocalStatus {
    const inUse = this.databaseSize();
    return {
      memberId: this.data?.memberId ?? '0000000000000000',
      dbSize: inUse + (this.data?.freeBytes ?? 0),
      dbSizeInUse: inUse,
      raftIndex: this.data?.consistentIndex ?? 0,
      raftAppliedIndex: this.data?.consistentIndex ?? 0,
      raftTerm: this.data?.raftTerm ?? 0,
      serverVersion: this.serverVersion,
    };
  }

  snapshot(): Buffer {
    if (!this.data) throw new Error('etcd has no data');
    return buildEtcdSnapshot(this.content(this.data));
  }

  revision(): number | null {
    if (!this.data) return null;
    return this.data.history[this.data.history.length - 1]?.revision ?? 0;
  }

  liveKeys(): Map<string, string> {
    return liveKeysOf(this.data?.history ?? []);
  }

  save(): SavedEtcd {
    const data = this.data;
    return {
      running: this.running,
      dirty: this.dirty,
      data: data
        ? {
            ...data,
            history: toSavedHistory(data.history),
          }
        : null,
    };
  }

  async load(saved: SavedEtcd): Promise<void> {
    this.running = saved.running;
    this.dirty = saved.dirty;
    const data = saved.data;
    this.data = data
      ? {
          ...data,
          history: fromSavedHistory(data.history),
        }
      : null;
    if (this.data) await this.persist();
  }

  private content(data: EtcdData) {
    // etcd 3.6+ records the storage version (major.minor.0) in meta and the cluster version in cluster
    const [major, minor] = this.serverVersion.split('.');
    return {
      clusterVersion: `${major}.${minor}.0`,
      storageVersion: `${major}.${minor}.0`,
      history: data.history,
      consistentIndex: data.consistentIndex,
      members: data.members.map((m) => ({ id: m.id, name: m.name, peerURLs: m.peerUrls, clientURLs: m.clientUrls })),
    };
  }

  /**
   * dbSize without rebuilding the database each time: the cluster reads every member's status several times per
   * RPC (membership, quorum, leader), so a rebuild per call made each RPC O(members × database) and a 50-node
   * simulator too slow to answer within status's deadlines (bench/fanout.mjs). Rebuilt when the data changes.
   */
  private sizeMemo: {
    data: EtcdData;
    history: unknown;
    members: unknown;
    length: number;
    index: number;
    size: number;
  } | null = null;

  private databaseSize(): number {
    const data = this.data;
    if (!data) return 0;
    const m = this.sizeMemo;
    if (
      m &&
      m.data === data &&
      m.history === data.history &&
      m.members === data.members &&
      m.length === data.history.length &&
      m.index === data.consistentIndex
    )
      return m.size;
    return this.databaseBytes().length;
  }

  /** Builds the database and remembers its size, so status() after a persist() does not build it again. */
  private databaseBytes(): Buffer {
    const data = this.data;
    if (!data) return Buffer.alloc(0);
    const bytes = buildEtcdDatabase(this.content(data));
    this.sizeMemo = {
      data,
      history: data.history,
      members: data.members,
      length: data.history.length,
      index: data.consistentIndex,
      size: bytes.length,
    };
    return bytes;
  }

  /** Keeps member/snap/db on disk equal to the model, so Copy serves a real file. */
  private async persist(): Promise<void> {
    await mkdir(dirname(this.dbPath), { recursive: true });
    try {
      await writeFile(this.dbPath, this.databaseBytes());
    } catch (error) {
      // The directory went away meanwhile (a wipe, or the simulator's folder removed once it stopped): the model in
      // memory is the truth and the file only what Copy serves, so there is nothing left to mirror.
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
}
