/**
 * Snapshot streams that end badly, served by a bare HTTP/2 server (not grpc-js) so the test controls every frame:
 * a stream reset mid-transfer, a stream that ends without a gRPC status, one that ends inside a message, and a
 * message split across writes at awkward places. Every bad end must be an error, never a short "success".
 */
import { once } from 'node:events';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTalosClient, type GrpcTalosClient } from '../../src/talos/client.js';
import { issueServerCert } from '../../src/talos/pki.js';
import { loadTalosconfig } from '../../src/talos/talosconfig.js';
import { makePki, writeTalosconfig, type TestPki } from './fake-talos.js';
import { connectSession, uploadData } from '../../src/talos/h2stream.js';

type Ending =
  'ok' | 'reset' | 'no-status' | 'mid-message' | 'large' | 'limit' | 'trickle' | 'stall' | 'hostile' | 'no-read';

/** What a hostile node answers: escapes that clear the screen and fake an all-clear, a bidi flip, and a flood. */
const HOSTILE = `\u001b[2J\u001b[Hetcd restored\r\n\u001b]0;owned\u0007\u202eWARNING hidden\u009b31m${'A'.repeat(5000)}`;

/** common.Data { metadata { hostname }, bytes } as a length-prefixed gRPC frame */
function frame(payload: Buffer, hostname = 'n'): Buffer {
  const host = Buffer.from(hostname);
  const metadata = Buffer.concat([Buffer.from([0x0a, host.length]), host]);
  const lengthBytes: number[] = [];
  for (let n = payload.length; ; n >>>= 7) {
    if (n < 0x80) {
      lengthBytes.push(n);
      break;
    }
    lengthBytes.push((n & 0x7f) | 0x80);
  }
  const message = Buffer.concat([
    Buffer.from([0x0a, metadata.length]),
    metadata,
    Buffer.from([0x12, ...lengthBytes]),
    payload,
  ]);
  const header = Buffer.alloc(5);
  header.writeUInt32BE(message.length, 1);
  return Buffer.concat([header, message]);
}

const payload = Buffer.from(Array.from({ length: 50_000 }, (_, i) => i % 251));
/** Many batch buffers' worth (12 MiB), in 1 KiB messages as a Talos node sends them. */
const large = Buffer.from(Array.from({ length: 12 * 1024 * 1024 + 777 }, (_, i) => (i * 7) % 253));
/** Messages at the 32 MiB limit (frame(): 10 bytes of common.Data around the payload), four of them. */
const LIMIT_PAYLOAD = 32 * 1024 * 1024 - 10;
const LIMIT_MESSAGES = 4;
let pki: TestPki;
let limitFrame: Buffer;
let server: http2.Http2SecureServer;
let client: GrpcTalosClient;

