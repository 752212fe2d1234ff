/**
 * The Talos machine API client (TalosClient of ./types.ts) over @grpc/grpc-js.
 *
 * Targeting follows talosctl (talos-api-facts §4.1): MachineService calls carry `nodes` metadata, one header entry
 * per node, and apid answers per node inside the response (`metadata.hostname`, `metadata.error/status`); COSI calls
 * carry `node`. Every unary call has a deadline; every call can be cancelled with an AbortSignal. The wire shapes are
 * in ./wire.ts, the snapshot, copy and upload streams in ./data-calls.ts.
 */
import type * as grpc from '@grpc/grpc-js';
import type { Readable } from 'node:stream';
import type { GlobalFlags } from './global-flags.js';
import { channelOptions, EndpointPool, neverSent, TalosChannelCredentials } from './connection.js';
import { DataCalls, type DataStreamOptions, type RecoverOptions } from './data-calls.js';
import { Code, explainContext, failureFromServiceError, rpcFailure } from './errors.js';
import { cutOf, withCut } from './bounded.js';
import type { Version__Output } from './generated/machine/Version.js';
import type { EtcdMemberAlarm__Output } from './generated/machine/EtcdMemberAlarm.js';
import type { Resource__Output } from './generated/cosi/resource/Resource.js';
import {
  clusterMemberFromSpec,
  etcdVolumeFromSpec,
  hostnameFromSpec,
  machineTypeFromSpec,
  memberIdDecimal,
  toEtcdMember,
  toEtcdMemberAlarm,
  toEtcdMemberStatus,
  toServiceInfo,
  toVersionInfo,
} from './mapping.js';
import type * as ProtoModule from './proto.js';
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
  MachineType,
  NodeResult,
  ResetOptions,
  RpcFailure,
  ServiceInfo,
  TalosClient,
  VersionInfo,
} from './types.js';
import {
  applyRequest,
  boundedDefinition,
  canceledFailure,
  failedFor,
  first,
  MISSING,
  nodeMetadata,
  nodesMetadata,
  okVoid,
  resetRequest,
  toActorId,
  toApplyResult,
  unwrapNodeResults,
  voidResult,
  withoutDefaults,
  type AnyMethod,
  type Mapper,
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
/** A MachineService method by name (`Version`, `Bootstrap`, …). */
type MachineMethod = keyof ReturnType<typeof ProtoModule.machineService>;

/**
 * The protos, loaded on first use (proto-loader and protobufjs take a while to load): a process that only downloads
 * a snapshot never loads them.
 */
let protosLoading: Promise<typeof ProtoModule> | undefined;
const loadProtos = () => (protosLoading ??= import('./proto.js'));

export class GrpcTalosClient implements TalosClient {
  private readonly pool: EndpointPool;
  private readonly defaultTimeoutMs: number;
  private readonly dataCalls: DataCalls;

  constructor(
    readonly config: TalosContextConfig,
    options: TalosClientOptions = {},
  ) {
    this.defaultTimeoutMs = options.defaultTimeoutMs ?? DEFAULT_TIMEOUT_MS;
    const mutual = { caPem: config.caPem, certPem: config.certPem, keyPem: config.keyPem };
    this.pool = new EndpointPool(
      config.endpoints,
      (endpoint) => new TalosChannelCredentials({ expectedName: config.serverName ?? endpoint.host, mutual }),
      channelOptions(config.serverName),
      { connectTimeoutMs: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS },
    );
    this.dataCalls = new DataCalls({
      pool: this.pool,
      config,
      streamIdleTimeoutMs: options.streamIdleTimeoutMs ?? DEFAULT_STREAM_IDLE_TIMEOUT_MS,
      snapshotFirstByteTimeoutMs: options.snapshotFirstByteTimeoutMs ?? DEFAULT_SNAPSHOT_FIRST_BYTE_TIMEOUT_MS,
      callFailure: (error, signal) => this.callFailure(error, signal),
    });
  }

  get endpointInUse(): string | undefined {
    return this.pool.endpointInUse;
  }

  /**
   * A call's error as an RpcFailure, with the real cause of a connection failure put back: grpc-js may only say
   * "Failed to connect" when the server refused the client certificate after the handshake.
   */
  private callFailure(error: unknown, signal?: AbortSignal): RpcFailure {
    if (signal?.aborted) return canceledFailure();
    const failure = failureFromServiceError(error);
    if (failure.code !== Code.unavailable) return failure;
    let message = failure.message;
    const endpoint = this.pool.lastTried;
    const cause = endpoint ? this.pool.transportError(endpoint) : undefined;
    // Only a cause-less "Failed to connect" is replaced; grpc-js's own "Last error: …" is more current.
    if (cause && /Failed to connect/i.test(message) && !message.includes(cause.message)) {
      message = `No connection established. Last error: ${cause.message}`;
    }
    const onTheWay = neverSent({ code: failure.code, details: message }) || /^Failed to connect/i.test(message);
    const { clientCertNotAfter: notAfter, clientCertNotBefore: notBefore } = this.config;
    const now = Date.now();
    const ourCertAtFault = !/ECONNREFUSED|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|certificate chain|altnames/i.test(message);
    if (ourCertAtFault && notAfter !== undefined && notAfter.getTime() < now) {
      message = `the client certificate expired on ${notAfter.toISOString().slice(0, 10)} (${message})`;
    } else if (ourCertAtFault && notBefore !== undefined && notBefore.getTime() > now) {
      // apid refuses a certificate whose validity has not started: a clock is wrong, not the network
      message = `the client certificate is not valid before ${notBefore.toISOString()} (${message})`;
    }
    const result = rpcFailure(failure.code, explainContext(message, this.config));
    // a connection that never came up failed at the endpoint: the node behind it was not asked
    return onTheWay && endpoint ? { ...result, endpoint: endpoint.address } : result;
  }

  /**
   * One call through the endpoint pool within the caller's deadline: `start` makes the call on a pool client and
   * settles the promise; the caller's AbortSignal cancels it in flight. Rejects with grpc-js's error.
   */
  private withDeadline<T>(
    opts: CallOptions & { idempotent: boolean },
    start: (
      client: grpc.Client,
      deadline: number,
      resolve: (value: T) => void,
      reject: (error: unknown) => void,
    ) => grpc.Call,
  ): Promise<T> {
    const deadline = Date.now() + (opts.timeoutMs ?? this.defaultTimeoutMs);
    const { signal } = opts;
    const attempt = (client: grpc.Client) =>
      new Promise<T>((resolve, reject) => {
        if (signal?.aborted) return reject({ code: Code.canceled, details: 'cancelled by the user' });
        const onAbort = () => call.cancel();
        const settled =
          <A>(settle: (arg: A) => void) =>
          (arg: A) => {
            signal?.removeEventListener('abort', onAbort);
            settle(arg);
          };
        const call = start(client, deadline, settled(resolve), settled(reject));
        signal?.addEventListener('abort', onAbort, { once: true });
      });
    return this.pool.run(attempt, { deadline, idempotent: opts.idempotent, signal });
  }

  /** One unary call through the endpoint pool, with a deadline and cancellation. Rejects with grpc-js's error. */
  private unary<Res>(
    method: AnyMethod,
    request: object,
    metadata: grpc.Metadata,
    opts: CallOptions & { idempotent: boolean },
  ): Promise<Res> {
    return this.withDeadline<Res>(opts, (client, deadline, resolve, reject) =>
      client.makeUnaryRequest<object, Res>(
        method.path,
        method.requestSerialize as (value: object) => Buffer,
        method.responseDeserialize as (bytes: Buffer) => Res,
        request,
        metadata,
        { deadline },
        (error, response) => (error ? reject(error) : resolve(response as Res)),
      ),
    );
  }

  /**
   * A MachineService call to several nodes, one result per node. apid answers a `nodes` call only when every node
   * has answered, so one node whose etcd hangs would take the whole call to its deadline and hide the answers of
   * the others; each node therefore gets its own call (still with `nodes` metadata, so failures stay in-band), all
   * in parallel over the same connection.
   */
  private async fanOut<M extends WithMetadata, T>(
    method: MachineMethod,
    request: object,
    nodes: string[],
    map: Mapper<M, T>,
    opts: CallOptions & { idempotent: boolean },
  ): Promise<NodeResult<T>[]> {
    if (nodes.length <= 1) return this.fanOutOnce(method, request, nodes, map, opts);
    const perNode = await Promise.all(nodes.map((node) => this.fanOutOnce(method, request, [node], map, opts)));
    return perNode.flat();
  }

  /** One call with `nodes` metadata, unwrapped per node; a whole-call failure fails every node asked. */
  private async fanOutOnce<M extends WithMetadata, T>(
    method: MachineMethod,
    request: object,
    nodes: string[],
    map: Mapper<M, T>,
    opts: CallOptions & { idempotent: boolean },
  ): Promise<NodeResult<T>[]> {
    const definition = boundedDefinition(String(method), (await loadProtos()).machineService()[method] as AnyMethod);
    const methodName = String(method);
    try {
      const response = await this.unary<{ messages: M[] }>(definition, request, nodesMetadata(nodes), opts);
      const cut = cutOf(response);
      return unwrapNodeResults(nodes, response.messages ?? [], map, this.endpointInUse ?? 'the endpoint').map(
        (result) =>
          result.ok
            ? // one node per call (fanOut), so what its answer left out is that node's
              {
                ...result,
                value: typeof result.value === 'object' && result.value ? withCut(result.value, cut) : result.value,
              }
            : { ...result, error: { ...result.error, method: methodName } },
      );
    } catch (error) {
      const failure = { ...this.callFailure(error, opts.signal), method: methodName };
      return failedFor(nodes.length ? nodes : [this.endpointInUse ?? 'the endpoint'], failure);
    }
  }

  /** A COSI Get with `node` metadata; failures come back as plain statuses. */
  private async cosiGet(
    node: string,
    ref: { namespace: string; type: string; id: string },
    opts: CallOptions,
  ): Promise<{ ok: true; resource: Resource__Output } | { ok: false; error: RpcFailure }> {
    const get = (await loadProtos()).cosiStateService().Get as AnyMethod;
    try {
      const response = await this.unary<{ resource: Resource__Output | null }>(get, ref, nodeMetadata(node), {
        ...opts,
        idempotent: true,
      });
      if (!response.resource) return { ok: false, error: rpcFailure(Code.unknown, 'the node returned no resource') };
      return { ok: true, resource: response.resource };
    } catch (error) {
      return { ok: false, error: this.callFailure(error, opts.signal) };
    }
  }

  /**
   * A COSI List (a server stream of one resource per message) with `node` metadata, read to its end within one
   * deadline; failures come back as plain statuses.
   */
  private async cosiList(
    node: string,
    ref: { namespace: string; type: string },
    opts: CallOptions,
  ): Promise<{ ok: true; resources: Resource__Output[] } | { ok: false; error: RpcFailure }> {
    const list = (await loadProtos()).cosiStateService().List as AnyMethod;
    const read = (
      client: grpc.Client,
      deadline: number,
      resolve: (r: Resource__Output[]) => void,
      reject: (e: unknown) => void,
    ) => {
      const resources: Resource__Output[] = [];
      const call = client.makeServerStreamRequest<object, { resource: Resource__Output | null }>(
        list.path,
        list.requestSerialize as (value: object) => Buffer,
        list.responseDeserialize as (bytes: Buffer) => { resource: Resource__Output | null },
        ref,
        nodeMetadata(node),
        { deadline },
      );
      call.on('data', (message: { resource: Resource__Output | null }) => {
        if (message.resource) resources.push(message.resource);
      });
      call.on('error', reject);
      call.on('end', () => resolve(resources));
      return call;
    };
    try {
      return { ok: true, resources: await this.withDeadline({ ...opts, idempotent: true }, read) };
    } catch (error) {
      return { ok: false, error: this.callFailure(error, opts.signal) };
    }
  }

  /**
   * Every machine discovery knows, workers included: COSI Members.cluster.talos.dev in namespace cluster
   * (siderolabs/talos pkg/machinery/resources/cluster/member.go@v1.13.0:30-36; the namespace cluster.go@v1.13.0:10).
   * A resource whose spec names no hostname is left out.
   */
  async clusterMembers(node: string, opts: CallOptions = {}): Promise<NodeResult<ClusterMember[]>> {
    const got = await this.cosiList(node, { namespace: 'cluster', type: 'Members.cluster.talos.dev' }, opts);
    if (!got.ok) return { node, ok: false, error: got.error };
    const members = got.resources.flatMap((r) => {
      const member = clusterMemberFromSpec(r.metadata?.id ?? '', r.spec);
      return member ? [member] : [];
    });
    return { node, ok: true, value: members };
  }

  version(nodes: string[], opts: CallOptions = {}): Promise<NodeResult<VersionInfo>[]> {
    return this.fanOut('Version', {}, nodes, (m: Version__Output) => toVersionInfo(m) ?? MISSING, {
      ...opts,
      idempotent: true,
    });
  }

  serviceList(nodes: string[], opts: CallOptions = {}): Promise<NodeResult<ServiceInfo[]>[]> {
    return this.fanOut(
      'ServiceList',
      {},
      nodes,
      (m: WithMetadata & { services: Parameters<typeof toServiceInfo>[0][] }) => m.services.map(toServiceInfo),
      { ...opts, idempotent: true },
    );
  }

  etcdMemberList(nodes: string[], queryLocal: boolean, opts: CallOptions = {}): Promise<NodeResult<EtcdMember[]>[]> {
    return this.fanOut(
      'EtcdMemberList',
      withoutDefaults({ queryLocal }),
      nodes,
      (m: WithMetadata & { members: Parameters<typeof toEtcdMember>[0][] }) => m.members.map(toEtcdMember),
      { ...opts, idempotent: true },
    );
  }

  etcdStatus(nodes: string[], opts: CallOptions = {}): Promise<NodeResult<EtcdMemberStatus>[]> {
    return this.fanOut(
      'EtcdStatus',
      {},
      nodes,
      (m: WithMetadata & { memberStatus: Parameters<typeof toEtcdMemberStatus>[0] | null }) =>
        m.memberStatus ? toEtcdMemberStatus(m.memberStatus) : MISSING,
      { ...opts, idempotent: true },
    );
  }

  /**
   * A call that acts on exactly one node: sent once (never retried on another endpoint, since the node may already
   * have acted), its one result.
   */
  private async actOn<M extends WithMetadata, T>(
    node: string,
    method: MachineMethod,
    request: object,
    map: Mapper<M, T>,
    opts: CallOptions,
  ): Promise<NodeResult<T>> {
    return first(await this.fanOut(method, request, [node], map, { ...opts, idempotent: false }), node);
  }

  async etcdLeaveCluster(node: string, opts: CallOptions = {}): Promise<NodeResult<void>> {
    return okVoid(await this.actOn(node, 'EtcdLeaveCluster', {}, voidResult, opts));
  }

  async etcdRemoveMemberById(node: string, memberIdHex: string, opts: CallOptions = {}): Promise<NodeResult<void>> {
    let memberId: string;
    try {
      memberId = memberIdDecimal(memberIdHex);
    } catch (error) {
      return { node, ok: false, error: rpcFailure(Code.invalidArgument, (error as Error).message) };
    }
    return okVoid(await this.actOn(node, 'EtcdRemoveMemberByID', { memberId }, voidResult, opts));
  }

  etcdForfeitLeadership(node: string, opts: CallOptions = {}): Promise<NodeResult<{ member: string }>> {
    const map = (m: WithMetadata & { member: string }) => ({ member: m.member });
    return this.actOn(node, 'EtcdForfeitLeadership', {}, map, opts);
  }

  /**
   * EtcdAlarmList answers the alarms of the whole cluster as the node's local etcd lists them (siderolabs/talos:
   * internal/app/machined/internal/server/v1alpha1/v1alpha1_server.go@v1.12.0:2028-2052).
   */
  etcdAlarmList(nodes: string[], opts: CallOptions = {}): Promise<NodeResult<EtcdMemberAlarm[]>[]> {
    return this.fanOut('EtcdAlarmList', {}, nodes, toAlarms, { ...opts, idempotent: true });
  }

  /**
   * EtcdAlarmDisarm sends etcd an empty AlarmMember (v1alpha1_server.go@v1.12.0:2058-2083), which etcd's client turns
   * into "disarm every listed alarm" (etcd-io/etcd: client/v3/maintenance.go@v3.6.16:168-181); the answer lists them.
   */
  etcdAlarmDisarm(node: string, opts: CallOptions = {}): Promise<NodeResult<EtcdMemberAlarm[]>> {
    return this.actOn(node, 'EtcdAlarmDisarm', {}, toAlarms, opts);
  }

  /**
   * EtcdDefragment defragments the local member only (v1alpha1_server.go@v1.12.0:2091-2115); etcd blocks that member
   * while it runs, so give a long deadline and never run two at once.
   */
  async etcdDefragment(node: string, opts: CallOptions = {}): Promise<NodeResult<void>> {
    return okVoid(await this.actOn(node, 'EtcdDefragment', {}, voidResult, opts));
  }

  /** ServiceRestart { id } (v1alpha1_server.go@v1.12.0:759); the answer's `resp` is the node's text. */
  serviceRestart(node: string, id: string, opts: CallOptions = {}): Promise<NodeResult<string>> {
    return this.actOn(node, 'ServiceRestart', { id }, (m: WithMetadata & { resp: string }) => m.resp, opts);
  }

  async bootstrap(
    node: string,
    req: { recoverEtcd: boolean; recoverSkipHashCheck: boolean },
    opts: CallOptions = {},
  ): Promise<NodeResult<void>> {
    const request = withoutDefaults({ recoverEtcd: req.recoverEtcd, recoverSkipHashCheck: req.recoverSkipHashCheck });
    return okVoid(await this.actOn(node, 'Bootstrap', request, voidResult, opts));
  }

  reset(node: string, req: ResetOptions, opts: CallOptions = {}): Promise<NodeResult<{ actorId: string }>> {
    return this.actOn(node, 'Reset', resetRequest(req), toActorId, opts);
  }

  reboot(node: string, opts: CallOptions = {}): Promise<NodeResult<{ actorId: string }>> {
    return this.actOn(node, 'Reboot', {}, toActorId, opts);
  }

  applyConfiguration(
    node: string,
    req: { data: Buffer; mode: ApplyMode; dryRun?: boolean },
    opts: CallOptions = {},
  ): Promise<NodeResult<ApplyResult>> {
    return this.actOn(node, 'ApplyConfiguration', applyRequest(req), toApplyResult, opts);
  }

  async machineConfig(node: string, opts: CallOptions = {}): Promise<NodeResult<string>> {
    const got = await this.cosiGet(
      node,
      { namespace: 'config', type: 'MachineConfigs.config.talos.dev', id: 'v1alpha1' },
      opts,
    );
    if (!got.ok) return { node, ok: false, error: got.error };
    const spec = got.resource.spec;
    const text = spec?.yamlSpec || spec?.protoSpec?.toString('utf8') || '';
    if (!text.trim()) return { node, ok: false, error: rpcFailure(Code.unknown, 'the machine configuration is empty') };
    return { node, ok: true, value: text };
  }

  async machineType(node: string, opts: CallOptions = {}): Promise<NodeResult<MachineType>> {
    const got = await this.cosiGet(
      node,
      { namespace: 'config', type: 'MachineTypes.config.talos.dev', id: 'machine-type' },
      opts,
    );
    if (!got.ok) return { node, ok: false, error: got.error };
    return { node, ok: true, value: machineTypeFromSpec(got.resource.spec) };
  }

  async etcdVolume(node: string, opts: CallOptions = {}): Promise<NodeResult<EtcdVolumeKind>> {
    const got = await this.cosiGet(
      node,
      { namespace: 'runtime', type: 'VolumeStatuses.block.talos.dev', id: 'ETCD' },
      opts,
    );
    // Talos ≤ 1.9 has no ETCD volume: the data lives on EPHEMERAL.
    if (!got.ok) return got.error.code === Code.notFound ? { node, ok: true, value: 'ephemeral' } : { ...got, node };
    return { node, ok: true, value: etcdVolumeFromSpec(got.resource.spec) };
  }

  /**
   * The machine's own hostname from COSI HostnameStatuses.net.talos.dev network/hostname (siderolabs/talos:
   * pkg/machinery/resources/network/hostname_status.go@v1.14.0-rc.1:17,25-28; id hostname_spec.go@v1.14.0-rc.1:26).
   * Not apid's metadata.hostname: apid fills that with the target as the caller gave it, an address here
   * (internal/app/apid/pkg/backend/apid.go@v1.14.0-rc.1:172-176 AppendInfo sets Hostname: a.target).
   */
  async hostname(node: string, opts: CallOptions = {}): Promise<NodeResult<string>> {
    const got = await this.cosiGet(
      node,
      { namespace: 'network', type: 'HostnameStatuses.net.talos.dev', id: 'hostname' },
      opts,
    );
    if (!got.ok) return { node, ok: false, error: got.error };
    const name = hostnameFromSpec(got.resource.spec);
    if (name === null)
      return { node, ok: false, error: rpcFailure(Code.unknown, 'the node answered without a hostname') };
    return { node, ok: true, value: name };
  }

  /**
   * `reuseBuffers` (beyond TalosClient's options): the chunks are views of a few reused buffers, each valid only until
   * the next chunk is asked for — for a reader that writes each chunk before asking for the next (acquire.ts).
   */
  etcdSnapshot(node: string, opts: DataStreamOptions = {}): AsyncIterable<Buffer> {
    return this.dataCalls.etcdSnapshot(node, opts);
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

const toAlarms = (m: WithMetadata & { memberAlarms: EtcdMemberAlarm__Output[] }): EtcdMemberAlarm[] =>
  m.memberAlarms.map(toEtcdMemberAlarm);

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
