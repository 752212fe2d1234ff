/**
 * The data calls, over raw HTTP/2 (h2stream.ts) instead of grpc-js: the EtcdSnapshot and Copy server streams and the
 * EtcdRecover upload, through the same endpoints, TLS set-up and failure sentences as the unary calls.
 */
import type { ClientHttp2Session } from 'node:http2';
import type { Readable } from 'node:stream';
import { UserError } from '../errors.js';
import { MAX_MESSAGE_BYTES, type EndpointPool } from './connection.js';
import { Code, rpcFailure, TalosRpcError } from './errors.js';
import { connectSession, DataStream, SourceError, uploadData } from './h2stream.js';
import type { Endpoint, TalosContextConfig } from './talosconfig.js';
import type { NodeResult, RpcFailure, TransferProgress } from './types.js';
import {
  canceledFailure,
  copyRequest,
  first,
  okVoid,
  unwrapNodeResults,
  voidResult,
  type WithMetadata,
} from './wire.js';

const ETCD_SNAPSHOT_PATH = '/machine.MachineService/EtcdSnapshot';
const COPY_PATH = '/machine.MachineService/Copy';
const ETCD_RECOVER_PATH = '/machine.MachineService/EtcdRecover';
/** EtcdRecover upload chunk: talosctl sends 4 KiB; larger chunks cost far fewer messages for the same bytes. */
export const DEFAULT_UPLOAD_CHUNK_BYTES = 256 * 1024;
const PROGRESS_INTERVAL_MS = 100;
/** talosctl's per-stream HTTP/2 window (65535×32): fewer flow-control stalls on 1 KiB-message streams. */
const STREAM_WINDOW_BYTES = 65535 * 32;

/** Options of the data streams (EtcdSnapshot, Copy). */
export interface DataStreamOptions {
  signal?: AbortSignal | undefined;
  idleTimeoutMs?: number;
  /**
   * The first-byte watchdog: stop the call when no byte has arrived this long after it was sent (EtcdSnapshot: the
   * client's snapshotFirstByteTimeoutMs unless given; Copy: none unless given).
   */
  firstByteTimeoutMs?: number;
  /** the chunks are views of reused buffers, each valid only until the next one is asked for (see h2stream.ts) */
  reuseBuffers?: boolean;
}

/** What the data calls share with the client: its endpoints, its talosconfig and its failure explanation. */
export interface DataCallContext {
  pool: EndpointPool;
  config: TalosContextConfig;
  streamIdleTimeoutMs: number;
  /** the first-byte watchdog of EtcdSnapshot (see DataStreamOptions.firstByteTimeoutMs) */
  snapshotFirstByteTimeoutMs: number;
  callFailure: (error: unknown, signal?: AbortSignal) => RpcFailure;
}

/** How an upload (EtcdRecover) is sent and watched. */
export interface RecoverOptions {
  signal?: AbortSignal;
  chunkSize?: number;
  onProgress?: (p: TransferProgress) => void;
  totalBytes?: number;
  /** the longest wait for the node's answer after the last byte (default: h2stream's answerDeadlineMs) */
  answerTimeoutMs?: number;
}

export class DataCalls {
  private readonly pool: EndpointPool;
  private readonly config: TalosContextConfig;
  private readonly streamIdleTimeoutMs: number;
  private readonly snapshotFirstByteTimeoutMs: number;
  private readonly callFailure: DataCallContext['callFailure'];

  constructor(context: DataCallContext) {
    this.pool = context.pool;
    this.config = context.config;
    this.streamIdleTimeoutMs = context.streamIdleTimeoutMs;
    this.snapshotFirstByteTimeoutMs = context.snapshotFirstByteTimeoutMs;
    this.callFailure = context.callFailure;
  }

  /**
   * `reuseBuffers` (beyond TalosClient's options): the chunks are views of a few reused buffers, each valid only until
   * the next chunk is asked for — for a reader that writes each chunk before asking for the next (acquire.ts).
   */
  etcdSnapshot(node: string, opts: DataStreamOptions = {}): AsyncIterable<Buffer> {
    // EtcdSnapshotRequest has no fields: its encoding is empty. A node whose etcd does not serve keeps this call open
    // with no byte for as long as the caller waits: machined snapshots through its local etcd client under the call's
    // own context, with no deadline of its own (siderolabs/talos:
    // internal/app/machined/internal/server/v1alpha1/v1alpha1_server.go@v1.14.0-rc.1:1970-1981), and that client
    // waits for a ready connection (etcd-io/etcd: client/v3/options.go@v3.6.4:29; talos#14212). Hence the watchdog.
    const firstByteTimeoutMs = opts.firstByteTimeoutMs ?? this.snapshotFirstByteTimeoutMs;
    return this.dataStream(ETCD_SNAPSHOT_PATH, Buffer.alloc(0), node, 'the etcd snapshot', {
      ...opts,
      firstByteTimeoutMs,
    });
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
    const firstByte = opts.firstByteTimeoutMs !== undefined ? { firstByteMs: opts.firstByteTimeoutMs } : {};
    const openStream = (signal?: AbortSignal) =>
      this.openDataStream(path, requestBytes, node, { idleMs, reuseBuffers, ...firstByte }, signal);
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
          // the method names the failure's cause: a silent EtcdSnapshot is etcd's, a silent Copy is not
          throw new TalosRpcError(node, { ...(error as RpcFailure), method: path.split('/').pop() ?? path }, what);
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
    reading: { idleMs: number; reuseBuffers: boolean; firstByteMs?: number },
    signal?: AbortSignal,
  ): Promise<DataStream> {
    let failure: RpcFailure = rpcFailure(Code.unavailable, 'no endpoint to connect to');
    for (const endpoint of this.pool.order()) {
      const credentials = this.pool.credentialsOf(endpoint);
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
          connectMs: this.pool.connectTimeoutMs,
          ...reading,
        },
        (error) =>
          this.callFailure({
            code: Code.unavailable,
            details: `No connection established. Last error: ${error.message}`,
          }),
      );
      this.pool.lastTried = endpoint;
      // a cancel while connecting ends the attempt at once (the reader's own cancel reaches the stream only later)
      const onAbort = () => stream.fail(canceledFailure());
      signal?.addEventListener('abort', onAbort, { once: true });
      const answered = await stream.whenAnswered;
      signal?.removeEventListener('abort', onAbort);
      if (answered) {
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

  async etcdRecover(node: string, source: Readable, opts: RecoverOptions = {}): Promise<NodeResult<void>> {
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
          ...(opts.answerTimeoutMs !== undefined ? { answerMs: opts.answerTimeoutMs } : {}),
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
      return { node, ok: false, error: { ...failure, method: 'EtcdRecover' } };
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
      const credentials = this.pool.credentialsOf(endpoint);
      this.pool.lastTried = endpoint;
      try {
        // an endpoint that accepts and never completes the handshake is unreachable: the next one is tried, and the
        // wizard retries an unreachable node until its window ends
        const session = await connectSession(endpoint, credentials.tlsOptions(), {
          connectMs: this.pool.connectTimeoutMs,
          signal,
        });
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