beforeAll(async () => {
  pki = await makePki();
  const cert = await issueServerCert(pki.ca, { ips: ['127.0.0.1'] });
  server = http2.createSecureServer({
    ca: pki.ca.certPem,
    cert: cert.certPem,
    key: cert.keyPem,
    requestCert: true,
    rejectUnauthorized: true,
  });
  limitFrame = frame(Buffer.alloc(LIMIT_PAYLOAD, 0x5a));
  server.on('stream', (stream, headers) => {
    const ending = String(headers.nodes) as Ending;
    stream.on('error', () => {}); // the reset we send ourselves
    if (ending === 'limit') {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      for (let i = 0; i < LIMIT_MESSAGES - 1; i++) stream.write(limitFrame);
      return void stream.end(limitFrame);
    }
    if (ending === 'no-read') {
      // a node that stops taking an upload: it never reads, so HTTP/2 flow control holds every write
      stream.pause();
      return;
    }
    if (ending === 'hostile') {
      // a trailers-only refusal whose grpc-message is the node's to choose
      stream.respond(
        {
          ':status': 200,
          'content-type': 'application/grpc',
          'grpc-status': '13',
          'grpc-message': encodeURIComponent(HOSTILE),
        },
        { endStream: true },
      );
      return;
    }
    if (ending === 'trickle' || ending === 'stall') {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' });
      stream.write(frame(Buffer.from('first bytes')));
      // trickle: a one-byte message every 50 ms for as long as the client listens; stall: nothing more at all
      if (ending === 'trickle') {
        const timer = setInterval(() => !stream.closed && stream.write(frame(Buffer.from('x'))), 50);
        stream.on('close', () => clearInterval(timer));
      }
      return;
    }
    stream.respond(
      { ':status': 200, 'content-type': 'application/grpc' },
      { waitForTrailers: ending === 'ok' || ending === 'large' },
    );
    if (ending === 'large') {
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      const messages = [];
      for (let offset = 0; offset < large.length; offset += 1024)
        messages.push(frame(large.subarray(offset, offset + 1024)));
      return void stream.end(Buffer.concat(messages));
    }
    const frames = [];
    for (let offset = 0; offset < payload.length; offset += 1000)
      frames.push(frame(payload.subarray(offset, offset + 1000)));
    const all = Buffer.concat(frames);
    // awkward splits: inside a frame header, inside a varint, inside the payload
    for (const [a, b] of [
      [0, 3],
      [3, 13],
      [13, 2000],
      [2000, all.length - 500],
    ] as const) {
      stream.write(all.subarray(a, b));
    }
    if (ending === 'reset') return void stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
    if (ending === 'mid-message') return void stream.end(all.subarray(all.length - 500, all.length - 10));
    if (ending === 'no-status') return void stream.end(all.subarray(all.length - 500));
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    stream.end(all.subarray(all.length - 500));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  client = createTalosClient(loadTalosconfig({ talosconfig: writeTalosconfig(pki, [`127.0.0.1:${port}`]) }, {}));
});

afterAll(() => {
  client?.close();
  server?.close();
});

async function collect(node: Ending): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of client.etcdSnapshot(node)) chunks.push(chunk);
  return Buffer.concat(chunks);
}

describe('snapshot stream endings', () => {
  it('with reuseBuffers, hands out views of a few recycled buffers that carry every byte in order', async () => {
    const copies: Buffer[] = [];
    const seen = new Set<ArrayBufferLike>();
    for await (const chunk of client.etcdSnapshot('large', { reuseBuffers: true })) {
      seen.add(chunk.buffer);
      // the reader's side of the contract: done with each chunk before asking for the next
      copies.push(Buffer.from(chunk));
    }
    expect(Buffer.concat(copies).equals(large)).toBe(true);
    // 12 MiB through 1 MiB batch buffers: without recycling that would be 13 buffers; the stream pauses at 4 MiB
    // queued, so at most about seven are ever alive at once
    expect(seen.size).toBeLessThanOrEqual(7);
  });

  it('without reuseBuffers, chunks kept by the reader stay intact', async () => {
    const kept: Buffer[] = [];
    for await (const chunk of client.etcdSnapshot('large')) kept.push(chunk);
    expect(Buffer.concat(kept).equals(large)).toBe(true);
  });

  it('reassembles messages split at any byte and ends cleanly on grpc-status 0', async () => {
    expect((await collect('ok')).equals(payload)).toBe(true);
  });

  it.each([
    ['reset', /Unavailable|Internal|cut/i],
    ['no-status', /without a status/],
    ['mid-message', /middle of a message/],
  ] as const)('fails a stream that ends with %s instead of returning short data', async (ending, text) => {
    const failure = await collect(ending).then(
      () => null,
      (error: { failure: { message: string; codeName: string } }) => error.failure,
    );
    expect(failure).not.toBeNull();
    expect(`${failure?.codeName} ${failure?.message}`).toMatch(text);
  });
});

