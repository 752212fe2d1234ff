/**
 * Server-streaming gRPC calls of `common.Data` (EtcdSnapshot, Copy) spoken directly over node:http2.
 *
 * Why not grpc-js: a Talos node sends these streams in 1 KiB messages, and grpc-js spends its time per message
 * (framing, events, deserialisation): a 64 MiB snapshot took several times as long as talosctl's Go client on the
 * same machine. Here the length-prefixed messages are cut out of the response's DATA frames and decoded in place,
 * and those frames are read straight from the socket's reads (DataFrameTap) instead of one node:http2 stream event
 * per frame: a grpc-go node sends each 1 KiB message in a frame of its own. TLS is the same as every other call's
 * (the endpoint's TalosChannelCredentials), so the same CA, client certificate, server-name rules and no IP SNI.
 *
 * The wire (gRPC over HTTP/2): POST with content-type application/grpc and te: trailers, the request as one
 * length-prefixed message (flag byte 0, 4-byte big-endian length), then response DATA of length-prefixed messages,
 * then trailers grpc-status / grpc-message. A stream that ends without grpc-status 0 failed, whatever came before.
 */
import { once } from 'node:events';
import { open, type FileHandle } from 'node:fs/promises';
import http2 from 'node:http2';
import type { OnReadOpts } from 'node:net';
import { Duplex, Readable } from 'node:stream';
import tls from 'node:tls';
import v8 from 'node:v8';
import { Code, codeName, rpcFailure } from './errors.js';
import { decodeData, scanData } from './data-codec.js';
import { failureFromMetadata } from './errors.js';
import type { Endpoint } from './talosconfig.js';
import type { RpcFailure } from './types.js';
import { nodeText } from '../text/sanitize.js';

export interface DataStreamRequest {
  endpoint: Endpoint;
  tlsOptions: tls.ConnectionOptions;
  /** :authority (the server-name override for tunnels, else the endpoint) */
  authority: string;
  path: string;
  request: Buffer;
  metadata: Record<string, string[]>;
  /** the HTTP/2 receive window: talosctl uses 65535×32 per stream */
  windowBytes: number;
  maxMessageBytes: number;
  idleMs: number;
  /**
   * The slowest transfer accepted, averaged over each idleMs window (default 1 KiB/s): a node that trickles a byte
   * now and then is as stuck as a silent one, and the idle limit alone would wait for it forever.
   */
  minBytesPerSecond?: number;
  /**
   * The first-byte watchdog: a stream that has sent no data this long after the request left is stopped, whatever
   * the idle limit (a non-serving etcd keeps EtcdSnapshot open with no byte for as long as the caller waits:
   * talos#14212). The failure carries `silentMs`.
   */
  firstByteMs?: number;
  /**
   * Hand out views of a few reused buffers instead of new ones: each buffer next() returns is then valid only until
   * the next call to next() (the reader must be done with it by then: written, hashed, copied). A reader that keeps
   * chunks (a pipeline, a tar extractor) must leave this off.
   */
  reuseBuffers?: boolean;
  /**
   * How long the connection may take to be up (TCP, TLS, HTTP/2 settings; default DEFAULT_CONNECT_MS): an endpoint
   * that accepts and never completes the handshake fails as unreachable, so the next endpoint is tried.
   */
  connectMs?: number;
}

const seconds = (ms: number) => `${Math.round(ms / 100) / 10} s`;

let youngGenerationHeld = false;
/**
 * Keeps V8's young generation at the size it has when the first data stream opens. A stream allocates a Buffer per
 * HTTP/2 DATA frame (node:http2's, 16 KiB each) and a few promises per hand-out, all short-lived, and V8 doubles the
 * new space as scavenges go by (--semi-space-growth-factor=2; 16 -> 32 MiB in a 96 MiB stream): on a 256 MiB
 * snapshot that growth and the frames' memory freed only at the larger scavenges were 12-15 MB of the command's peak,
 * which the verification after it then stacks on (110-113 MB -> 97-100 MB; bench/RESULTS.md, transfer). The flag is
 * process-wide and takes effect when set at run time (measured); a new space that stays small only means more
 * frequent, cheaper scavenges.
 */
function holdYoungGeneration(): void {
  if (youngGenerationHeld) return;
  youngGenerationHeld = true;
  v8.setFlagsFromString('--semi-space-growth-factor=1');
}

/**
 * Buffered payload before the node is held back (the window the tap took is not given back, or the node:http2 stream
 * is paused: HTTP/2 flow control then stops the node). 1 MiB keeps a 256 MiB download as fast as 4 MiB did and its
 * peak 4-6 MB lower (bench/RESULTS.md, transfer); 4 MiB with 1 MiB batches held the node back a third as long at load
 * 10 but did not shorten the download (2.68 against 2.52 s, 6 alternated runs): the node, not our writes, sets the pace.
 */
const BUFFER_BYTES = 1024 * 1024;
const GRPC_HEADER_BYTES = 5;
/**
 * Payload is gathered into buffers of this size; next() hands out a full one (one file write of the reader), or what
 * has gathered at the end or when the flush timer finds bytes waiting.
 */
const BATCH_BYTES = 256 * 1024;
/** The socket's read buffer (a TLS read hands over at most 16 KiB of plaintext at a time) */
const READ_BUFFER_BYTES = 64 * 1024;
const FLUSH_MS = 200;
const DEFAULT_MIN_BYTES_PER_SECOND = 1024;
/** The upload's messages are copied into buffers of this size, each one HTTP/2 write, at most OUT_BUFFERS unsent. */
const OUT_BYTES = 256 * 1024;
const OUT_BUFFERS = 4;
/** gRPC header, the common.Data `bytes` field tag and a varint length of up to 5 bytes */
const MAX_PREFIX_BYTES = GRPC_HEADER_BYTES + 1 + 5;

