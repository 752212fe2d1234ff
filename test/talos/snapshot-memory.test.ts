/**
 * The snapshot download's memory (issue 16: peak ≤ 100 MB): a long EtcdSnapshot stream in 1 KiB messages, as a Talos
 * node sends it, must not make V8's young generation grow. Each HTTP/2 DATA frame arrives as a Buffer of its own;
 * with the new space doubling as scavenges go by, a 256 MiB download ended 12-15 MB larger than it needs, and the
 * verification after it stacked on that (bench/RESULTS.md, transfer).
 */
import { once } from 'node:events';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import v8 from 'node:v8';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createTalosClient, type GrpcTalosClient } from '../../src/talos/client.js';
import { issueServerCert } from '../../src/talos/pki.js';
import { loadTalosconfig } from '../../src/talos/talosconfig.js';
import { makePki, writeTalosconfig } from './fake-talos.js';

const MESSAGE_BYTES = 1024;
const TOTAL_BYTES = 96 * 1024 * 1024;
/** 256 KiB of common.Data { bytes } messages of 1 KiB each, length-prefixed, sent over and over */
const block = (() => {
  const message = Buffer.alloc(5 + 3 + MESSAGE_BYTES, 0x61);
  message[0] = 0;
  message.writeUInt32BE(3 + MESSAGE_BYTES, 1);
  message[5] = 0x12; // common.Data.bytes = 2, length-delimited
  message[6] = (MESSAGE_BYTES & 0x7f) | 0x80;
  message[7] = MESSAGE_BYTES >>> 7;
  return Buffer.concat(Array.from({ length: 256 }, () => message));
})();

let server: http2.Http2SecureServer;
let client: GrpcTalosClient;

beforeAll(async () => {
  const pki = await makePki();
  const cert = await issueServerCert(pki.ca, { ips: ['127.0.0.1'] });
  server = http2.createSecureServer({
    ca: pki.ca.certPem,
    cert: cert.certPem,
    key: cert.keyPem,
    requestCert: true,
    rejectUnauthorized: true,
  });
  server.on('stream', (stream) => {
    stream.on('error', () => {});
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    let sent = 0;
    const pump = () => {
      while (sent < TOTAL_BYTES && !stream.closed) {
        sent += MESSAGE_BYTES * 256;
        if (sent >= TOTAL_BYTES) return void stream.end(block);
        if (!stream.write(block)) return void stream.once('drain', pump);
      }
    };
    pump();
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

const newSpaceBytes = () => v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0;

it('a 96 MiB snapshot arrives whole without the young generation growing', async () => {
  const before = newSpaceBytes();
  let bytes = 0;
  for await (const chunk of client.etcdSnapshot('n', { reuseBuffers: true })) bytes += chunk.length;
  expect(bytes).toBe(TOTAL_BYTES);
  expect(newSpaceBytes()).toBeLessThanOrEqual(before);
}, 60_000);
