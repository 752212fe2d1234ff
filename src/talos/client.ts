/**
 * The Talos machine API client (TalosClient of ./types.ts) over @grpc/grpc-js.
 *
 * Targeting follows talosctl (talos-api-facts §4.1): MachineService calls carry `nodes` metadata, one header entry
 * per node, and apid answers per node inside the response (`metadata.hostname`, `metadata.error/status`); COSI calls
 * carry `node`. Every unary call has a deadline; every call can be cancelled with an AbortSignal. How a call is made
 * (deadline, fan-out per node, failures) is in ./client-calls.ts, the COSI reads in ./client-cosi.ts, the etcd calls
 * in ./client-etcd.ts, the wire shapes in ./wire.ts, the snapshot, copy and upload streams in ./data-calls.ts.
 */
import type { Readable } from 'node:stream';
import type { GlobalFlags } from './global-flags.js';
import { channelOptions, EndpointPool, TalosChannelCredentials } from './connection.js';
import { DataCalls, type DataStreamOptions, type RecoverOptions } from './data-calls.js';
import { TalosCalls } from './client-calls.js';
import * as cosi from './client-cosi.js';
import * as etcd from './client-etcd.js';
import type { Version__Output } from './generated/machine/Version.js';
import { toServiceInfo, toVersionInfo } from './mapping.js';
import { loadTalosconfig, type TalosContextConfig } from './talosconfig.js';
import type {
  ApplyMode,
  ApplyResult,
  CallOptions,
  ClusterMember,
  EtcdMember,
  EtcdMemberAlarm,
  EtcdMemberStatus,
  EtcdVolumeKind,
  MachineStage,
  MachineType,
  NodeResult,
  ResetOptions,
  ServiceInfo,
  TalosClient,
  VersionInfo,
} from './types.js';
import {
  applyRequest,
  MISSING,
  okVoid,
  resetRequest,
  toActorId,
  toApplyResult,
  voidResult,
  withoutDefaults,
  type WithMetadata,
} from './wire.js';

export { DEFAULT_UPLOAD_CHUNK_BYTES, type DataStreamOptions } from './data-calls.js';
export { TalosRpcError } from './errors.js';
export { applyRequest, copyRequest, MISSING, resetRequest, unwrapNodeResults, withoutDefaults } from './wire.js';

export interface TalosClientOptions {
  /** Deadline of a unary call when the caller gives none. */
  defaultTimeoutMs?: number;
  /** How long to wait for an endpoint to connect before trying the next one. */
  connectTimeoutMs?: number;
  /** A stream that sends nothing for this long is cut and reported as DeadlineExceeded. */
  streamIdleTimeoutMs?: number;
  /**
   * An EtcdSnapshot that has sent no byte this long is stopped: a node whose etcd does not serve keeps it open
   * forever (talos#14212), and the next source (a raw copy, another member) is the way on.
   */
  snapshotFirstByteTimeoutMs?: number;
}

export const DEFAULT_TIMEOUT_MS = 15_000;
export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
export const DEFAULT_STREAM_IDLE_TIMEOUT_MS = 60_000;
export const DEFAULT_SNAPSHOT_FIRST_BYTE_TIMEOUT_MS = 20_000;

/** The kernel's id of the running boot (talosctl reads the same file: tracker.go@v1.13.9:359). */
const BOOT_ID_PATH = '/proc/sys/kernel/random/boot_id';

export class GrpcTalosClient implements TalosClient {
  private readonly pool: EndpointPool;
  private readonly calls: TalosCalls;
  private readonly dataCalls: DataCalls;

  constructor(
    readonly config: TalosContextConfig,
    options: TalosClientOptions = {},
  ) {
    const mutual = { caPem: config.caPem, certPem: config.certPem, keyPem: config.keyPem };
    this.pool = new EndpointPool(
      config.endpoints,
      (endpoint) => new TalosChannelCredentials({ expectedName: config.serverName ?? endpoint.host, mutual }),
      channelOptions(config.serverName),
      { connectTimeoutMs: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS },
    );
    this.calls = new TalosCalls(this.pool, config, options.defaultTimeoutMs ?? DEFAULT_TIMEOUT_MS);
    this.dataCalls = new DataCalls({
      pool: this.pool,
      config,
      streamIdleTimeoutMs: options.streamIdleTimeoutMs ?? DEFAULT_STREAM_IDLE_TIMEOUT_MS,
      snapshotFirstByteTimeoutMs: options.snapshotFirstByteTimeoutMs ?? DEFAULT_SNAPSHOT_FIRST_BYTE_TIMEOUT_MS,
      callFailure: (error, signal) => this.calls.callFailure(error, signal),
    });
  }

  get endpointInUse(): string | undefined {
    return this.pool.endpointInUse;
  }

  clusterMembers(node: string, opts: CallOptions = {}): Promise<NodeResult<ClusterMember[]>> {
    return cosi.clusterMembers(this.calls, node, opts);
  }

  version(nodes: string[], opts: CallOptions = {}): Promise<NodeResult<VersionInfo>[]> {
    return this.calls.fanOut('Version', {}, nodes, (m: Version__Output) => toVersionInfo(m) ?? MISSING, {
      ...opts,
      idempotent: true,
    });
  }

  serviceList(nodes: string[], opts: CallOptions = {}): Promise<NodeResult<ServiceInfo[]>[]> {
    return this.calls.fanOut(
      'ServiceList',
      {},
      nodes,
      (m: WithMetadata & { services: Parameters<typeof toServiceInfo>[0][] }) => m.services.map(toServiceInfo),
      { ...opts, idempotent: true },
    );
  }

