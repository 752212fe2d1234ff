/**
 * A connect whose TLS handshake never completes (an endpoint that accepts TCP and sends nothing) says so, even when
 * our client certificate has expired: a silent handshake is no sign that the node refused the certificate, so the
 * failure must not be rewritten as "the client certificate expired on …" (client-calls.ts callFailure).
 */
import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTalosClient, type GrpcTalosClient } from '../../src/talos/client.js';
import { loadTalosconfig } from '../../src/talos/talosconfig.js';
import { makePki, writeTalosconfig, type TestPki } from './fake-talos.js';

let pki: TestPki;
/** accepts TCP connections and never sends a byte (no TLS ServerHello) */
let silent: net.Server;
const sockets: net.Socket[] = [];
let client: GrpcTalosClient;

beforeAll(async () => {
  pki = await makePki();
  silent = net.createServer((socket) => {
    sockets.push(socket);
    socket.on('error', () => {});
  });
  silent.listen(0, '127.0.0.1');
  await once(silent, 'listening');
  const address = `127.0.0.1:${(silent.address() as AddressInfo).port}`;
  const config = loadTalosconfig({ talosconfig: writeTalosconfig(pki, [address]) }, {});
  // the certificate as if it had expired: only the client's own view of it (the silent endpoint never sees it)
  client = createTalosClient(
    { ...config, clientCertNotAfter: new Date('2020-01-01T00:00:00Z') },
    { connectTimeoutMs: 300 },
  );
});

afterAll(() => {
  client?.close();
  for (const socket of sockets) socket.destroy();
  silent?.close();
});

describe('a handshake that never completes, with an expired client certificate', () => {
  it('the upload fails naming the silent handshake, not the certificate', async () => {
    const result = await client.etcdRecover('10.5.0.2', Readable.from([Buffer.alloc(1024)]));
    expect(result.ok).toBe(false);
    const { message } = (result as { ok: false; error: { message: string } }).error;
    expect(message).toMatch(/did not complete the TLS handshake/);
    expect(message).not.toMatch(/client certificate expired/);
  });
});