/** grpc-message is percent-encoded (gRPC over HTTP/2 spec). */
function decodeGrpcMessage(value: unknown): string {
  const text = Array.isArray(value) ? value.join(', ') : String(value ?? '');
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** The request headers of a gRPC call, with its metadata (`nodes`) as headers. */
function grpcRequestHeaders(req: {
  path: string;
  authority: string;
  metadata: Record<string, string[]>;
}): http2.OutgoingHttpHeaders {
  return {
    ':method': 'POST',
    ':path': req.path,
    ':authority': req.authority,
    'content-type': 'application/grpc',
    te: 'trailers',
    'user-agent': 'talos-dr (node http2)',
    ...req.metadata,
  };
}

function statusFailure(headers: http2.IncomingHttpHeaders): RpcFailure | null {
  const status = Number(headers['grpc-status']);
  if (!Number.isInteger(status) || status === 0) return null;
  return rpcFailure(status, decodeGrpcMessage(headers['grpc-message']) || codeName(status));
}

/** What the tap hands the data stream (DataStream implements it). */
export interface TapSink {
  onArrival(): void;
  onDataFrame(length: number): void;
  onPayload(buf: Buffer, start: number, end: number): void;
  onProtocolError(what: string): void;
}

const FRAME_HEADER_BYTES = 9;
const FRAME_DATA = 0x0;
const FRAME_HEADERS = 0x1;
const FRAME_RST_STREAM = 0x3;
const FRAME_WINDOW_UPDATE = 0x8;
const FLAG_END_STREAM = 0x1;
const FLAG_PADDED = 0x8;

/**
 * Sits between the TLS socket and node:http2's session and takes the response's DATA frames out of the byte stream
 * before nghttp2 sees them; everything else (settings, headers, trailers, pings, resets, goaway) passes through
 * untouched, so the session keeps its own handling and sentences for them. Why: a Talos node sends EtcdSnapshot in
 * 1 KiB messages, one HTTP/2 DATA frame each (grpc-go writes every message as frames of its own), and node:http2
 * hands every DATA frame to JavaScript as a Buffer and a stream event of its own: 280,000 of them for a 256 MiB
 * snapshot, the largest part of the main thread's work. Here one socket read (up to 16 KiB of plaintext) is one
 * event, and the frames in it are read in place (RFC 9113 §4.1 frame layout, §6.1 DATA).
 *
 * Flow control of what the tap takes is then ours: nghttp2 never sees those bytes, so the data stream gives the
 * window back itself (windowUpdate, RFC 9113 §6.9) as the reader keeps up, and holds it back when the reader is
 * behind, which stops the node. A DATA frame that ends the stream is passed on as an empty one with END_STREAM, so
 * the session still sees the stream end. DATA before the response's headers is left to nghttp2 (a protocol error
 * there, as before).
 */
export class DataFrameTap extends Duplex {
  /** the response stream (the session's first request) */
  streamId = 1;
  private readonly head = Buffer.alloc(FRAME_HEADER_BYTES);
  private headFilled = 0;
  /** what the bytes being read belong to: a frame header, a frame passed on, a DATA frame taken */
  private mode: 'head' | 'pass' | 'data' = 'head';
  /** bytes of the current frame still to come; for a DATA frame taken, its payload and padding still to come */
  private frameLeft = 0;
  private dataLeft = 0;
  private padLength = -1;
  private endsStream = false;
  private answered = false;
  private streamDone = false;
  private dataPassed = false;

  constructor(
    private readonly socket: tls.TLSSocket,
    private readonly sink: TapSink,
  ) {
    super();
    socket.on('end', () => this.push(null));
    socket.on('close', () => this.destroy());
  }

  override _read(): void {}

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.socket.write(chunk, callback);
  }

  /**
   * What gathered while a write was pending, handed to the socket at once and in order. node:http2's output comes as
   * batches of whole frames, but a DATA frame's header and payload are chunks of their own (node's JSStreamSocket
   * writes a batch chunk by chunk under cork()): written one per completed write, a frame of ours could land between
   * the two. windowUpdate() queues its frames here too, so they go out between batches only.
   */
  override _writev(
    chunks: { chunk: Buffer; encoding: BufferEncoding }[],
    callback: (error?: Error | null) => void,
  ): void {
    this.socket.cork();
    // the socket completes writes in order: the last one's callback stands for all of them
    chunks.forEach(({ chunk }, i) => this.socket.write(chunk, i === chunks.length - 1 ? callback : undefined));
    this.socket.uncork();
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.socket.end(callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.socket.destroy();
    callback(error);
  }

  /** Gives the node `bytes` more window on the response stream and the connection (behind the session's output). */
  windowUpdate(bytes: number): void {
    if (this.socket.destroyed || this.destroyed || this.writableEnded || this.streamDone) return;
    const frames = Buffer.alloc(2 * (FRAME_HEADER_BYTES + 4));
    for (const [at, stream] of [
      [0, this.streamId],
      [FRAME_HEADER_BYTES + 4, 0],
    ] as const) {
      frames.writeUIntBE(4, at, 3);
      frames[at + 3] = FRAME_WINDOW_UPDATE;
      frames.writeUInt32BE(stream, at + 5);
      frames.writeUInt32BE(bytes, at + FRAME_HEADER_BYTES);
    }
    this.write(frames);
  }

  /**
   * One socket read, chunk[0, length): frames passed on in pieces as they come (copied: the socket reads into one
   * buffer over and over), the response's DATA payload handed to the sink, which copies what it keeps at once.
   */
  takeBytes(chunk: Buffer, length: number): void {
    let at = 0;
    let passFrom = -1;
    let tookData = false;
    const flushPass = (to: number) => {
      if (passFrom >= 0 && to > passFrom) this.push(Buffer.from(chunk.subarray(passFrom, to)));
      passFrom = -1;
    };
    while (at < length) {
      if (this.mode === 'head') {
        const headAt = at;
        if (this.headFilled === 0 && length - at >= FRAME_HEADER_BYTES) {
          chunk.copy(this.head, 0, at, at + FRAME_HEADER_BYTES);
          at += FRAME_HEADER_BYTES;
        } else {
          const n = Math.min(FRAME_HEADER_BYTES - this.headFilled, length - at);
          chunk.copy(this.head, this.headFilled, at, at + n);
          this.headFilled += n;
          at += n;
          if (this.headFilled < FRAME_HEADER_BYTES) {
            // the header's first bytes are held here until the rest comes; nothing passed on yet
            flushPass(headAt);
            break;
          }
        }
        const whole = this.headFilled === 0;
        this.headFilled = 0;
        const size = this.head.readUIntBE(0, 3);
        const type = this.head[3] as number;
        const flags = this.head[4] as number;
        const stream = this.head.readUInt32BE(5) & 0x7fffffff;
        const ours = stream === this.streamId;
        const taken = this.answered && !this.streamDone && !this.dataPassed && !(flags & FLAG_PADDED && size === 0);
        if (type === FRAME_DATA && ours && taken) {
          flushPass(headAt);
          tookData = true;
          if (size > 0) this.sink.onDataFrame(size);
          this.mode = 'data';
          this.frameLeft = size;
          this.dataLeft = size;
          this.padLength = flags & FLAG_PADDED ? -1 : 0;
          this.endsStream = (flags & FLAG_END_STREAM) !== 0;
          if (size === 0) this.endData();
          continue;
        }
        if (ours && type === FRAME_HEADERS) {
          this.answered = true;
          if (flags & FLAG_END_STREAM) this.streamDone = true;
        }
        if (ours && type === FRAME_RST_STREAM) this.streamDone = true;
        // DATA the session saw (before the response's headers: its protocol error) keeps all the rest on its path
        if (ours && type === FRAME_DATA) this.dataPassed = true;
        // passed on: the header as it came (from the chunk, or the held copy when it was split)
        if (whole) {
          if (passFrom < 0) passFrom = headAt;
        } else {
          flushPass(headAt);
          this.push(Buffer.from(this.head));
          passFrom = at;
        }
        this.frameLeft = size;
        this.mode = size > 0 ? 'pass' : 'head';
      } else if (this.mode === 'pass') {
        if (passFrom < 0) passFrom = at;
        const n = Math.min(this.frameLeft, length - at);
        at += n;
        this.frameLeft -= n;
        if (this.frameLeft === 0) this.mode = 'head';
      } else {
        at = this.takeData(chunk, at, length);
      }
    }
    flushPass(length);
    if (tookData) this.sink.onArrival();
  }

  /** Reads a taken DATA frame's bytes from chunk[at]: its pad length, payload and padding; returns where it stopped. */
  private takeData(chunk: Buffer, at: number, length: number): number {
    if (this.padLength < 0) {
      this.padLength = chunk[at++] as number;
      this.frameLeft--;
      this.dataLeft = this.frameLeft - this.padLength;
      if (this.dataLeft < 0) {
        this.sink.onProtocolError('the node sent a DATA frame with more padding than the frame holds');
        this.streamDone = true;
      }
    }
    const n = Math.min(Math.max(this.dataLeft, 0), length - at);
    if (n > 0) this.sink.onPayload(chunk, at, at + n);
    this.dataLeft -= n;
    at += n;
    const skip = Math.min(this.frameLeft - n, length - at);
    this.frameLeft -= n + skip;
    at += skip;
    if (this.frameLeft === 0) this.endData();
    return at;
  }

  /** After a taken DATA frame: one that ended the stream is told to the session as an empty DATA with END_STREAM. */
  private endData(): void {
    this.mode = 'head';
    if (!this.endsStream) return;
    this.streamDone = true;
    const end = Buffer.alloc(FRAME_HEADER_BYTES);
    end[3] = FRAME_DATA;
    end[4] = FLAG_END_STREAM;
    end.writeUInt32BE(this.streamId, 5);
    this.push(end);
  }
}

/**
 * One data stream: bytes handed out in batches by next(), null at a clean end; next() throws an RpcFailure for a
 * connection failure, an in-band metadata.error, a non-OK status, a stream cut without status, or silence longer
 * than the idle limit — always after handing out the bytes that came before it.
 */
export class DataStream {
  private readonly session: http2.ClientHttp2Session;
  private readonly stream: http2.ClientHttp2Stream;
  private readonly tap: DataFrameTap;
  /** DATA bytes taken by the tap and not yet given back to the node as window, and the size of one update */
  private owed = 0;
  private readonly updateBytes: number;
  /** true while window updates are held back because the reader is behind (the node is stopped by flow control) */
  private withholding = false;
  /** payload gathered and not handed out yet, each view with the batch buffer it lies in (null: its own copy) */
  private readonly queue: { view: Buffer; owner: Buffer | null }[] = [];
  private batch: Buffer = Buffer.allocUnsafe(BATCH_BYTES);
  private batchStart = 0;
  private batchUsed = 0;
  private queued = 0;
  /** with reuseBuffers: the view handed out last (released at the next call), and batch buffers free for reuse */
  private handedOut: { view: Buffer; owner: Buffer | null } | null = null;
  private readonly free: Buffer[] = [];
  /**
   * The message being reassembled across chunks: `buf` is its whole frame, allocated once its header is known (a
   * 5-byte staging buffer before), `filled` how much of it has arrived. Copying each chunk in place keeps a 32 MiB
   * message linear; concatenating head and chunk on every arrival was quadratic (68 s for one 16 MiB message).
   */
  private pending: { buf: Buffer; filled: number } | null = null;
  private ended = false;
  /** the flush timer found bytes waiting: next() hands out the batch being filled as it is */
  private flushDue = false;
  private failure: RpcFailure | undefined;
  private status: 'none' | 'ok' = 'none';
  private wake: (() => void) | undefined;
  /** when the last byte arrived (or the reader last held the stream paused), and the bytes of the current window */
  private lastDataAt = Date.now();
  private windowStart = Date.now();
  private windowBytes = 0;
  /** when the request left, and whether any data arrived since (the first-byte watchdog) */
  private readonly startedAt = Date.now();
  private receivedAny = false;
  private readonly idleTimer: NodeJS.Timeout;
  private readonly flushTimer: NodeJS.Timeout;
  private readonly connectTimer: NodeJS.Timeout;
  /** true once the server sent response headers: from then on the call counts as answered */
  answered = false;
  private settleAnswered: ((answered: boolean) => void) | undefined;
  /** Resolves true when the endpoint answered, false when the stream failed before any answer (try another). */
  readonly whenAnswered = new Promise<boolean>((resolve) => (this.settleAnswered = resolve));

  constructor(
    private readonly req: DataStreamRequest,
    private readonly describeConnectionError: (error: Error) => RpcFailure,
  ) {
    const { endpoint } = req;
    holdYoungGeneration();
    // Read into one buffer of our own (tls onread): no new Buffer and no stream event per read.
    const readBuffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);
    // tls.connect takes net's onread (Node's tls docs), which @types/node leaves out of ConnectionOptions
    const options: tls.ConnectionOptions & { onread: OnReadOpts } = {
      host: endpoint.host,
      port: endpoint.port,
      ...req.tlsOptions,
      onread: {
        buffer: readBuffer,
        callback: (length: number, buf: Uint8Array) => {
          this.tap.takeBytes(buf as Buffer, length);
          return true;
        },
      },
    };
    const socket = tls.connect(options);
    this.tap = new DataFrameTap(socket, this);
    // The socket's own failure, as node:http2 reported it before the tap sat between them (same sentences).
    socket.on('error', (error) => this.fail(this.describeConnectionError(error)));
    this.session = http2.connect(`https://${endpoint.address}`, {
      createConnection: () => this.tap,
      settings: { initialWindowSize: req.windowBytes, enablePush: false },
    });
    this.session.on('error', (error) => this.fail(this.describeConnectionError(error)));
    const connectMs = req.connectMs ?? DEFAULT_CONNECT_MS;
    this.connectTimer = setTimeout(
      () => this.fail(this.describeConnectionError(connectTimeoutError(connectMs))),
      connectMs,
    );
    // Over the tap the session counts as connected at once; the handshake is the socket's.
    socket.once('secureConnect', () => clearTimeout(this.connectTimer));
    this.session.on('connect', () => this.session.setLocalWindowSize(req.windowBytes * 16));
    this.updateBytes = Math.max(16 * 1024, Math.floor(req.windowBytes / 4));
    this.stream = this.session.request(grpcRequestHeaders(req));
    this.stream.on('ready', () => (this.tap.streamId = this.stream.id ?? 1));
    this.stream.on('response', (response) => this.onResponse(response));
    // DATA the tap does not take (before the response's headers) still comes through node:http2
    this.stream.on('data', (chunk: Buffer) => {
      this.onArrival();
      this.onPayload(chunk, 0, chunk.length);
      if (this.queued >= BUFFER_BYTES) this.stream.pause();
    });
    this.stream.on('trailers', (trailers) => this.onTrailers(trailers));
    this.stream.on('end', () => this.onEnd());
    this.stream.on('error', (error) => this.fail(this.describeConnectionError(error)));
    this.stream.on('close', () => this.onEnd());
    const frame = Buffer.alloc(GRPC_HEADER_BYTES + req.request.length);
    frame.writeUInt32BE(req.request.length, 1);
    req.request.copy(frame, GRPC_HEADER_BYTES);
    this.stream.end(frame);
    // Checked by interval rather than re-armed per chunk, which would cost a timer operation per chunk.
    // A slow stream still hands its bytes out at least this often (progress stays live).
    this.flushTimer = setInterval(() => {
      if (this.queued === 0) return;
      this.flushDue = true;
      this.notify();
    }, FLUSH_MS);
    // A stall is caught within an eighth of the limit after it (checking once per limit caught it anywhere
    // between one and two limits: 120 s for a stated 60 s).
    const limit = Math.min(req.idleMs, req.firstByteMs ?? Infinity);
    this.idleTimer = setInterval(() => this.checkProgress(), Math.max(25, Math.min(1000, limit / 8)));
  }

  /** Fails a stream that sent nothing for idleMs, or less than the rate floor over a whole idleMs window. */
  private checkProgress(): void {
    const now = Date.now();
    const { firstByteMs } = this.req;
    if (firstByteMs !== undefined && !this.receivedAny && now - this.startedAt >= firstByteMs) {
      // the limit, not the moment the check ran: the sentence names the wait the user (or the option) chose
      return this.fail({
        ...rpcFailure(Code.deadlineExceeded, `no byte in ${seconds(firstByteMs)}`),
        silentMs: firstByteMs,
      });
    }
    // held back by our own reader (flow control), not by the node
    if ((this.withholding && this.answered) || this.stream.isPaused()) {
      this.lastDataAt = now;
      this.windowStart = now;
      this.windowBytes = 0;
      return;
    }
    const { idleMs } = this.req;
    if (now - this.lastDataAt >= idleMs)
      return this.fail(rpcFailure(Code.deadlineExceeded, `no data for ${seconds(now - this.lastDataAt)}`));
    const elapsed = now - this.windowStart;
    // a stream gone quiet is left to the check above, which says so
    if (elapsed < idleMs || now - this.lastDataAt >= idleMs / 2) return;
    const floor = this.req.minBytesPerSecond ?? DEFAULT_MIN_BYTES_PER_SECOND;
    if (this.windowBytes < (floor * elapsed) / 1000)
      return this.fail(
        rpcFailure(
          Code.deadlineExceeded,
          `only ${this.windowBytes} bytes arrived in ${seconds(elapsed)}, less than ${floor} bytes a second`,
        ),
      );
    this.windowStart = now;
    this.windowBytes = 0;
  }

  private onResponse(headers: http2.IncomingHttpHeaders): void {
    this.answered = true;
    this.settleAnswered?.(true);
    this.lastDataAt = Date.now();
    const httpStatus = Number(headers[':status']);
    // A "trailers-only" answer: the node refused at once, the status is in the headers.
    const refused = statusFailure(headers);
    if (refused) return this.fail(refused);
    if (headers['grpc-status'] === '0') this.status = 'ok';
    if (httpStatus !== 200) return this.fail(rpcFailure(Code.unknown, `the endpoint answered HTTP ${httpStatus}`));
    const type = String(headers['content-type'] ?? '');
    if (!type.startsWith('application/grpc')) {
      this.fail(rpcFailure(Code.unknown, `the endpoint answered ${type || 'without a content type'}, not gRPC`));
    }
  }

  /** Bytes of a response arrived (the tap: once per socket read, not per DATA frame). */
  onArrival(): void {
    this.lastDataAt = Date.now();
    this.receivedAny = true;
  }

  /**
   * A DATA frame of `length` bytes (padding included) taken by the tap: its window is owed back to the node. A node
   * that sends more than the window it was given is refused, as nghttp2 would (FLOW_CONTROL_ERROR): otherwise it
   * could fill our memory while the reader is behind.
   */
  onDataFrame(length: number): void {
    this.owed += length;
    if (this.owed > this.req.windowBytes) {
      return this.fail(
        rpcFailure(Code.internal, `the node sent more than the ${this.req.windowBytes} bytes its window allowed`),
      );
    }
    if (this.owed >= this.updateBytes) this.giveWindow();
  }

  /**
   * Gives the node back the window of what arrived, unless the reader is BUFFER_BYTES behind: then the updates are
   * held (the node stops once its window is spent) until next() has handed enough out.
   */
  private giveWindow(): void {
    if (this.ended || this.owed === 0) return;
    if (this.queued >= BUFFER_BYTES) {
      this.withholding = true;
      return;
    }
    this.withholding = false;
    this.tap.windowUpdate(this.owed);
    this.owed = 0;
  }

  /** A malformed frame the tap found: the stream cannot be read further. */
  onProtocolError(what: string): void {
    this.fail(rpcFailure(Code.internal, what));
  }

  /** Payload bytes buf[start, end) of the response's DATA frames, in order (a message may span several pieces). */
  onPayload(buf: Buffer, start: number, end: number): void {
    // The tap takes DATA only after it saw the response's headers, and hands it over before node:http2 reports them
    // ('response'): the endpoint has answered. A first message that is apid's in-band error (it could not reach the
    // node) would otherwise end the stream as unanswered, and the endpoints were walked to the last one, which the
    // pool then kept even when it was a dead node's.
    if (!this.answered) {
      this.answered = true;
      this.settleAnswered?.(true);
    }
    this.windowBytes += end - start;
    if (this.failure) return;
    let offset = start;
    if (this.pending) {
      offset = this.completePending(buf, start, end);
      if (offset < 0 || this.failure) return this.afterChunk();
    }
    offset = this.parseFrames(buf, offset, end);
    // Keep an incomplete message for the next piece: copied into a buffer of its own size, so the chunk can be freed.
    if (offset >= 0 && offset < end) this.startPending(buf, offset, end);
    this.afterChunk();
  }

  /** Starts reassembling the message that begins at buf[offset] (its header, when complete, was already checked). */
  private startPending(buf: Buffer, offset: number, end: number): void {
    const rest = end - offset;
    const size = rest >= GRPC_HEADER_BYTES ? GRPC_HEADER_BYTES + buf.readUInt32BE(offset + 1) : GRPC_HEADER_BYTES;
    const whole = Buffer.allocUnsafe(size);
    buf.copy(whole, 0, offset, end);
    this.pending = { buf: whole, filled: rest };
  }

  private afterChunk(): void {
    // Wake the reader per full batch rather than per piece: each wake is a round of promises and a generator step,
    // and each hand-out one file write. A slow trickle still arrives: the flush timer, the end and a failure wake it.
    if (this.queue.length > 0) this.notify();
  }

  /**
   * Finishes the message left incomplete by the previous chunk with the head of this one, copying only the bytes
   * that message needs (not the whole chunk). Returns where the chunk's own messages start, or -1 when the chunk
   * was not enough to finish it.
   */
  private completePending(chunk: Buffer, start: number, end: number): number {
    const pending = this.pending as { buf: Buffer; filled: number };
    let used = start;
    if (pending.filled < GRPC_HEADER_BYTES) {
      const take = Math.min(GRPC_HEADER_BYTES - pending.filled, end - used);
      chunk.copy(pending.buf, pending.filled, used, used + take);
      pending.filled += take;
      used += take;
      if (pending.filled < GRPC_HEADER_BYTES) return -1;
      // the header is complete: check it before making room for the message it announces
      if (!this.frameAcceptable(pending.buf, 0)) return -1;
      const whole = Buffer.allocUnsafe(GRPC_HEADER_BYTES + pending.buf.readUInt32BE(1));
      pending.buf.copy(whole, 0, 0, GRPC_HEADER_BYTES);
      pending.buf = whole;
    }
    const take = Math.min(pending.buf.length - pending.filled, end - used);
    chunk.copy(pending.buf, pending.filled, used, used + take);
    pending.filled += take;
    used += take;
    if (pending.filled < pending.buf.length) return -1;
    this.pending = null;
    this.parseFrames(pending.buf, 0, pending.buf.length);
    return used;
  }

  /** Checks a frame header: no compression (we never asked for it), no message over the limit. */
  private frameAcceptable(buf: Buffer, offset: number): boolean {
    const length = buf.readUInt32BE(offset + 1);
    if (length > this.req.maxMessageBytes) {
      this.fail(rpcFailure(Code.resourceExhausted, `a message of ${length} bytes exceeds the limit`));
      return false;
    }
    if (buf[offset] !== 0) {
      this.fail(rpcFailure(Code.internal, 'the node sent a compressed message'));
      return false;
    }
    return true;
  }

  /** Handles every complete length-prefixed message from offset on; returns where the incomplete rest begins. */
  private parseFrames(buf: Buffer, offset: number, limit: number): number {
    while (limit - offset >= GRPC_HEADER_BYTES) {
      if (!this.frameAcceptable(buf, offset)) return -1;
      const start = offset + GRPC_HEADER_BYTES;
      const end = start + buf.readUInt32BE(offset + 1);
      if (end > limit) break;
      this.onMessage(buf, start, end);
      if (this.failure) return -1;
      offset = end;
    }
    return offset;
  }

  /** One common.Data message in buf[start, end): its payload is copied into the current batch. */
  private onMessage(buf: Buffer, start: number, end: number): void {
    try {
      const found = scanData(buf, start, end);
      if (found.failed) {
        const message = decodeData(buf.subarray(start, end));
        if (message.error || message.status?.code) {
          return this.fail(failureFromMetadata(message.error, message.status));
        }
        return this.append(message.bytes, 0, message.bytes.length);
      }
      if (found.payloadStart >= 0) this.append(buf, found.payloadStart, found.payloadEnd);
    } catch (error) {
      this.fail(rpcFailure(Code.internal, `a message could not be decoded (${(error as Error).message})`));
    }
  }

  /**
   * Copies payload bytes into a batch buffer: one copy per message is cheaper than keeping a view per 1 KiB
   * message and concatenating them later (and leaves nothing for the garbage collector to chase).
   */
  private append(buf: Buffer, start: number, end: number): void {
    const length = end - start;
    if (length === 0) return;
    if (this.batchUsed + length > this.batch.length) {
      this.flushBatch();
      this.batch = this.free.pop() ?? Buffer.allocUnsafe(BATCH_BYTES);
      this.batchStart = 0;
      this.batchUsed = 0;
    }
    if (length > this.batch.length) {
      this.queue.push({ view: Buffer.from(buf.subarray(start, end)), owner: null });
    } else {
      buf.copy(this.batch, this.batchUsed, start, end);
      this.batchUsed += length;
    }
    this.queued += length;
  }

  /** Queues what the batch gathered since the last hand-out; the batch keeps filling after it (no new buffer). */
  private flushBatch(): void {
    if (this.batchUsed === this.batchStart) return;
    this.queue.push({ view: this.batch.subarray(this.batchStart, this.batchUsed), owner: this.batch });
    this.batchStart = this.batchUsed;
  }

  private onTrailers(trailers: http2.IncomingHttpHeaders): void {
    const failure = statusFailure(trailers);
    if (failure) this.fail(failure);
    else if (trailers['grpc-status'] === '0') this.status = 'ok';
  }

  private onEnd(): void {
    if (this.ended) return;
    if (!this.failure && this.status !== 'ok') {
      const cut = this.pending ? 'in the middle of a message' : 'without a status';
      this.failure = rpcFailure(Code.unavailable, `the stream ended ${cut} (the connection was cut)`);
    } else if (!this.failure && this.pending) {
      this.failure = rpcFailure(Code.internal, 'the stream ended in the middle of a message');
    }
    this.ended = true;
    this.shutdown();
    this.notify();
  }

  /** Ends the stream with this failure (the first one wins); its text, often the node's, made safe to show. */
  fail(failure: RpcFailure): void {
    this.failure ??= { ...failure, message: nodeText(failure.message) };
    this.ended = true;
    this.shutdown();
    this.notify();
  }

  private shutdown(): void {
    clearTimeout(this.connectTimer);
    clearInterval(this.idleTimer);
    clearInterval(this.flushTimer);
    if (!this.stream.closed) this.stream.close(http2.constants.NGHTTP2_CANCEL);
    if (!this.session.closed) this.session.close();
  }

  private notify(): void {
    if (this.ended && !this.answered) this.settleAnswered?.(false);
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  /**
   * The payload gathered since the last call, one contiguous view at a time (never a concatenation: no copy, no
   * new buffer); null at a clean end.
   */
  async next(): Promise<Buffer | null> {
    if (this.req.reuseBuffers) this.release();
    for (;;) {
      // a batch is handed out once full (one write of BATCH_BYTES), a part of one only at the end or when the flush
      // timer finds bytes waiting (a slow stream's progress)
      if (this.flushDue || this.ended) {
        this.flushDue = false;
        this.flushBatch();
      }
      const item = this.queue.shift();
      if (item) {
        this.queued -= item.view.length;
        if (this.req.reuseBuffers) this.handedOut = item;
        if (!this.ended && this.queued < BUFFER_BYTES) {
          if (this.withholding) this.giveWindow();
          if (this.stream.isPaused()) this.stream.resume();
        }
        return item.view;
      }
      if (this.failure) throw this.failure;
      if (this.ended) return null;
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }

  /**
   * The reader is done with the view handed out last: its batch buffer is free again once no other view lies in it
   * (views are handed out in order, so only the queue and the batch being filled can still point into it).
   */
  private release(): void {
    const owner = this.handedOut?.owner;
    this.handedOut = null;
    if (!owner || owner === this.batch || this.queue.some((item) => item.owner === owner)) return;
    this.free.push(owner);
  }

  close(): void {
    if (!this.ended) {
      this.failure ??= rpcFailure(Code.canceled, 'stopped by the reader');
      this.ended = true;
    }
    this.shutdown();
  }
}

export interface UploadRequest {
  authority: string;
  path: string;
  metadata: Record<string, string[]>;
  /** payload bytes per common.Data message */
  chunkSize: number;
  onSent: (bytes: number) => void;
  signal?: AbortSignal;
  /**
   * How long the node may take no data (HTTP/2 flow control holding every write) before the upload fails as
   * DeadlineExceeded, and the window over which it must take at least `minBytesPerSecond` (default 60 s, 1 KiB/s):
   * a node that stops reading must not hold the upload forever.
   */
  idleMs?: number;
  minBytesPerSecond?: number;
  /**
   * The longest wait for the node's answer once the last byte is sent (default: answerDeadlineMs of the bytes
   * sent); then the upload fails as DeadlineExceeded instead of waiting for ever at 100%.
   */
  answerMs?: number;
}

const DEFAULT_UPLOAD_IDLE_MS = 60_000;

/**
 * What a node does between the upload's last byte and its answer: machined writes each message to
 * /var/lib/etcd.snapshot as it arrives, then at the end of the stream fsyncs and closes that file and answers
 * (siderolabs/talos: internal/app/machined/internal/server/v1alpha1/v1alpha1_server.go@v1.14.0-rc.1:2050-2064;
 * the restore itself runs later, at bootstrap: internal/app/machined/pkg/system/services/etcd.go@v1.14.0-rc.1:592).
 * The fsync is the only step that grows with the upload: at worst it writes the whole file. The wait is a minute
 * (a loaded machined, a slow scheduler) plus the whole file at 10 MiB/s (an SD card or a busy network disk): 60 s
 * for a small snapshot, 70 s for 100 MiB, 265 s for 2 GiB (etcd's default quota). Generous by design: a node that
 * has not answered by then is not going to, and the wizard's retry (the upload truncates the file) is the way on.
 */
export function answerDeadlineMs(bytesSent: number): number {
  return 60_000 + Math.ceil(bytesSent / ((10 * 1024 * 1024) / 1000));
}

/** What the node answered: each response message's metadata (EtcdRecover { metadata = 1 }). */
export interface UploadAnswer {
  messages: { metadata: { hostname: string; error: string; status: { code: number; message: string } | null } }[];
}

/**
 * How long a connection may take to be up (TCP, the TLS handshake and HTTP/2's settings) when the caller gives no
 * limit: the unary calls' connect limit (client.ts DEFAULT_CONNECT_TIMEOUT_MS).
 */
export const DEFAULT_CONNECT_MS = 5_000;

/** What a connection that did not come up in time failed with: the endpoint counts as unreachable. */
export function connectTimeoutError(ms: number): Error {
  return new Error(`the endpoint did not complete the TLS handshake in ${seconds(ms)}`);
}

/**
 * Connects (TLS + HTTP/2) and resolves once the session is up; rejects with the connection error otherwise, or when
 * it is not up within `connectMs`: a listener that accepts and never speaks TLS (a half-dead node, a port-forward
 * whose far end is gone) would otherwise hold the caller for ever with nothing to show.
 */
export function connectSession(
  endpoint: Endpoint,
  tlsOptions: tls.ConnectionOptions,
  opts: { windowBytes?: number; connectMs?: number; signal?: AbortSignal | undefined } = {},
): Promise<http2.ClientHttp2Session> {
  const { windowBytes, connectMs = DEFAULT_CONNECT_MS, signal } = opts;
  return new Promise((resolve, reject) => {
    const session = http2.connect(`https://${endpoint.address}`, {
      createConnection: () => tls.connect({ host: endpoint.host, port: endpoint.port, ...tlsOptions }),
      ...(windowBytes ? { settings: { initialWindowSize: windowBytes, enablePush: false } } : {}),
    });
    const onError = (error: Error) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      session.destroy();
      reject(error);
    };
    // a cancel while connecting (the wizard stopped the step) ends the wait at once, not at the connect limit
    const onAbort = () => onError(new Error('cancelled while connecting'));
    const timer = setTimeout(() => onError(connectTimeoutError(connectMs)), connectMs);
    signal?.addEventListener('abort', onAbort, { once: true });
    session.once('error', onError);
    session.once('connect', () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      session.off('error', onError);
      session.on('error', () => {}); // later errors reach the stream that is open on it
      resolve(session);
    });
  });
}