describe('large messages and slow nodes', () => {
  it('reassembles four messages at the 32 MiB limit, split by HTTP/2 into 16 KiB frames, in linear time', async () => {
    // Each message arrives in some 2,000 HTTP/2 frames; joining the head with every frame was quadratic (one 16 MiB
    // message took 68 s, four 31 MiB ones over 300 s at full CPU). Copied in place, this is a second or two.
    let bytes = 0;
    let wrong = 0;
    for await (const chunk of client.etcdSnapshot('limit', { reuseBuffers: true })) {
      bytes += chunk.length;
      for (let i = 0; i < chunk.length; i += 4096) if (chunk[i] !== 0x5a) wrong++;
    }
    expect(bytes).toBe(LIMIT_PAYLOAD * LIMIT_MESSAGES);
    expect(wrong).toBe(0);
  }, 120_000);

  function slowClient(idleMs: number): GrpcTalosClient {
    const { port } = server.address() as AddressInfo;
    return createTalosClient(loadTalosconfig({ talosconfig: writeTalosconfig(pki, [`127.0.0.1:${port}`]) }, {}), {
      streamIdleTimeoutMs: idleMs,
    });
  }

  async function failureOf(c: GrpcTalosClient, node: Ending): Promise<{ message: string; codeName: string }> {
    try {
      for await (const chunk of c.etcdSnapshot(node)) void chunk;
    } catch (error) {
      return (error as { failure: { message: string; codeName: string } }).failure;
    } finally {
      c.close();
    }
    throw new Error('the stream ended without a failure');
  }

  it('a node that trickles a byte now and then is cut by the rate floor, not kept alive by the idle timer', async () => {
    // every 50 ms a message arrives, so the stream is never idle for the 400 ms limit; it is far below 1 KiB/s
    const failure = await failureOf(slowClient(400), 'trickle');
    expect(failure.codeName).toMatch(/DeadlineExceeded/);
    expect(failure.message).toMatch(/^only \d+ bytes arrived in 0\.\d s, less than 1024 bytes a second$/);
  }, 30_000);

  it('a stream that stalls completely is cut once the idle limit has passed, and says how long it was silent', async () => {
    const started = Date.now();
    const failure = await failureOf(slowClient(400), 'stall');
    expect(failure.codeName).toMatch(/DeadlineExceeded/);
    const silent = Number(/^no data for (\d+(?:\.\d)?) s$/.exec(failure.message)?.[1]);
    expect(silent).toBeGreaterThanOrEqual(0.4);
    expect(Date.now() - started).toBeGreaterThanOrEqual(400);
  }, 30_000);
});

describe('text a node controls', () => {
  it('an error message with terminal escapes, controls and a flood reaches us as one bounded, clean line', async () => {
    const failure = await collect('hostile').then(
      () => null,
      (error: { failure: { message: string } }) => error.failure,
    );
    const message = failure?.message ?? '';
    expect(message.slice(0, 40)).toBe('etcd restored WARNING hiddenAAAAAAAAAAAA');
    // eslint-disable-next-line no-control-regex
    expect(message).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/);
    expect(message.length).toBeLessThanOrEqual(500);
    expect(message.endsWith('…')).toBe(true);
  });
});

describe('an upload the node stops taking', () => {
  it('fails as DeadlineExceeded once the node took nothing for the idle limit, instead of waiting forever', async () => {
    const { port } = server.address() as AddressInfo;
    const endpoint = { host: '127.0.0.1', port, address: `127.0.0.1:${port}` };
    const session = await connectSession(endpoint, {
      ca: pki.ca.certPem,
      cert: pki.client.certPem,
      key: pki.client.keyPem,
      ALPNProtocols: ['h2'],
    });
    let sent = 0;
    async function* snapshot() {
      for (let i = 0; i < 256; i++) yield Buffer.alloc(64 * 1024, i);
    }
    try {
      const failure = await uploadData(
        session,
        {
          authority: endpoint.address,
          path: '/machine.MachineService/EtcdRecover',
          metadata: { nodes: ['no-read'] },
          chunkSize: 64 * 1024,
          onSent: (bytes) => (sent = bytes),
          idleMs: 400,
        },
        snapshot(),
      ).then(
        () => null,
        (error: { codeName: string; message: string }) => error,
      );
      expect(failure?.codeName).toBe('DeadlineExceeded');
      expect(failure?.message).toBe('the node took no data for 0.4 s');
      expect(sent).toBeLessThan(16 * 1024 * 1024);
    } finally {
      session.close();
    }
  }, 30_000);
});
