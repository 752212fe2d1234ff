/**
 * The Talos machine API client (TalosClient of ./types.ts) over @grpc/grpc-js.
 *
 * Targeting follows talosctl (talos-api-facts §4.1): MachineService calls carry `nodes` metadata, one header entry
 * per node, and apid answers per node inside the response (`metadata.hostname`, `metadata.error/status`); COSI calls
 * carry `node`. Every unary call has a deadline; every call can be cancelled with an AbortSignal.
 */
import * as grpc from '@grpc/grpc-js';
import type { MethodDefinition } from '@grpc/proto-loader';
import type { Readable } from 'node:stream';
import { UserError } from '../errors.js';
import type { GlobalFlags } from './global-flags.js';
import { channelOptions, EndpointPool, MAX_MESSAGE_BYTES, neverSent, TalosChannelCredentials } from './connection.js';
import {
  Code,
  describeFailure,
  explainContext,
  failureFromMetadata,
  failureFromServiceError,
  rpcFailure,
} from './errors.js';
import { connectSession, DataStream, SourceError, uploadData } from './h2stream.js';
import {
  cutOf,
  MEMBER_LIST_BOUNDS,
  SERVICE_LIST_BOUNDS,
  STATUS_BOUNDS,
  trimRepeated,
  withCut,
  type MessageBounds,
} from './bounded.js';
import type { ClientHttp2Session } from 'node:http2';
import type { Endpoint } from './talosconfig.js';
import type { Metadata__Output } from './generated/common/Metadata.js';
import type { Version__Output } from './generated/machine/Version.js';
import type { Resource__Output } from './generated/cosi/resource/Resource.js';
import {
  etcdVolumeFromSpec,
  machineTypeFromSpec,
  memberIdDecimal,
  toEtcdMember,
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
  EtcdMember,
  EtcdMemberStatus,
  EtcdVolumeKind,
  MachineType,
  NodeResult,
  ResetOptions,
  RpcFailure,
  ServiceInfo,
  TalosClient,
  TransferProgress,
  VersionInfo,
} from './types.js';

export interface TalosClientOptions {
  /** Deadline of a unary call when the caller gives none. */
  defaultTimeoutMs?: number;
  /** How long to wait for an endpoint to connect before trying the next one. */
  connectTimeoutMs?: number;
  /** A stream that sends nothing for this long is cut and reported as DeadlineExceeded. */
  streamIdleTimeoutMs?: number;
}

export const DEFAULT_TIMEOUT_MS = 15_000;
export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
export const DEFAULT_STREAM_IDLE_TIMEOUT_MS = 60_000;
/** EtcdRecover upload chunk: talosctl sends 4 KiB; larger chunks cost far fewer messages for the same bytes. */
export const DEFAULT_UPLOAD_CHUNK_BYTES = 256 * 1024;
const PROGRESS_INTERVAL_MS = 100;
/** talosctl's per-stream HTTP/2 window (65535×32): fewer flow-control stalls on 1 KiB-message streams. */
const STREAM_WINDOW_BYTES = 65535 * 32;

/** A call that failed as a whole (not per node): carries the node, the failure and the sentence for the user. */
export class TalosRpcError extends UserError {
  constructor(
    readonly node: string,
    readonly failure: RpcFailure,
    action?: string,
  ) {
    super(describeFailure(node, failure, action), 1);
    this.name = 'TalosRpcError';
  }
}

type AnyMethod = MethodDefinition<object, object, object, object>;
/** A MachineService method by name (`Version`, `Bootstrap`, …). */
type MachineMethod = keyof ReturnType<typeof ProtoModule.machineService>;

/**
 * The protos, loaded on first use (proto-loader and protobufjs take a while to load): a process that only downloads
 * a snapshot never loads them.
 */
let protosLoading: Promise<typeof ProtoModule> | undefined;
const loadProtos = () => (protosLoading ??= import('./proto.js'));

interface WithMetadata {
  metadata: Metadata__Output | null;
}

const ETCD_SNAPSHOT_PATH = '/machine.MachineService/EtcdSnapshot';
const COPY_PATH = '/machine.MachineService/Copy';
const ETCD_RECOVER_PATH = '/machine.MachineService/EtcdRecover';

