/**
 * One simulated node's etcd, behind one small interface so that a later version can put a real `etcd` process there
 * without touching the node model or the wire. Quorum and leadership are decided by the cluster (they depend on the
 * other members); this interface is only what one member holds and does locally. The built-in model is ModelEtcd
 * (model-etcd.ts), which reads restored snapshots with etcd-snapshot-read.ts; the real process is RealEtcd.
 */
import { randomBytes } from 'node:crypto';
import type { HistoryEvent } from '../etcd/writer.js';

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
  refresh?(opts?: { keys?: boolean }): Promise<unknown>;
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