/**
 * Writes the gRPC frame header and protobuf field header that precede a common.Data payload of `length` bytes into
 * `target` at `offset` (room for MAX_PREFIX_BYTES); returns where the payload goes.
 */
function writeDataMessagePrefix(target: Buffer, offset: number, length: number): number {
  let varintBytes = 1;
  for (let n = length; n >= 0x80; n = Math.floor(n / 128)) varintBytes++;
  target[offset] = 0; // not compressed
  target.writeUInt32BE(1 + varintBytes + length, offset + 1);
  let at = offset + GRPC_HEADER_BYTES;
  target[at++] = 0x12; // common.Data.bytes = 2, length-delimited
  for (let n = length; ; n = Math.floor(n / 128)) {
    if (n < 0x80) {
      target[at++] = n;
      return at;
    }
    target[at++] = (n & 0x7f) | 0x80;
  }
}

/** The upload's file reads (UploadFileSource): 1 MiB each; with Node's default 64 KiB the reads were most of its CPU. */
export const UPLOAD_READ_BYTES = 1024 * 1024;
/** Reads kept ready ahead of the upload, so it rarely waits for the thread pool to bring the next one */
const SOURCE_READ_AHEAD = 2;

/**
 * A file to upload (uploadData), read into the same few buffers in turn instead of a new one per read as
 * fs.createReadStream does. uploadData copies every chunk before it asks for the next, so only the chunks read
 * ahead and the one being copied are in use: an object-mode Readable keeps at most SOURCE_READ_AHEAD chunks and
 * starts a read only while it keeps fewer, one at a time, so SOURCE_READ_AHEAD + 1 buffers are ever in use and one
 * more is kept spare. For uploadData only: a reader that keeps chunks (a pipeline) would see them overwritten. The
 * file is opened at the first read (a source never read holds nothing open) and closed at the end or on destroy.
 */