/** CopyRequest { root_path = 1 }, encoded by hand (the wire test checks it against the protos). */
export function copyRequest(rootPath: string): Buffer {
  const path = Buffer.from(rootPath, 'utf8');
  const length: number[] = [];
  for (let n = path.length; ; n >>>= 7) {
    if (n < 0x80) {
      length.push(n);
      break;
    }
    length.push((n & 0x7f) | 0x80);
  }
  return Buffer.concat([Buffer.from([0x0a, ...length]), path]);
}

/** Repeated fields bounded before decoding (a million-member answer must not cost gigabytes): see bounded.ts. */
const ANSWER_BOUNDS: Record<string, MessageBounds> = {
  EtcdMemberList: MEMBER_LIST_BOUNDS,
  ServiceList: SERVICE_LIST_BOUNDS,
  EtcdStatus: STATUS_BOUNDS,
};
const boundedDefinitions = new Map<string, AnyMethod>();

/** The method with its answer's repeated fields trimmed before protobufjs decodes it, and the cut recorded. */
function boundedDefinition(method: string, definition: AnyMethod): AnyMethod {
  const bounds = ANSWER_BOUNDS[method];
  if (!bounds) return definition;
  let bounded = boundedDefinitions.get(method);
  if (!bounded) {
    const decode = definition.responseDeserialize as (bytes: Buffer) => object;
    bounded = {
      ...definition,
      responseDeserialize: (bytes: Buffer) => {
        const trimmed = trimRepeated(bytes, bounds);
        return withCut(decode(trimmed.bytes), trimmed.cut);
      },
    };
    boundedDefinitions.set(method, bounded);
  }
  return bounded;
}

/** What a mapper returns when the node's message lacks the payload we need (void calls return undefined). */
export const MISSING = Symbol('missing payload');
type Mapper<M, T> = (message: M) => T | typeof MISSING;

/** Options of the data streams (EtcdSnapshot, Copy). */
export interface DataStreamOptions {
  signal?: AbortSignal | undefined;
  idleTimeoutMs?: number;
  /** the chunks are views of reused buffers, each valid only until the next one is asked for (see h2stream.ts) */
  reuseBuffers?: boolean;
}

const canceledFailure = () => rpcFailure(Code.canceled, 'cancelled by the user');

/** Targets for machine calls: one `nodes` entry per node (never comma-joined: grpc-go does not split them). */
function nodesMetadata(nodes: string[]): grpc.Metadata {
  const md = new grpc.Metadata();
  for (const node of nodes) md.add('nodes', node);
  return md;
}

function nodeMetadata(node: string): grpc.Metadata {
  const md = new grpc.Metadata();
  md.set('node', node);
  return md;
}

/**
 * Unwraps a one-to-many response into one result per requested node, in the order requested. A message with
 * `metadata.error` (or a status code) is that node's failure; a requested node without a message failed too; a
 * message without the payload we need counts as a failure rather than an empty answer.
 */
export function unwrapNodeResults<M extends WithMetadata, T>(
  nodes: string[],
  messages: M[],
  map: Mapper<M, T>,
  fallbackNode: string,
): NodeResult<T>[] {
  // A call that returns nothing but success (Bootstrap, EtcdRecover, …) may come back with no message at all when
  // the node answered directly rather than through apid: for a single node with an OK status that is a success.
  if (messages.length === 0 && nodes.length === 1) {
    if (isVoidMapper(map)) return [{ node: nodes[0] as string, ok: true, value: undefined as T }];
  }
  const byNode = new Map<string, NodeResult<T>>();
  const extra: NodeResult<T>[] = [];
  for (const message of messages) {
    const meta = message.metadata;
    // A direct answer (no apid in between) has no hostname: it is the single node asked, or the endpoint itself.
    const node = meta?.hostname || (nodes.length === 1 ? (nodes[0] as string) : fallbackNode);
    const result = resultOf(node, message, map);
    if (nodes.includes(node)) {
      if (!byNode.has(node)) byNode.set(node, result);
    } else extra.push(result);
  }
  const results = nodes.map(
    (node) =>
      byNode.get(node) ?? {
        node,
        ok: false as const,
        error: rpcFailure(Code.unknown, 'the node sent no answer (the endpoint may not be able to reach it)'),
      },
  );
  return [...results, ...extra];
}

