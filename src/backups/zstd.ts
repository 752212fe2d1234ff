/** zstd decoding as a stream, in this process: Node's own decoder, the zstd program's output, or fzstd (on a thread). */
import { availableParallelism, loadavg } from 'node:os';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { Readable, pipeline as pipelineCallback } from 'node:stream';
import type { Transform } from 'node:stream';
import * as zlib from 'node:zlib';
import { Decompress } from 'fzstd';
import { UserError } from '../errors.js';
import { zstdProgram } from './programs.js';

/** Which decoder (see ImportOptions in decode.ts). */
export interface ZstdChoice {
  zstdInWorker?: boolean | undefined;
  zstdDecoder?: 'system' | 'fzstd' | undefined;
}

/**
 * The zstd program on PATH (facebook/zstd, the decoder talos-backup's files are checked with) unless the choice says
 * fzstd or a thread: it decodes in a process of its own, on the other core, and writes the plain file itself
 * (programs.ts, zstdIntoFile), so the decoded bytes never pass through this process. Null: decode here (decompress).
 * Measured on the 2-core machine, 128 MiB of a talos-backup .zst: fzstd decodes 92 MB per CPU second, the zstd
 * program 1250 MB (bench/import.mjs, BENCH_IMPORT_STAGES=1, has the whole-import figures).
 */
export function zstdProgramFor(opts: ZstdChoice): string | null {
  return opts.zstdDecoder === 'fzstd' || opts.zstdInWorker !== undefined ? null : zstdProgram();
}

/**
 * zstd decoding as a stream in this process, when zstdProgramFor gave no program: Node's own decoder where it has one
 * (zlib.createZstdDecompress, Node 22.15+), else fzstd (pure JavaScript; Node 20's zlib has no zstd), on a thread of
 * its own when a core is idle.
 */
export function decompress(stream: AsyncIterable<Uint8Array>, opts: ZstdChoice): AsyncIterable<Uint8Array> {
  const native = (zlib as unknown as { createZstdDecompress?: () => Transform }).createZstdDecompress;
  if (typeof native === 'function' && opts.zstdDecoder === undefined) {
    // pipeline, not pipe: a failure upstream (a damaged age stream) must end the decoder's output with that error.
    const decoder = native();
    pipelineCallback(Readable.from(stream, { objectMode: false }), decoder, () => undefined);
    return zstdErrors(decoder);
  }
  const threaded = (opts.zstdInWorker ?? idleCore()) && zstdWorkerAvailable();
  return zstdErrors(threaded ? zstdInWorker(stream) : fzstdDecode(stream));
}

/**
 * The thread only pays when a core is free for it. Measured on the shared 2-core machine at a load of 11-15 (256 MiB
 * snapshot, .zst.age): 18.4-19.4 s and 150 MB peak in one thread against 21.5-23.9 s and 189 MB with the thread, so
 * it is used unless every core is already taken (the same rule as inspect's split walk, src/etcd/inspect.ts).
 */
function idleCore(): boolean {
  return (loadavg()[0] ?? 0) < availableParallelism();
}

const ZSTD_WORKER_URL = new URL('./zstd-worker.js', import.meta.url);

/** The worker exists only as compiled JavaScript (dist/); the test runner, on the sources, decodes in this thread. */
function zstdWorkerAvailable(): boolean {
  return ZSTD_WORKER_URL.protocol === 'file:' && existsSync(fileURLToPath(ZSTD_WORKER_URL));
}

/** Input is sent in pieces of about this size (fewer messages); at most IN_FLIGHT of them wait to be decoded. */
const TO_WORKER_BYTES = 1024 * 1024;
const IN_FLIGHT = 3;
/** decoded bytes waiting to be written before more input is sent */
const MAX_QUEUED_BYTES = 8 * 1024 * 1024;

/**
 * zstd decoding on zstd-worker.ts's thread: the input is pumped to it while its output is yielded, with both sides
 * bounded (IN_FLIGHT pieces in, MAX_QUEUED_BYTES out), so memory stays flat whatever the size.
 */
async function* zstdInWorker(input: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
  const execArgv = process.execArgv.filter((arg) => !arg.startsWith('--input-type'));
  const worker = new Worker(ZSTD_WORKER_URL, { execArgv });
  const queue: Uint8Array[] = [];
  let queuedBytes = 0;
  let inFlight = 0;
  let finished = false;
  let failure: Error | null = null;
  let waiters: Array<() => void> = [];
  const notify = (): void => {
    const woken = waiters;
    waiters = [];
    for (const wake of woken) wake();
  };
  const changed = (): Promise<void> => new Promise((resolve) => waiters.push(resolve));
  type FromWorker =
    { type: 'out'; bytes: Uint8Array } | { type: 'ack' } | { type: 'done' } | { type: 'error'; message: string };
  worker.on('message', (message: FromWorker) => {
    switch (message.type) {
      case 'out':
        queue.push(message.bytes);
        queuedBytes += message.bytes.length;
        break;
      case 'ack':
        inFlight--;
        break;
      case 'done':
        finished = true;
        break;
      case 'error':
        failure ??= new Error(message.message);
        break;
    }
    notify();
  });
  worker.on('error', (error) => {
    failure ??= error;
    notify();
  });
  worker.on('exit', () => {
    if (!finished) failure ??= new Error('the zstd thread stopped unexpectedly');
    notify();
  });
  let pumpFailure: unknown = null;
  const send = (pieces: Uint8Array[], bytes: number): void => {
    const joined = new Uint8Array(bytes);
    let at = 0;
    for (const piece of pieces) {
      joined.set(piece, at);
      at += piece.length;
    }
    inFlight++;
    worker.postMessage({ type: 'data', bytes: joined }, [joined.buffer]);
  };
  const pump = (async () => {
    let pieces: Uint8Array[] = [];
    let bytes = 0;
    for await (const chunk of input) {
      pieces.push(chunk);
      bytes += chunk.length;
      if (bytes < TO_WORKER_BYTES) continue;
      while ((inFlight >= IN_FLIGHT || queuedBytes >= MAX_QUEUED_BYTES) && !failure) await changed();
      if (failure) return;
      send(pieces, bytes);
      pieces = [];
      bytes = 0;
    }
    if (bytes > 0) send(pieces, bytes);
    worker.postMessage({ type: 'end' });
  })().catch((error: unknown) => {
    pumpFailure = error;
    notify();
  });
  try {
    for (;;) {
      const next = queue.shift();
      if (next) {
        queuedBytes -= next.length;
        notify();
        yield next;
        continue;
      }
      // Upstream failures (a damaged age stream) are theirs to tell, before the decoder's.
      if (pumpFailure) throw pumpFailure;
      if (failure) throw failure;
      if (finished) return;
      await changed();
    }
  } finally {
    await worker.terminate();
    await pump;
  }
}

async function* fzstdDecode(stream: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
  let pending: Uint8Array[] = [];
  let ended = false;
  const decoder = new Decompress((chunk, final) => {
    pending.push(chunk);
    if (final) ended = true;
  });
  for await (const chunk of stream) {
    decoder.push(chunk);
    if (pending.length > 0) {
      const ready = pending;
      pending = [];
      yield* ready;
    }
  }
  decoder.push(new Uint8Array(0), true);
  yield* pending;
  if (!ended) throw new Error('unexpected end of zstd data');
}

async function* zstdErrors(stream: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
  try {
    for await (const chunk of stream) yield chunk as Uint8Array;
  } catch (error) {
    if (error instanceof UserError) throw error;
    throw new ZstdError();
  }
}

export class ZstdError extends Error {}
