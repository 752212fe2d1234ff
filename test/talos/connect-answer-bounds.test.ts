/**
 * The data calls over a wire that goes quiet where nothing else bounds it: an endpoint that accepts the TCP
 * connection and never sends a TLS byte, and a node that takes a whole upload and never answers. Both must end,
 * with a failure that says what happened (the first: unreachable, so the next endpoint is tried and the wizard waits
 * for the node; the second: no answer in time, retryable), instead of holding the call at "Uploading … 0%" for ever.
 */
import { once } from 'node:events';
import http2 from 'node:http2';
import net, { type AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTalosClient, type GrpcTalosClient } from '../../src/talos/client.js';
import { classifyFailure, describeFailure, isRetryable, nodeDidNotAnswer } from '../../src/talos/errors.js';
import { answerDeadlineMs } from '../../src/talos/h2stream.js';
import { issueServerCert } from '../../src/talos/pki.js';
import { loadTalosconfig } from '../../src/talos/talosconfig.js';
import type { RpcFailure } from '../../src/talos/types.js';
import { makePki, startFakeTalos, writeTalosconfig, type FakeTalos, type TestPki } from './fake-talos.js';

const SNAPSHOT = Buffer.from(Array.from({ length: 90 * 1024 }, (_, i) => (i * 13) % 251));
/** short limits: the test is about the call ending, not about how long the defaults are */
const CONNECT_MS = 300;
const ANSWER_MS = 300;

let pki: TestPki;
/** accepts TCP connections and never sends a byte (no TLS ServerHello) */
let silent: net.Server;
const silentSockets: net.Socket[] = [];
let silentAddress: string;
/** a TLS + HTTP/2 node that reads every byte of an upload and never answers */
let mute: http2.Http2SecureServer;
let muteAddress: string;
let muteReceived = 0;
let muteEnded = false;
let fake: FakeTalos;
const clients: GrpcTalosClient[] = [];

function clientFor(endpoints: string[]): GrpcTalosClient {
  const client = createTalosClient(loadTalosconfig({ talosconfig: writeTalosconfig(pki, endpoints) }, {}), {
    connectTimeoutMs: CONNECT_MS,
  });
  clients.push(client);
  return client;
}

beforeAll(async () => {
  pki = await makePki();
  silent = net.createServer((socket) => {
    silentSockets.push(socket);
    socket.on('error', () => {});
  });
  silent.listen(0, '127.0.0.1');
  await once(silent, 'listening');
  silentAddress = `127.0.0.1:${(silent.address() as AddressInfo).port}`;

  const cert = await issueServerCert(pki.ca, { ips: ['127.0.0.1'] });
  mute = http2.createSecureServer({
    ca: pki.ca.certPem,
    cert: cert.certPem,
    key: cert.keyPem,
    requestCert: true,
    rejectUnauthorized: true,
  });
  mute.on('stream', (stream) => {
    stream.on('error', () => {});
    stream.on('data', (chunk: Buffer) => (muteReceived += chunk.length));
    stream.on('end', () => (muteEnded = true));
  });
  mute.listen(0, '127.0.0.1');
  await once(mute, 'listening');
  muteAddress = `127.0.0.1:${(mute.address() as AddressInfo).port}`;

  fake = await startFakeTalos(pki, {
    upload: async () => ({}),
    streams: {
      EtcdSnapshot: async function* () {
        yield SNAPSHOT;
      },
    },
  });
});

afterAll(async () => {
  for (const client of clients) client.close();
  for (const socket of silentSockets) socket.destroy();
  silent?.close();
  mute?.close();
  await fake?.stop();
});

