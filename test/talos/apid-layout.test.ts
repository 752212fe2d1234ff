/**
 * Snapshot streams laid out byte for byte as a real node sends them through apid. machined sends `Data{bytes}`
 * (`12 <len> <chunk>`); apid then *appends* the node's `metadata{hostname}` to every message
 * (siderolabs/talos: internal/app/apid/pkg/backend/apid.go@v1.11.6:180-181, `append(resp, payload...)`, applied per
 * message by siderolabs/grpc-proxy: proxy/handler_one2many.go@v0.5.1:256). So the metadata comes *after* the data,
 * and a failing node's message carries metadata twice: machined's `{error}` and apid's `{hostname}`, which protobuf
 * merges. grpc-go writes one message per HTTP/2 DATA frame.
 *
 * Served by a bare HTTP/2 server so the test decides every byte and every frame boundary.
 */
import { once } from 'node:events';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTalosClient, type GrpcTalosClient } from '../../src/talos/client.js';
import { issueServerCert } from '../../src/talos/pki.js';
import { loadTalosconfig } from '../../src/talos/talosconfig.js';
import { makePki, writeTalosconfig } from './fake-talos.js';

function varint(n: number): Buffer {
  const bytes: number[] = [];
  for (; n >= 0x80; n = Math.floor(n / 128)) bytes.push((n % 128) | 0x80);
  bytes.push(n);
  return Buffer.from(bytes);
}

const lengthDelimited = (field: number, value: Buffer) =>
  Buffer.concat([Buffer.from([(field << 3) | 2]), varint(value.length), value]);

/** common.Metadata{hostname = 1, error = 2} */
function metadata(fields: { hostname?: string; error?: string }): Buffer {
  const parts: Buffer[] = [];
  if (fields.hostname !== undefined) parts.push(lengthDelimited(1, Buffer.from(fields.hostname)));
  if (fields.error !== undefined) parts.push(lengthDelimited(2, Buffer.from(fields.error)));
  return Buffer.concat(parts);
}

/** What machined sends (Data.bytes = 2), then what apid appends (Data.metadata = 1), as one gRPC message. */
function apidMessage(chunk: Buffer, hostname: string, machinedMetadata?: { error?: string }): Buffer {
  const machined = Buffer.concat([
    machinedMetadata ? lengthDelimited(1, metadata(machinedMetadata)) : Buffer.alloc(0),
    chunk.length > 0 ? lengthDelimited(2, chunk) : Buffer.alloc(0),
  ]);
  const message = Buffer.concat([machined, lengthDelimited(1, metadata({ hostname }))]);
  const header = Buffer.alloc(5);
  header.writeUInt32BE(message.length, 1);
  return Buffer.concat([header, message]);
}

const letters = 'abcdefghijklmnopqrstuvwxyz0123456789';
/** Node names as clusters have them: the first node of `talosctl cluster create`, IPv6, and names of every last character. */
const hostnames = [
  '10.5.0.2',
  '10.5.0.3',
  '172.20.0.2',
  '192.168.100.254',
  'fd00::2',
  '2001:db8:85a3::8a2e:370:7334',
  ...[...letters].map((last) => `talos-cp-${last}`),
  'n',
  'x'.repeat(200), // a two-byte length varint
];

/** Each test's stream: a payload in 1 KiB messages (last one short), written with the given frame plan. */
type Plan = 'one-per-frame' | 'split-everywhere' | 'all-at-once' | 'machined-metadata' | 'machined-error';

const payload = Buffer.from(Array.from({ length: 10 * 1024 + 321 }, (_, i) => (i * 31 + 7) % 256));

function messagesFor(hostname: string, plan: Plan): Buffer[] {
  const messages: Buffer[] = [];
  for (let offset = 0; offset < payload.length; offset += 1024) {
    const chunk = payload.subarray(offset, offset + 1024);
    messages.push(apidMessage(chunk, hostname, plan === 'machined-metadata' ? {} : undefined));
  }
  if (plan === 'machined-error') {
    messages.push(apidMessage(Buffer.alloc(0), hostname, { error: 'rpc error: code = Unknown desc = etcd went away' }));
  }
  return messages;
}

/** Writes that end exactly at message ends, inside headers, inside length varints and inside the hostname. */
function writesFor(messages: Buffer[], plan: Plan): Buffer[] {
  if (plan === 'all-at-once') return [Buffer.concat(messages)];
  if (plan !== 'split-everywhere') return messages;
  const all = Buffer.concat(messages);
  const writes: Buffer[] = [];
  const cuts = [1, 4, 5, 6, 7, 300, 1030, 1031, 1040, all.length - 9, all.length - 1];
  let previous = 0;
  for (const cut of cuts.filter((c) => c > 0 && c < all.length).sort((a, b) => a - b)) {
    writes.push(all.subarray(previous, cut));
    previous = cut;
  }
  writes.push(all.subarray(previous));
  return writes;
}

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
  server.on('stream', (stream, headers) => {
    const [plan, hostname] = JSON.parse(String(headers.nodes ?? headers.node)) as [Plan, string];
    stream.on('error', () => {});
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    const writes = writesFor(messagesFor(hostname, plan), plan);
    for (const piece of writes.slice(0, -1)) stream.write(piece);
    stream.end(writes.at(-1));
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

/** The node name travels as JSON in the node header (`nodes` for a proxied stream) so one server answers every case. */
async function download(plan: Plan, hostname: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of client.etcdSnapshot(JSON.stringify([plan, hostname]))) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

describe('snapshot stream with apid’s layout (data first, then metadata{hostname})', () => {
  it.each(hostnames)('downloads every byte from a node named %s, one message per frame', async (hostname) => {
    expect((await download('one-per-frame', hostname)).equals(payload)).toBe(true);
  });

  it.each(['10.5.0.2', 'fd00::2', 'talos-cp-z', 'x'.repeat(200)])(
    'downloads every byte from %s when frames split messages anywhere',
    async (hostname) => {
      expect((await download('split-everywhere', hostname)).equals(payload)).toBe(true);
    },
  );

  it('downloads every byte when all messages arrive in one write', async () => {
    expect((await download('all-at-once', '10.5.0.2')).equals(payload)).toBe(true);
  });

  it('accepts metadata present twice in one message (machined’s empty one and apid’s)', async () => {
    expect((await download('machined-metadata', '10.5.0.2')).equals(payload)).toBe(true);
  });

  it('fails the download when machined’s metadata reports an error and apid appended the hostname', async () => {
    const failure = await download('machined-error', '10.5.0.2').then(
      () => null,
      (error: { failure?: { message: string } }) => error.failure?.message ?? String(error),
    );
    expect(failure).toMatch(/etcd went away/);
  });
});