  etcdMemberList(nodes: string[], queryLocal: boolean, opts: CallOptions = {}): Promise<NodeResult<EtcdMember[]>[]> {
    return etcd.memberList(this.calls, nodes, queryLocal, opts);
  }

  etcdStatus(nodes: string[], opts: CallOptions = {}): Promise<NodeResult<EtcdMemberStatus>[]> {
    return etcd.status(this.calls, nodes, opts);
  }

  etcdLeaveCluster(node: string, opts: CallOptions = {}): Promise<NodeResult<void>> {
    return etcd.leaveCluster(this.calls, node, opts);
  }

  etcdRemoveMemberById(node: string, memberIdHex: string, opts: CallOptions = {}): Promise<NodeResult<void>> {
    return etcd.removeMemberById(this.calls, node, memberIdHex, opts);
  }

  etcdForfeitLeadership(node: string, opts: CallOptions = {}): Promise<NodeResult<{ member: string }>> {
    return etcd.forfeitLeadership(this.calls, node, opts);
  }

  etcdAlarmList(nodes: string[], opts: CallOptions = {}): Promise<NodeResult<EtcdMemberAlarm[]>[]> {
    return etcd.alarmList(this.calls, nodes, opts);
  }

  etcdAlarmDisarm(node: string, opts: CallOptions = {}): Promise<NodeResult<EtcdMemberAlarm[]>> {
    return etcd.alarmDisarm(this.calls, node, opts);
  }

  etcdDefragment(node: string, opts: CallOptions = {}): Promise<NodeResult<void>> {
    return etcd.defragment(this.calls, node, opts);
  }

  /** ServiceRestart { id } (v1alpha1_server.go@v1.12.0:759); the answer's `resp` is the node's text. */
  serviceRestart(node: string, id: string, opts: CallOptions = {}): Promise<NodeResult<string>> {
    return this.calls.actOn(node, 'ServiceRestart', { id }, (m: WithMetadata & { resp: string }) => m.resp, opts);
  }

  async bootstrap(
    node: string,
    req: { recoverEtcd: boolean; recoverSkipHashCheck: boolean },
    opts: CallOptions = {},
  ): Promise<NodeResult<void>> {
    const request = withoutDefaults({ recoverEtcd: req.recoverEtcd, recoverSkipHashCheck: req.recoverSkipHashCheck });
    return okVoid(await this.calls.actOn(node, 'Bootstrap', request, voidResult, opts));
  }

  reset(node: string, req: ResetOptions, opts: CallOptions = {}): Promise<NodeResult<{ actorId: string }>> {
    return this.calls.actOn(node, 'Reset', resetRequest(req), toActorId, opts);
  }

  reboot(node: string, opts: CallOptions = {}): Promise<NodeResult<{ actorId: string }>> {
    return this.calls.actOn(node, 'Reboot', {}, toActorId, opts);
  }

  applyConfiguration(
    node: string,
    req: { data: Buffer; mode: ApplyMode; dryRun?: boolean },
    opts: CallOptions = {},
  ): Promise<NodeResult<ApplyResult>> {
    return this.calls.actOn(node, 'ApplyConfiguration', applyRequest(req), toApplyResult, opts);
  }

  machineConfig(node: string, opts: CallOptions = {}): Promise<NodeResult<string>> {
    return cosi.machineConfig(this.calls, node, opts);
  }

  machineType(node: string, opts: CallOptions = {}): Promise<NodeResult<MachineType>> {
    return cosi.machineType(this.calls, node, opts);
  }

  machineStage(node: string, opts: CallOptions = {}): Promise<NodeResult<MachineStage>> {
    return cosi.machineStage(this.calls, node, opts);
  }

  etcdVolume(node: string, opts: CallOptions = {}): Promise<NodeResult<EtcdVolumeKind>> {
    return cosi.etcdVolume(this.calls, node, opts);
  }

  hostname(node: string, opts: CallOptions = {}): Promise<NodeResult<string>> {
    return cosi.hostname(this.calls, node, opts);
  }

  /**
   * `reuseBuffers` (beyond TalosClient's options): the chunks are views of a few reused buffers, each valid only until
   * the next chunk is asked for — for a reader that writes each chunk before asking for the next (acquire.ts).
   */
  etcdSnapshot(node: string, opts: DataStreamOptions = {}): AsyncIterable<Buffer> {
    return this.dataCalls.etcdSnapshot(node, opts);
  }

  /** TalosClient.bootId: Read of the boot id, trimmed as talosctl trims it (tracker.go@v1.13.9:375). */
  async bootId(node: string, opts: CallOptions = {}): Promise<NodeResult<string>> {
    const r = await this.calls.read(node, BOOT_ID_PATH, opts);
    return r.ok ? { node, ok: true, value: r.value.toString('utf8').trim() } : r;
  }

  copy(node: string, rootPath: string, opts: DataStreamOptions = {}): AsyncIterable<Buffer> {
    return this.dataCalls.copy(node, rootPath, opts);
  }

  etcdRecover(node: string, source: Readable, opts: RecoverOptions = {}): Promise<NodeResult<void>> {
    return this.dataCalls.etcdRecover(node, source, opts);
  }

  close(): void {
    this.pool.close();
  }
}

/** The client for a loaded talosconfig context. */
export function createTalosClient(config: TalosContextConfig, options: TalosClientOptions = {}): GrpcTalosClient {
  return new GrpcTalosClient(config, options);
}

/** talosconfig from the global flags and environment, and a client for it (the commands' one-liner). */
export function loadClientFromFlags(
  global: GlobalFlags,
  env: NodeJS.ProcessEnv,
  options: TalosClientOptions = {},
): { client: GrpcTalosClient; config: TalosContextConfig } {
  const config = loadTalosconfig(global, env);
  return { client: createTalosClient(config, options), config };
}