export class UploadFileSource extends Readable {
  private handle: FileHandle | undefined;
  private readonly buffers: Buffer[] = [];
  private turn = 0;
  private position = 0;

  constructor(
    private readonly path: string,
    private readonly readBytes = UPLOAD_READ_BYTES,
  ) {
    super({ objectMode: true, highWaterMark: SOURCE_READ_AHEAD });
  }

  override _read(): void {
    if (this.buffers.length < SOURCE_READ_AHEAD + 2) this.buffers.push(Buffer.allocUnsafe(this.readBytes));
    const buf = this.buffers[this.turn++ % this.buffers.length] as Buffer;
    const read = async () => {
      if (!this.handle) {
        const handle = await open(this.path, 'r');
        if (this.destroyed) {
          await handle.close();
          return 0;
        }
        this.handle = handle;
      }
      const { bytesRead } = await this.handle.read(buf, 0, buf.length, this.position);
      this.position += bytesRead;
      return bytesRead;
    };
    read().then(
      (bytesRead) => void this.push(bytesRead === 0 ? null : buf.subarray(0, bytesRead)),
      (error: Error) => this.destroy(error),
    );
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const handle = this.handle;
    this.handle = undefined;
    if (!handle) return callback(error);
    handle.close().then(
      () => callback(error),
      (closeError: Error) => callback(error ?? closeError),
    );
  }
}

