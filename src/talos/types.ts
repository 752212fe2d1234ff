/**
 * The Talos client's public shape, shared by everything above it (src/etcd acquisition, machines/, commands).
 * Domain values only: 64-bit ids are 16-hex-digit strings and raft indices are decimal strings or bigint,
 * never JS numbers.
 */
import type { Readable } from 'node:stream';

/** A gRPC failure reduced to what the user and the decision logic need. `code` is the numeric grpc status. */
export interface RpcFailure {
  code: number;
  /** The gRPC status name, e.g. "FailedPrecondition", "AlreadyExists", "DeadlineExceeded". */
  codeName: string;
  /** The bare message as the node sent it (e.g. "etcd data directory is not empty"), never a gRPC debug string. */
  message: string;
  /**
   * Set when the failure happened on the way to the endpoint (the connection, TLS), not on the node: "host:port" of
   * the endpoint, so the sentence names what the user must fix (-e, the tunnel) rather than the node.
   */
  endpoint?: string;
  /** The MachineService/COSI method that failed (e.g. "Version", "EtcdStatus"), when known. */
  method?: string;
  /** Set when a data stream was stopped because not one byte arrived within this limit, in ms (first-byte watchdog). */
  silentMs?: number;
}

/** One node's answer in a one-to-many (`nodes`) call: a failed node never hides the answers of the others. */
export type NodeResult<T> = { node: string; ok: true; value: T } | { node: string; ok: false; error: RpcFailure };

export interface CallOptions {
  /** Deadline for this call in ms (every unary call has one; the client applies a default). */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface VersionInfo {
  tag: string;
  sha: string;
  goVersion: string;
  os: string;
  arch: string;
  platform?: { name: string; mode: string };
  rbac?: boolean;
}

export interface EtcdMember {
  /** 16 lowercase hex digits, as talosctl prints it (`%016x`). */
  id: string;
  hostname: string;
  peerUrls: string[];
  clientUrls: string[];
  isLearner: boolean;
}

export interface EtcdMemberStatus {
  /** 16 lowercase hex digits. */
  memberId: string;
  protocolVersion: string;
  storageVersion: string;
  dbSize: bigint;
  dbSizeInUse: bigint;
  /** 16 hex digits; "0000000000000000" means no leader. */
  leader: string;
  raftIndex: bigint;
  raftTerm: bigint;
  raftAppliedIndex: bigint;
  errors: string[];
  isLearner: boolean;
}

/** An etcd alarm: NOSPACE (the database hit its quota, the cluster is read-only) or CORRUPT. */
export type EtcdAlarmType = 'NONE' | 'NOSPACE' | 'CORRUPT';

export interface EtcdMemberAlarm {
  /** 16 lowercase hex digits: the member that raised it */
  memberId: string;
  alarm: EtcdAlarmType;
}

export interface ServiceEvent {
  msg: string;
  state: string;
  /** ms since epoch, or null when the node sent none */
  ts: number | null;
}

export interface ServiceInfo {
  id: string;
  /** Talos service state string: Running, Preparing, Waiting, Failed, Finished, … */
  state: string;
  /** oldest first, as the node sends them */
  events: ServiceEvent[];
  health: { unknown: boolean; healthy: boolean; lastMessage: string; lastChange: number | null };
}

export type MachineType = 'unknown' | 'init' | 'controlplane' | 'worker';

/**
 * The machine's stages, in RuntimeMachineStage's numbering (api/resource/definitions/enums/enums.proto@v1.13.9:9-19),
 * each as MachineStatuses.runtime.talos.dev runtime/machine names it in YAML (machinestage.go@v1.13.9:16-24).
 */
export const MACHINE_STAGES = [
  'unknown',
  'booting',
  'installing',
  'maintenance',
  'running',
  'rebooting',
  'shutting down',
  'resetting',
  'upgrading',
] as const;

export type MachineStage = (typeof MACHINE_STAGES)[number];

/** A machine of the cluster as discovery lists it (COSI Members.cluster.talos.dev): workers included. */
export interface ClusterMember {
  /** the resource id (Talos uses the node's hostname) */
  id: string;
  hostname: string;
  /** the node's addresses, as it announced them */
  addresses: string[];
  machineType: MachineType;
}

export interface ResetOptions {
  graceful: boolean;
  reboot: boolean;
  /** partition / volume labels to wipe, e.g. ["EPHEMERAL"] or ["EPHEMERAL", "ETCD"] */
  labels: string[];
}

export type ApplyMode = 'REBOOT' | 'AUTO' | 'NO_REBOOT' | 'STAGED' | 'TRY';

export interface ApplyResult {
  mode: ApplyMode;
  modeDetails: string;
  warnings: string[];
}

/** Where a node keeps /var/lib/etcd: on EPHEMERAL (directory, or Talos ≤ 1.9) or a dedicated ETCD partition. */
export type EtcdVolumeKind = 'ephemeral' | 'partition';

export interface TransferProgress {
  bytes: number;
  /** total when known (uploads), else undefined */
  total?: number;
}

/**
 * The authenticated (mTLS) client, talking through one endpoint (with failover) to nodes named by address.
 * Machine RPCs use `nodes` metadata and return per-node results; COSI uses `node`.
 */
export interface TalosClient {
  /** The endpoint that answered last, "host:port". */
  readonly endpointInUse: string | undefined;

