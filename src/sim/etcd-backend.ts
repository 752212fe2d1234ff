/**
 * One simulated node's etcd, behind one small interface so that a later version can put a real `etcd` process there
 * without touching the node model or the wire. Quorum and leadership are decided by the cluster (they depend on the
 * other members); this interface is only what one member holds and does locally.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { buildEtcdDatabase, buildEtcdSnapshot, type HistoryEvent } from '../etcd/writer.js';
import { CorruptDatabase, readEtcdContent } from './snapshot-read.js';

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
  /** Joins the cluster `source` belongs to: becomes a member and receives a full copy of its data. */
  join(source: EtcdBackend, self: MemberIdentity): Promise<EtcdMemberInfo>;
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
}

export interface SavedEtcd {
  running: boolean;
  dirty: boolean;
  data: SavedEtcdData | null;
  /** Saved from a real etcd member (its data lives in its process's data directory, not here). */
  real?: true;
}

interface EtcdData {
  clusterId: string;
  memberId: string;
  members: EtcdMemberInfo[];
  history: HistoryEvent[];
  consistentIndex: number;
  raftTerm: number;
}

type SavedHistoryEvent =
  | { kind: 'put'; revision: number; key: string; value: string; createRevision: number; version: number }
  | { kind: 'delete'; revision: number; key: string };

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

/** The built-in model: etcd's data as real bbolt files (written with src/etcd/writer), state in memory. */
export class ModelEtcd implements EtcdBackend {
  readonly dbPath: string;
  private data: EtcdData | null = null;
  private running = false;
  /** A failed restore leaves a partial member/snap/db behind, as etcd does: the data dir is not empty. */
  private dirty = false;

  constructor(readonly dataDir: string) {
    this.dbPath = join(dataDir, 'member', 'snap', 'db');
  }

  /** Creates a member with existing data (a scenario's starting state). */
  async seed(content: {
    clusterId: string;
    memberId: string;
    members: EtcdMemberInfo[];
    history: HistoryEvent[];
    consistentIndex: number;
    raftTerm: number;
  }): Promise<void> {
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
    let content;
    try {
      content = readEtcdContent(Buffer.from(db));
    } catch (error) {
      const reason = error instanceof CorruptDatabase ? error.message : 'invalid database';
      throw new EtcdRestoreError(`cannot open database at ${this.dbPath} (${reason})`, { cause: error });
    }
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

  async join(source: EtcdBackend, self: MemberIdentity): Promise<EtcdMemberInfo> {
    if (!(source instanceof ModelEtcd) || !source.data) throw new Error('etcdserver: no leader');
    const from = source.data;
    const member = memberFor(self);
    const members = [...from.members.filter((m) => m.name !== self.name), member];
    this.data = {
      clusterId: from.clusterId,
      memberId: member.id,
      members,
      history: from.history.map((e) => ({ ...e })),
      consistentIndex: from.consistentIndex + 1,
      raftTerm: from.raftTerm,
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

  status(): EtcdLocalStatus {
    const size = this.databaseSize();
    return {
      memberId: this.data?.memberId ?? '0000000000000000',
      dbSize: size,
      dbSizeInUse: Math.round(size * 0.8),
      raftIndex: this.data?.consistentIndex ?? 0,
      raftAppliedIndex: this.data?.consistentIndex ?? 0,
      raftTerm: this.data?.raftTerm ?? 0,
      serverVersion: ETCD_SERVER_VERSION,
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
            history: data.history.map((e) =>
              e.kind === 'put' ? { ...e, value: Buffer.from(e.value).toString('base64') } : { ...e },
            ),
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
          history: data.history.map((e) =>
            e.kind === 'put' ? { ...e, value: Buffer.from(e.value, 'base64') } : { ...e },
          ),
        }
      : null;
    if (this.data) await this.persist();
  }

  private content(data: EtcdData) {
    return {
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
    await writeFile(this.dbPath, this.databaseBytes());
  }
}
