/**
 * The built-in etcd model: one member's data as real bbolt files (written with src/etcd/writer), its state in memory.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { buildEtcdDatabase, buildEtcdSnapshot } from '../etcd/writer.js';
import {
  ETCD_SERVER_VERSION,
  EtcdRestoreError,
  fromSavedHistory,
  liveKeysOf,
  memberFor,
  randomMemberId,
  toSavedHistory,
  type EtcdAlarm,
  type EtcdBackend,
  type EtcdData,
  type EtcdLocalStatus,
  type EtcdMemberInfo,
  type MemberIdentity,
  type SavedEtcd,
} from './etcd-backend.js';
import { readEtcdContent, verifySnapshotFile } from './etcd-snapshot-read.js';

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
