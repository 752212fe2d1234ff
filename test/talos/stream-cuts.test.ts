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

type Ending = 'ok' | 'reset' | 'no-status' | 'mid-message' | 'large';

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
let pki: TestPki;
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
  server.on('stream', (stream, headers) => {
    const ending = String(headers.nodes) as Ending;
    stream.on('error', () => {}); // the reset we send ourselves
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
