/**
 * How the Talos client (./client.ts) makes its gRPC calls: through the endpoint pool within a deadline, cancellable
 * by an AbortSignal; MachineService calls fanned out one per node with `nodes` metadata and unwrapped per node; a call
 * that acts on one node sent once; and a call's error turned into an RpcFailure that names its real cause.
 */
import type * as grpc from '@grpc/grpc-js';
import { type EndpointPool, neverSent } from './connection.js';
import { Code, explainContext, failureFromMetadata, failureFromServiceError, rpcFailure } from './errors.js';
import { cutOf, withCut } from './bounded.js';
import type * as ProtoModule from './proto.js';
import type { TalosContextConfig } from './talosconfig.js';
import type { CallOptions, NodeResult, RpcFailure } from './types.js';
import {
  boundedDefinition,
  canceledFailure,
  failedFor,
  first,
  nodesMetadata,
  unwrapNodeResults,
  type AnyMethod,
  type Mapper,
  type WithMetadata,
} from './wire.js';

/** A MachineService method by name (`Version`, `Bootstrap`, …). */
export type MachineMethod = keyof ReturnType<typeof ProtoModule.machineService>;

/**
 * The protos, loaded on first use (proto-loader and protobufjs take a while to load): a process that only downloads
 * a snapshot never loads them.
 */
let protosLoading: Promise<typeof ProtoModule> | undefined;
export const loadProtos = () => (protosLoading ??= import('./proto.js'));

/** A client's calls over one endpoint pool and talosconfig context. */
export class TalosCalls {
  constructor(
    private readonly pool: EndpointPool,
    private readonly config: TalosContextConfig,
    private readonly defaultTimeoutMs: number,
  ) {}

  get endpointInUse(): string | undefined {
    return this.pool.endpointInUse;
  }

  /**
   * A call's error as an RpcFailure, with the real cause of a connection failure put back: grpc-js may only say
   * "Failed to connect" when the server refused the client certificate after the handshake.
   */
  callFailure(error: unknown, signal?: AbortSignal): RpcFailure {
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
    // a handshake that never completed (a silent endpoint: data-calls / h2stream) is no refusal of our certificate
    const ourCertAtFault =
      !/ECONNREFUSED|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|certificate chain|altnames|did not complete the TLS handshake/i.test(
        message,
      );
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
  withDeadline<T>(
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
  unary<Res>(
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
  async fanOut<M extends WithMetadata, T>(
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

  /**
   * Read { path } of one node (a server stream of common.Data: machined sends a regular file in 1 KiB chunks, a
   * missing one is NotFound; siderolabs/talos internal/app/machined/internal/server/v1alpha1/v1alpha1_server.go@v1.13.9:
   * 1406-1441; os:admin only, internal/app/machined/pkg/system/services/machined.go@v1.13.9:100), its chunks joined,
   * within the call's deadline. A failure apid sends in-band for the node (it could not reach it, the node refused)
   * is that node's answer, as in fanOut: only a call that could not be made moves to the next endpoint, and an
   * endpoint is remembered only when the read succeeded through it.
   */
  async read(node: string, path: string, opts: CallOptions): Promise<NodeResult<Buffer>> {
    const definition = (await loadProtos()).machineService().Read as AnyMethod;
    type Data = {
      metadata?: { error?: string; status?: { code?: number; message?: string } | null } | null;
      bytes?: Buffer;
    };
    try {
      const answer = await this.withDeadline<Buffer | RpcFailure>(
        { ...opts, idempotent: true },
        (client, deadline, resolve, reject) => {
          const chunks: Buffer[] = [];
          let inBand: RpcFailure | null = null;
          const call = client.makeServerStreamRequest<object, Data>(
            definition.path,
            definition.requestSerialize as (value: object) => Buffer,
            definition.responseDeserialize as (bytes: Buffer) => Data,
            { path },
            nodesMetadata([node]),
            { deadline },
          );
          call.on('data', (m: Data) => {
            const meta = m.metadata;
            if (meta && (meta.error || meta.status?.code))
              inBand ??= failureFromMetadata(meta.error ?? '', meta.status);
            else if (m.bytes?.length) chunks.push(Buffer.from(m.bytes));
          });
          call.on('error', reject);
          call.on('end', () => resolve(inBand ?? Buffer.concat(chunks)));
          return call;
        },
      );
      if (Buffer.isBuffer(answer)) return { node, ok: true, value: answer };
      return { node, ok: false, error: { ...answer, method: 'Read' } };
    } catch (error) {
      return { node, ok: false, error: { ...this.callFailure(error, opts.signal), method: 'Read' } };
    }
  }

  /**
   * A call that acts on exactly one node: sent once (never retried on another endpoint, since the node may already
   * have acted), its one result.
   */
  async actOn<M extends WithMetadata, T>(
    node: string,
    method: MachineMethod,
    request: object,
    map: Mapper<M, T>,
    opts: CallOptions,
  ): Promise<NodeResult<T>> {
    return first(await this.fanOut(method, request, [node], map, { ...opts, idempotent: false }), node);
  }
}