/** Raised when reading the local source fails: not the node's fault, said differently to the user. */
export class SourceError extends Error {}

/**
 * A client-streaming upload of common.Data messages (EtcdRecover) over an open session, written with HTTP/2 flow
 * control as backpressure ('drain'), so a large file never sits in memory. Resolves with the node's answer;
 * rejects with an RpcFailure (the node's status, a cut connection, a cancel) or a SourceError.
 */
export async function uploadData(
  session: http2.ClientHttp2Session,
  req: UploadRequest,
  source: AsyncIterable<Buffer | Uint8Array>,
): Promise<UploadAnswer> {
  const stream = session.request(grpcRequestHeaders(req));
  const response = collectResponse(stream);
  const onAbort = () => abortUpload(stream);
  req.signal?.addEventListener('abort', onAbort, { once: true });
  let timer: NodeJS.Timeout | undefined;
  try {
    const sent = await writeMessages(stream, req, source, response.settled);
    if (!stream.closed && !stream.writableEnded) stream.end();
    const answerMs = req.answerMs ?? answerDeadlineMs(sent);
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            rpcFailure(Code.deadlineExceeded, `no answer came in ${seconds(answerMs)} after the upload's last byte`),
          ),
        answerMs,
      );
    });
    return await Promise.race([response.answer, late]);
  } finally {
    clearTimeout(timer);
    req.signal?.removeEventListener('abort', onAbort);
    if (!stream.closed) abortUpload(stream);
  }
}

