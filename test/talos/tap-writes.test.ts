/**
 * The tap's own frames (WINDOW_UPDATE) and node:http2's output share one TLS socket. The session's output arrives as
 * batches of whole frames, a DATA frame's header and payload as separate chunks (node's JSStreamSocket writes a batch
 * chunk by chunk under cork()), and a frame of ours written between two chunks of a batch would cut a frame in two:
 * the node would read garbage and drop the connection. Here the socket completes its writes late, as a busy TLS
 * socket does, and the window update must land after the whole batch, never inside it.
 */
import { EventEmitter } from 'node:events';
import type tls from 'node:tls';
import { expect, it } from 'vitest';
import { DataFrameTap, type TapSink } from '../../src/talos/h2stream.js';

/** A socket that records what is written and completes each write only when told to. */
class SlowSocket extends EventEmitter {
  readonly written: Buffer[] = [];
  private readonly callbacks: ((error?: Error | null) => void)[] = [];
  destroyed = false;
  write(chunk: Buffer, callback?: (error?: Error | null) => void): boolean {
    this.written.push(Buffer.from(chunk));
    if (callback) this.callbacks.push(callback);
    return true;
  }
  cork(): void {}
  uncork(): void {}
  end(callback?: () => void): void {
    callback?.();
  }
  destroy(): void {
    this.destroyed = true;
  }
  /** completes every write made so far */
  complete(): void {
    for (const callback of this.callbacks.splice(0)) callback();
  }
}

const sink: TapSink = { onArrival() {}, onDataFrame() {}, onPayload() {}, onProtocolError() {} };

it('a window update written while the session writes a batch lands after the batch, not inside a frame', async () => {
  const socket = new SlowSocket();
  const tap = new DataFrameTap(socket as unknown as tls.TLSSocket, sink);
  // a DATA frame as node_http2.cc hands it over: its 9-byte header and its payload as two chunks of one batch
  const header = Buffer.from([0, 0, 4, 0, 1, 0, 0, 0, 1]);
  const payload = Buffer.from('abcd');
  tap.cork();
  tap.write(header);
  tap.write(payload);
  tap.uncork();
  tap.windowUpdate(65536);
  for (let i = 0; i < 5; i++) {
    socket.complete();
    await new Promise((resolve) => setImmediate(resolve));
  }
  const bytes = Buffer.concat(socket.written);
  expect(bytes.subarray(0, 13).equals(Buffer.concat([header, payload]))).toBe(true);
  // then the two WINDOW_UPDATE frames (stream 1 and the connection), whole
  expect(bytes.length).toBe(13 + 26);
  expect([bytes[13 + 3], bytes[13 + 13 + 3]]).toEqual([0x8, 0x8]);
});