/** The mapper of a call whose answer carries nothing but metadata. */
const voidResult = (): void => undefined;
const isVoidMapper = (map: unknown): boolean => map === voidResult;

function resultOf<M extends WithMetadata, T>(node: string, message: M, map: Mapper<M, T>): NodeResult<T> {
  const meta = message.metadata;
  if (meta && (meta.error || meta.status?.code)) {
    return { node, ok: false, error: failureFromMetadata(meta.error, meta.status) };
  }
  const value = map(message);
  if (value === MISSING) {
    return { node, ok: false, error: rpcFailure(Code.unknown, 'the node answered without the expected data') };
  }
  return { node, ok: true, value };
}

const failedFor = <T>(nodes: string[], failure: RpcFailure): NodeResult<T>[] =>
  nodes.map((node) => ({ node, ok: false as const, error: failure }));

const first = <T>(results: NodeResult<T>[], node: string): NodeResult<T> =>
  results[0] ?? { node, ok: false, error: rpcFailure(Code.unknown, 'the node sent no answer') };

export class GrpcTalosClient implements TalosClient {
  private readonly pool: EndpointPool;
  private readonly defaultTimeoutMs: number;
  private readonly streamIdleTimeoutMs: number;

  constructor(
    readonly config: TalosContextConfig,
    options: TalosClientOptions = {},
  ) {
    this.defaultTimeoutMs = options.defaultTimeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.streamIdleTimeoutMs = options.streamIdleTimeoutMs ?? DEFAULT_STREAM_IDLE_TIMEOUT_MS;
    const mutual = { caPem: config.caPem, certPem: config.certPem, keyPem: config.keyPem };
    this.pool = new EndpointPool(
      config.endpoints,
      (endpoint) => new TalosChannelCredentials({ expectedName: config.serverName ?? endpoint.host, mutual }),
      channelOptions(config.serverName),
      { connectTimeoutMs: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS },
    );
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

  /** One unary call through the endpoint pool, with a deadline and cancellation. Rejects with grpc-js's error. */
  private unary<Res>(
    method: AnyMethod,
    request: object,
    metadata: grpc.Metadata,
    opts: CallOptions & { idempotent: boolean },
  ): Promise<Res> {
    const deadline = Date.now() + (opts.timeoutMs ?? this.defaultTimeoutMs);
    const { signal } = opts;
    const attempt = (client: grpc.Client) =>
      new Promise<Res>((resolve, reject) => {
        if (signal?.aborted) return reject({ code: grpc.status.CANCELLED, details: 'cancelled by the user' });
        const call = client.makeUnaryRequest<object, Res>(
          method.path,
          method.requestSerialize as (value: object) => Buffer,
          method.responseDeserialize as (bytes: Buffer) => Res,
          request,
          metadata,
          { deadline },
          (error, response) => {
            signal?.removeEventListener('abort', onAbort);
            if (error) reject(error);
            else resolve(response as Res);
          },
        );
        const onAbort = () => call.cancel();
        signal?.addEventListener('abort', onAbort, { once: true });
      });
    return this.pool.run(attempt, { deadline, idempotent: opts.idempotent, signal });
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
   * `reuseBuffers` (beyond TalosClient's options): the chunks are views of a few reused buffers, each valid only until
   * the next chunk is asked for — for a reader that writes each chunk before asking for the next (acquire.ts).
   */
  etcdSnapshot(node: string, opts: DataStreamOptions = {}): AsyncIterable<Buffer> {
    // EtcdSnapshotRequest has no fields: its encoding is empty.
    return this.dataStream(ETCD_SNAPSHOT_PATH, Buffer.alloc(0), node, 'the etcd snapshot', opts);
  }

  copy(node: string, rootPath: string, opts: DataStreamOptions = {}): AsyncIterable<Buffer> {
    return this.dataStream(COPY_PATH, copyRequest(rootPath), node, `the copy of ${rootPath}`, opts);
  }

  /**
   * A server stream of common.Data as raw byte chunks. Any message with metadata.error ends it with that error;
   * Canceled/DeadlineExceeded are errors too (talosctl reads them as a normal end, which hides a cut).
   */
  private dataStream(
    path: string,
    requestBytes: Buffer,
    node: string,
    what: string,
    opts: DataStreamOptions,
  ): AsyncIterable<Buffer> {
    const idleMs = opts.idleTimeoutMs ?? this.streamIdleTimeoutMs;
    const reuseBuffers = opts.reuseBuffers === true;
    const openStream = (signal?: AbortSignal) =>
      this.openDataStream(path, requestBytes, node, { idleMs, reuseBuffers }, signal);
    return {
      async *[Symbol.asyncIterator]() {
        const { signal } = opts;
        if (signal?.aborted) throw new TalosRpcError(node, canceledFailure(), what);
        let stream: DataStream | undefined;
        const onAbort = () => stream?.fail(canceledFailure());
        signal?.addEventListener('abort', onAbort, { once: true });
        try {
          stream = await openStream(signal);
          for (;;) {
            const next = await stream.next();
            if (next === null) return;
            yield next;
          }
        } catch (error) {
          throw new TalosRpcError(node, error as RpcFailure, what);
        } finally {
          signal?.removeEventListener('abort', onAbort);
          stream?.close();
        }
      },
    };
  }

  /**
   * Opens a raw HTTP/2 data stream (see h2stream.ts) through the first endpoint that answers, in the pool's order;
   * rejects with the RpcFailure of the last endpoint tried.
   */
  private async openDataStream(
    path: string,
    request: Buffer,
    node: string,
    reading: { idleMs: number; reuseBuffers: boolean },
    signal?: AbortSignal,
  ): Promise<DataStream> {
    let failure: RpcFailure = rpcFailure(Code.unavailable, 'no endpoint to connect to');
    for (const endpoint of this.pool.order()) {
      const credentials = this.pool.credentialsOf(endpoint) as TalosChannelCredentials;
      const stream = new DataStream(
        {
          endpoint,
          tlsOptions: credentials.tlsOptions(),
          authority: this.config.serverName ?? endpoint.address,
          path,
          request,
          metadata: { nodes: [node] },
          windowBytes: STREAM_WINDOW_BYTES,
          maxMessageBytes: MAX_MESSAGE_BYTES,
          ...reading,
        },
        (error) =>
          this.callFailure({
            code: Code.unavailable,
            details: `No connection established. Last error: ${error.message}`,
          }),
      );
      this.pool.lastTried = endpoint;
      if (await stream.whenAnswered) {
        this.pool.answeredBy(endpoint);
        return stream;
      }
      try {
        await stream.next();
      } catch (error) {
        failure = error as RpcFailure;
      }
      stream.close();
      if (signal?.aborted) throw canceledFailure();
      if (failure.code !== Code.unavailable) throw failure;
    }
    throw failure;
  }

  async etcdRecover(
    node: string,
    source: Readable,
    opts: {
      signal?: AbortSignal;
      chunkSize?: number;
      onProgress?: (p: TransferProgress) => void;
      totalBytes?: number;
    } = {},
  ): Promise<NodeResult<void>> {
    const { signal } = opts;
    if (signal?.aborted) return { node, ok: false, error: canceledFailure() };
    const connected = await this.connectAnyEndpoint(signal);
    if (!connected.ok) return { node, ok: false, error: connected.error };
    const { session, endpoint } = connected;
    const reportProgress = progressReporter(opts);
    try {
      const answer = await uploadData(
        session,
        {
          authority: this.config.serverName ?? endpoint.address,
          path: ETCD_RECOVER_PATH,
          metadata: { nodes: [node] },
          chunkSize: opts.chunkSize ?? DEFAULT_UPLOAD_CHUNK_BYTES,
          onSent: (bytes) => reportProgress(bytes, false),
          ...(signal ? { signal } : {}),
        },
        source,
      );
      reportProgress(-1, true);
      const messages = answer.messages as unknown as WithMetadata[];
      return okVoid(first(unwrapNodeResults([node], messages, voidResult, node), node));
    } catch (error) {
      if (error instanceof SourceError) {
        throw new UserError(`Reading the snapshot to upload failed (${error.message}); check the file and try again.`);
      }
      if (signal?.aborted) return { node, ok: false, error: canceledFailure() };
      const failure = isRpcFailure(error)
        ? error
        : this.callFailure({ code: Code.unavailable, details: String(error) });
      return { node, ok: false, error: failure };
    } finally {
      session.close();
    }
  }

  /**
   * An HTTP/2 session to the first endpoint that connects, for a call that must not be sent twice: the request
   * starts only once a connection is up, so trying the next endpoint never repeats it.
   */
  private async connectAnyEndpoint(
    signal?: AbortSignal,
  ): Promise<{ ok: true; session: ClientHttp2Session; endpoint: Endpoint } | { ok: false; error: RpcFailure }> {
    let failure: RpcFailure = rpcFailure(Code.unavailable, 'no endpoint to connect to');
    for (const endpoint of this.pool.order()) {
      if (signal?.aborted) return { ok: false, error: canceledFailure() };
      const credentials = this.pool.credentialsOf(endpoint) as TalosChannelCredentials;
      this.pool.lastTried = endpoint;
      try {
        const session = await connectSession(endpoint, credentials.tlsOptions());
        this.pool.answeredBy(endpoint);
        return { ok: true, session, endpoint };
      } catch (error) {
        failure = this.callFailure(
          { code: Code.unavailable, details: `No connection established. Last error: ${(error as Error).message}` },
          signal,
        );
      }
    }
    return { ok: false, error: failure };
  }

  close(): void {
    this.pool.close();
  }
}

const isRpcFailure = (value: unknown): value is RpcFailure =>
  typeof value === 'object' && value !== null && 'codeName' in value && 'code' in value;

/** Progress at most every PROGRESS_INTERVAL_MS, and once more at the end (`force`, with the last count). */
function progressReporter(opts: { onProgress?: (p: TransferProgress) => void; totalBytes?: number }) {
  let last = 0;
  let sent = 0;
  return (bytes: number, force: boolean) => {
    if (bytes >= 0) sent = bytes;
    if (!opts.onProgress) return;
    const now = Date.now();
    if (!force && now - last < PROGRESS_INTERVAL_MS) return;
    last = now;
    opts.onProgress({ bytes: sent, ...(opts.totalBytes !== undefined ? { total: opts.totalBytes } : {}) });
  };
}

/**
 * protobufjs writes a field that is set even to its default value (`08 00` for graceful=false); talosctl's Go
 * encoder leaves proto3 defaults out. Leaving them out here makes our requests byte-for-byte what talosctl sends.
 */
export function withoutDefaults<T extends Record<string, unknown>>(request: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [key, value] of Object.entries(request) as [keyof T, unknown][]) {
    const isDefault =
      value === false || value === 0 || value === '' || (Array.isArray(value) && value.length === 0) || value == null;
    if (!isDefault) out[key] = value as T[keyof T];
  }
  return out;
}

/** ResetRequest as talosctl builds it: every label wiped, mode ALL (the zero value, so not sent). */
export function resetRequest(req: ResetOptions): object {
  return withoutDefaults({
    graceful: req.graceful,
    reboot: req.reboot,
    systemPartitionsToWipe: req.labels.map((label) => ({ label, wipe: true })),
  });
}

/** ApplyConfigurationRequest: REBOOT is the enum's zero value, so it is left out like any default. */
export function applyRequest(req: { data: Buffer; mode: ApplyMode; dryRun?: boolean }): object {
  return withoutDefaults({ data: req.data, mode: req.mode === 'REBOOT' ? undefined : req.mode, dryRun: req.dryRun });
}

function okVoid(result: NodeResult<void>): NodeResult<void> {
  return result.ok ? { node: result.node, ok: true, value: undefined } : result;
}

function toActorId(message: WithMetadata & { actorId: string }): { actorId: string } {
  return { actorId: message.actorId };
}

function toApplyResult(message: WithMetadata & { warnings: string[]; mode: string; modeDetails: string }) {
  return { mode: message.mode as ApplyMode, modeDetails: message.modeDetails, warnings: message.warnings };
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