/**
 * Ends an unfinished upload with RST_STREAM and nothing else. `stream.close(code)` would first end() the writable
 * side, and the buffered DATA plus END_STREAM could then reach the node before the reset: the node would take a
 * truncated upload for a complete one. Destroying drops what is buffered and never sends END_STREAM.
 */
function abortUpload(stream: http2.ClientHttp2Stream): void {
  if (!stream.destroyed) stream.destroy(new Error('upload cancelled by the client'));
}

async function writeMessages(
  stream: http2.ClientHttp2Stream,
  req: UploadRequest,
  source: AsyncIterable<Buffer | Uint8Array>,
  settled: Promise<void>,
): Promise<number> {
  const iterator = source[Symbol.asyncIterator]();
  let read = false;
  const writer = new MessageWriter(stream, req, settled);
  try {
    read = await writeAll(writer, req.chunkSize, iterator, stream);
    return writer.bytesSent;
  } finally {
    // stopped early (the node answered, a failure): the source is let go, and a file it reads is closed
    if (!read) iterator.return?.()?.catch(() => {});
  }
}

/** Cuts the source into messages of `size` for the writer; true once the source is read to its end. */
async function writeAll(
  writer: MessageWriter,
  size: number,
  iterator: AsyncIterator<Buffer | Uint8Array>,
  stream: http2.ClientHttp2Stream,
): Promise<boolean> {
  /** a message begun at the end of one source chunk and finished by the next: copied, the source may reuse its buffer */
  let carry: Buffer | null = null;
  let carried = 0;
  for (;;) {
    let next: IteratorResult<Buffer | Uint8Array>;
    try {
      next = await iterator.next();
    } catch (error) {
      abortUpload(stream);
      throw new SourceError((error as Error).message);
    }
    if (next.done) break;
    const chunk = Buffer.isBuffer(next.value) ? next.value : Buffer.from(next.value);
    let at = 0;
    if (carried > 0) {
      at = Math.min(size - carried, chunk.length);
      carried += chunk.copy(carry as Buffer, carried, 0, at);
      if (carried === size) {
        if (!(await writer.message(carry as Buffer, 0, size))) return false;
        carried = 0;
      }
    }
    // Whole messages straight from the chunk: copied into the writer's buffer without an await while they fit.
    for (; chunk.length - at >= size; at += size) {
      if (writer.fits(size)) writer.put(chunk, at, at + size);
      else if (!(await writer.message(chunk, at, at + size))) return false;
    }
    if (at < chunk.length) {
      carry ??= Buffer.allocUnsafe(size);
      carried += chunk.copy(carry, carried, at);
    }
  }
  if (carried > 0 && !(await writer.message(carry as Buffer, 0, carried))) return true;
  await writer.flush();
  return true;
}