describe('an endpoint that accepts and never completes the TLS handshake', () => {
  it('fails an upload as unreachable (the wizard waits for the node) instead of hanging at 0%', async () => {
    const client = clientFor([silentAddress]);
    const progress: number[] = [];
    const result = await client.etcdRecover('10.5.0.2', Readable.from([SNAPSHOT]), {
      onProgress: (p) => progress.push(p.bytes),
    });
    expect(result.ok).toBe(false);
    const failure = (result as { error: RpcFailure }).error;
    expect(classifyFailure(failure)).toBe('unreachable');
    expect(nodeDidNotAnswer(failure)).toBe(true);
    expect(describeFailure('10.5.0.2', failure, 'the snapshot upload')).toMatch(
      /^Cannot reach .*did not complete the TLS handshake in 0\.3 s.*; check /,
    );
    // nothing was sent
    expect(progress.filter((bytes) => bytes > 0)).toEqual([]);
  });

  it('moves an upload on to the next endpoint, which takes it', async () => {
    const client = clientFor([silentAddress, fake.address]);
    const before = fake.uploads.length;
    const result = await client.etcdRecover('10.5.0.2', Readable.from([SNAPSHOT]));
    expect(result.ok).toBe(true);
    expect(fake.uploads.length).toBe(before + 1);
    expect(fake.uploads.at(-1)?.bytes.equals(SNAPSHOT)).toBe(true);
  });

  it('fails a snapshot download as unreachable, not as an etcd that does not serve', async () => {
    const client = clientFor([silentAddress]);
    const failure = await (async () => {
      for await (const chunk of client.etcdSnapshot('10.5.0.2')) void chunk;
    })().then(
      () => null,
      (error: { failure: RpcFailure }) => error.failure,
    );
    expect(failure).not.toBeNull();
    expect(classifyFailure(failure as RpcFailure)).toBe('unreachable');
    expect((failure as RpcFailure).message).toMatch(/did not complete the TLS handshake/);
  });

  it('moves a snapshot download on to the next endpoint, which sends it', async () => {
    const client = clientFor([silentAddress, fake.address]);
    const chunks: Buffer[] = [];
    for await (const chunk of client.etcdSnapshot('10.5.0.2')) chunks.push(chunk);
    expect(Buffer.concat(chunks).equals(SNAPSHOT)).toBe(true);
  });
});

describe('a cancel while the handshake is awaited', () => {
  /** a connect limit far beyond the test: only the cancel can end these calls */
  function patientClient(): GrpcTalosClient {
    const client = createTalosClient(loadTalosconfig({ talosconfig: writeTalosconfig(pki, [silentAddress]) }, {}), {
      connectTimeoutMs: 600_000,
    });
    clients.push(client);
    return client;
  }

  it('ends an upload as cancelled', async () => {
    const abort = new AbortController();
    setTimeout(() => abort.abort(), 100);
    const result = await patientClient().etcdRecover('10.5.0.2', Readable.from([SNAPSHOT]), { signal: abort.signal });
    expect(result.ok).toBe(false);
    expect((result as { error: RpcFailure }).error.codeName).toBe('Canceled');
  });

  it('ends a snapshot download as cancelled', async () => {
    const abort = new AbortController();
    setTimeout(() => abort.abort(), 100);
    const failure = await (async () => {
      for await (const chunk of patientClient().etcdSnapshot('10.5.0.2', { signal: abort.signal })) void chunk;
    })().then(
      () => null,
      (error: { failure: RpcFailure }) => error.failure,
    );
    expect(failure?.codeName).toBe('Canceled');
  });
});

describe('a node that takes the whole upload and never answers', () => {
  it('fails the upload as a retryable deadline once the answer is overdue', async () => {
    const client = clientFor([muteAddress]);
    const result = await client.etcdRecover('10.5.0.2', Readable.from([SNAPSHOT]), { answerTimeoutMs: ANSWER_MS });
    expect(result.ok).toBe(false);
    const failure = (result as { error: RpcFailure }).error;
    // the node had every byte: the wait was for its answer, not for the upload
    expect(muteEnded).toBe(true);
    expect(muteReceived).toBeGreaterThan(SNAPSHOT.length);
    expect(failure.codeName).toBe('DeadlineExceeded');
    expect(failure.message).toMatch(/no answer came in 0\.3 s after the upload's last byte/);
    expect(isRetryable(failure)).toBe(true);
    expect(describeFailure('10.5.0.2', failure, 'the snapshot upload')).toMatch(
      /^10\.5\.0\.2 took the snapshot but did not confirm it in time.*; upload it again/,
    );
  });

  it('waits by default a minute plus the upload at 10 MiB/s (the node fsyncs the file before it answers)', () => {
    expect(answerDeadlineMs(90 * 1024)).toBe(60_009);
    expect(answerDeadlineMs(2 * 1024 ** 3)).toBe(60_000 + 204_800);
  });
});