  version(nodes: string[], opts?: CallOptions): Promise<NodeResult<VersionInfo>[]>;
  serviceList(nodes: string[], opts?: CallOptions): Promise<NodeResult<ServiceInfo[]>[]>;
  etcdMemberList(nodes: string[], queryLocal: boolean, opts?: CallOptions): Promise<NodeResult<EtcdMember[]>[]>;
  etcdStatus(nodes: string[], opts?: CallOptions): Promise<NodeResult<EtcdMemberStatus>[]>;
  etcdLeaveCluster(node: string, opts?: CallOptions): Promise<NodeResult<void>>;
  etcdRemoveMemberById(node: string, memberIdHex: string, opts?: CallOptions): Promise<NodeResult<void>>;
  etcdForfeitLeadership(node: string, opts?: CallOptions): Promise<NodeResult<{ member: string }>>;
  /** The cluster's active etcd alarms as each node's etcd reports them. */
  etcdAlarmList(nodes: string[], opts?: CallOptions): Promise<NodeResult<EtcdMemberAlarm[]>[]>;
  /** Disarms every active alarm of the cluster through this node's etcd; resolves with the alarms it disarmed. */
  etcdAlarmDisarm(node: string, opts?: CallOptions): Promise<NodeResult<EtcdMemberAlarm[]>>;
  /** Defragments this node's etcd database only (blocks its etcd while it runs: one node at a time). */
  etcdDefragment(node: string, opts?: CallOptions): Promise<NodeResult<void>>;
  /** Restarts one service (e.g. "etcd") on this node; resolves with the node's reply text. */
  serviceRestart(node: string, id: string, opts?: CallOptions): Promise<NodeResult<string>>;

  /** Consistent snapshot: the concatenated bytes of every message, metadata.error checked on each. */
  /**
   * The snapshot stream. `reuseBuffers`: the chunks may be views of a few reused buffers, each valid only until the
   * next chunk is asked for (for a reader that writes each chunk before asking for the next); a client may ignore it.
   */
  etcdSnapshot(
    node: string,
    opts?: { signal?: AbortSignal | undefined; reuseBuffers?: boolean },
  ): AsyncIterable<Buffer>;
  /**
   * The node's boot id (/proc/sys/kernel/random/boot_id through Read, whitespace trimmed, as talosctl reads it:
   * cmd/talosctl/pkg/talos/action/tracker.go@v1.13.9:356-378): a new one at every boot, so comparing two says whether
   * the node rebooted in between without comparing clocks. Read needs os:admin (PermissionDenied otherwise). Optional:
   * a client without it gives no boot id, and the checks fall back to the services' start times.
   */
  bootId?(node: string, opts?: CallOptions): Promise<NodeResult<string>>;
  /**
   * The machine's stage (COSI MachineStatuses.runtime.talos.dev runtime/machine, kept by machined's
   * MachineStatusController from its sequence events: controllers/runtime/machine_status.go@v1.13.9:395-430), e.g.
   * 'resetting' from the moment a Reset's sequence starts until the node goes down. Optional, as bootId.
   */
  machineStage?(node: string, opts?: CallOptions): Promise<NodeResult<MachineStage>>;
  /** Copy of a path as the node's .tar.gz stream (raw bytes of the archive). */
  copy(node: string, rootPath: string, opts?: { signal?: AbortSignal }): AsyncIterable<Buffer>;
  /** Upload a snapshot (client stream). Resolves with the node's answer. */
  etcdRecover(
    node: string,
    source: Readable,
    opts?: {
      signal?: AbortSignal;
      chunkSize?: number;
      onProgress?: (p: TransferProgress) => void;
      totalBytes?: number;
    },
  ): Promise<NodeResult<void>>;
  bootstrap(
    node: string,
    req: { recoverEtcd: boolean; recoverSkipHashCheck: boolean },
    opts?: CallOptions,
  ): Promise<NodeResult<void>>;
  reset(node: string, req: ResetOptions, opts?: CallOptions): Promise<NodeResult<{ actorId: string }>>;
  reboot(node: string, opts?: CallOptions): Promise<NodeResult<{ actorId: string }>>;
  applyConfiguration(
    node: string,
    req: { data: Buffer; mode: ApplyMode; dryRun?: boolean },
    opts?: CallOptions,
  ): Promise<NodeResult<ApplyResult>>;

  /** COSI (with `node` metadata): the active machine configuration (yaml_spec), os:admin only. */
  machineConfig(node: string, opts?: CallOptions): Promise<NodeResult<string>>;
  machineType(node: string, opts?: CallOptions): Promise<NodeResult<MachineType>>;
  /** COSI VolumeStatuses runtime/ETCD: NotFound or type directory → ephemeral; partition → partition. */
  etcdVolume(node: string, opts?: CallOptions): Promise<NodeResult<EtcdVolumeKind>>;
  /**
   * COSI HostnameStatuses network/hostname: the machine's own hostname, which it answers whether or not etcd serves
   * (a member list needs a leader). Optional: a client without it leaves the name to the member list.
   */
  hostname?(node: string, opts?: CallOptions): Promise<NodeResult<string>>;
  /**
   * COSI List of Members.cluster.talos.dev in namespace cluster: every machine discovery knows, workers included
   * (empty when discovery is disabled). Optional: a client without it cannot list workers.
   */
  clusterMembers?(node: string, opts?: CallOptions): Promise<NodeResult<ClusterMember[]>>;

  close(): void;
}

/** A client for a blank node in maintenance mode: server-only TLS, no node metadata. */
export interface MaintenanceClient {
  /** SHA-256 fingerprint of the server certificate's SPKI, base64 as talosctl's --cert-fingerprint takes it. */
  readonly serverFingerprint: string;
  applyConfiguration(
    req: { data: Buffer; mode: ApplyMode; dryRun?: boolean },
    opts?: CallOptions,
  ): Promise<ApplyResult>;
  machineType(opts?: CallOptions): Promise<MachineType>;
  close(): void;
}