/**
 * Writes common.Data messages to an upload stream as one byte stream: each message's prefix and payload are copied
 * into the writer's own buffers of OUT_BYTES (a message may span two), and each full buffer is one HTTP/2 write.
 * Copying every message, large ones too, means the upload never holds a buffer of the source once it asks for the
 * next one: a source may read into the same few buffers over and over. Reading the file into a new 1 MiB buffer per
 * read, which HTTP/2 kept until sent, left 10-32 MB of dead buffers waiting for a collection (bench/RESULTS.md,
 * transfer). Small messages (talosctl's 4 KiB) go out many to a write, each a copy and no await. At most
 * OUT_BUFFERS buffers are written and not yet sent: then the writer waits for HTTP/2 to send one (flow control is
 * the backpressure), so a large file never sits in memory.
 */
class MessageWriter {
  /** the buffer being filled, and how much of it is */
  private out: Buffer | null = null;
  private used = 0;
  /** buffers HTTP/2 is done with (their write completed), and how many were ever made */
  private readonly spare: Buffer[] = [];
  private made = 0;
  private wakeWriter: (() => void) | undefined;
  /** payload bytes in `out`, and in every write so far */
  private payload = 0;
  private sent = 0;
  /** the rate floor's window: when it began and how much had been sent then */
  private windowStart = Date.now();
  private windowSent = 0;

  constructor(
    private readonly stream: http2.ClientHttp2Stream,
    private readonly req: UploadRequest,
    private readonly settled: Promise<void>,
  ) {}

  /** The node may answer (refuse) before the upload is complete: then writing stops and its answer is read. */
  private get stopped(): boolean {
    return this.stream.closed || this.stream.destroyed || this.stream.writableEnded;
  }

  /** payload bytes written so far */
  get bytesSent(): number {
    return this.sent;
  }

  /** Whether a message of `length` payload bytes fits whole in the buffer being filled (then put() takes it). */
  fits(length: number): boolean {
    return this.out !== null && this.used + MAX_PREFIX_BYTES + length <= this.out.length;
  }

  /** Copies one message of buf[start, end) into the buffer being filled; only after fits() said it fits. */
  put(buf: Buffer, start: number, end: number): void {
    const out = this.out as Buffer;
    this.used = writeDataMessagePrefix(out, this.used, end - start);
    this.used += buf.copy(out, this.used, start, end);
    this.payload += end - start;
  }

  /** One message of buf[start, end), written as buffers fill; false once the stream no longer takes writes. */
  async message(buf: Buffer, start: number, end: number): Promise<boolean> {
    if (!(await this.room())) return false;
    if (this.fits(end - start)) {
      this.put(buf, start, end);
      return true;
    }
    if ((this.out as Buffer).length - this.used < MAX_PREFIX_BYTES && !((await this.flush()) && (await this.room())))
      return false;
    let out = this.out as Buffer;
    this.used = writeDataMessagePrefix(out, this.used, end - start);
    while (start < end) {
      const copied = buf.copy(out, this.used, start, end);
      this.used += copied;
      this.payload += copied;
      start += copied;
      if (this.used === out.length && !((await this.flush()) && (await this.room()))) return false;
      out = this.out as Buffer;
    }
    return true;
  }

  /** Makes sure there is a buffer to fill: a spare one, a new one, or the next one HTTP/2 is done with. */
  private async room(): Promise<boolean> {
    while (!this.out) {
      if (this.stopped) return false;
      const spare = this.spare.pop();
      if (spare) this.out = spare;
      else if (this.made < OUT_BUFFERS) {
        this.made++;
        this.out = Buffer.allocUnsafe(OUT_BYTES);
      } else if (!(await this.sendWait())) return false;
    }
    return true;
  }

  /** Writes the buffer being filled, if anything is in it; false once the stream no longer takes writes. */
  async flush(): Promise<boolean> {
    if (this.stopped) return false;
    const out = this.out;
    if (!out || this.used === 0) return true;
    // HTTP/2 keeps this buffer until its bytes are on the socket; the write's callback gives it back.
    this.stream.write(out.subarray(0, this.used), () => {
      this.spare.push(out);
      const wake = this.wakeWriter;
      this.wakeWriter = undefined;
      wake?.();
    });
    this.sent += this.payload;
    this.req.onSent(this.sent);
    this.out = null;
    this.used = 0;
    this.payload = 0;
    return this.checkRate() && !this.stream.closed;
  }

  /**
   * Waits for HTTP/2 to be done with one of the buffers written: false when the stream ends first (the node
   * answered or the connection was cut); fails the upload when the node takes nothing for the idle limit.
   */
  private async sendWait(): Promise<boolean> {
    const returned = new Promise<'sent'>((resolve) => (this.wakeWriter = () => resolve('sent')));
    const idleMs = this.req.idleMs ?? DEFAULT_UPLOAD_IDLE_MS;
    let timer: NodeJS.Timeout | undefined;
    const stalled = new Promise<'stalled'>((resolve) => (timer = setTimeout(() => resolve('stalled'), idleMs)));
    const outcome = await Promise.race([returned, stalled, this.settled.then(() => 'done' as const)]);
    clearTimeout(timer);
    this.wakeWriter = undefined;
    if (outcome === 'stalled') {
      abortUpload(this.stream);
      throw rpcFailure(Code.deadlineExceeded, `the node took no data for ${Math.round(idleMs / 100) / 10} s`);
    }
    return outcome === 'sent' && this.checkRate() && !this.stream.closed;
  }

  /** Fails the upload when the node took less than the rate floor over a whole idle window. */
  private checkRate(): boolean {
    const now = Date.now();
    const elapsed = now - this.windowStart;
    if (elapsed < (this.req.idleMs ?? DEFAULT_UPLOAD_IDLE_MS)) return true;
    const floor = this.req.minBytesPerSecond ?? DEFAULT_MIN_BYTES_PER_SECOND;
    const taken = this.sent - this.windowSent;
    if (taken < (floor * elapsed) / 1000) {
      abortUpload(this.stream);
      throw rpcFailure(
        Code.deadlineExceeded,
        `the node took only ${taken} bytes in ${Math.round(elapsed / 100) / 10} s, less than ${floor} bytes a second`,
      );
    }
    this.windowStart = now;
    this.windowSent = this.sent;
    return true;
  }
}

/** Gathers the unary answer of a client stream: headers, DATA, trailers; settles when the stream closes. */
function collectResponse(stream: http2.ClientHttp2Stream): { answer: Promise<UploadAnswer>; settled: Promise<void> } {
  const chunks: Buffer[] = [];
  let status: RpcFailure | 'ok' | null = null;
  let streamError: Error | null = null;
  stream.on('response', (headers) => {
    const failure = statusFailure(headers);
    if (failure) status = failure;
    else if (headers['grpc-status'] === '0') status = 'ok';
  });
  stream.on('data', (chunk: Buffer) => chunks.push(chunk));
  stream.on('trailers', (trailers) => {
    status = statusFailure(trailers) ?? (trailers['grpc-status'] === '0' ? 'ok' : status);
  });
  stream.on('error', (error) => (streamError = error));
  const settled = once(stream, 'close').then(() => undefined);
  const answer = settled.then(() => {
    if (status && status !== 'ok') throw status;
    if (status !== 'ok') {
      const cause = streamError ? streamError.message : 'the stream ended without a status';
      throw rpcFailure(Code.unavailable, `the upload was cut (${cause})`);
    }
    return parseUploadAnswer(Buffer.concat(chunks));
  });
  answer.catch(() => {});
  return { answer, settled };
}

function parseUploadAnswer(body: Buffer): UploadAnswer {
  const messages: UploadAnswer['messages'] = [];
  let offset = 0;
  while (body.length - offset >= GRPC_HEADER_BYTES) {
    const length = body.readUInt32BE(offset + 1);
    const start = offset + GRPC_HEADER_BYTES;
    // EtcdRecoverResponse { repeated EtcdRecover messages = 1 }; EtcdRecover { metadata = 1 } reads like common.Data
    for (const entry of lengthDelimitedFields(body.subarray(start, start + length), 1)) {
      const data = decodeData(entry);
      // the node's own words: made safe before anyone shows or journals them
      const status = data.status ? { code: data.status.code, message: nodeText(data.status.message) } : null;
      messages.push({ metadata: { hostname: nodeText(data.hostname, 253), error: nodeText(data.error), status } });
    }
    offset = start + length;
  }
  return { messages };
}

function lengthDelimitedFields(buf: Buffer, field: number): Buffer[] {
  const found: Buffer[] = [];
  let offset = 0;
  const varint = (): number => {
    let result = 0;
    let multiplier = 1;
    for (;;) {
      const byte = buf[offset++];
      if (byte === undefined) throw new RangeError('truncated answer');
      result += (byte & 0x7f) * multiplier;
      if ((byte & 0x80) === 0) return result;
      multiplier *= 128;
    }
  };
  while (offset < buf.length) {
    const key = varint();
    const wireType = key & 7;
    if (wireType === 0) varint();
    else if (wireType === 2) {
      const length = varint();
      if (key >>> 3 === field) found.push(buf.subarray(offset, offset + length));
      offset += length;
    } else if (wireType === 1) offset += 8;
    else if (wireType === 5) offset += 4;
    else throw new RangeError('unsupported wire type');
  }
  return found;
}
