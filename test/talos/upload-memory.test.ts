/**
 * The recovery upload's memory (issue 16: peak ≤ 100 MB). The wizard read the snapshot with fs.createReadStream,
 * a new 1 MiB buffer per read, and h2stream wrote large messages straight from those buffers: the dead ones piled
 * up until a collection, 30 of the upload's ~99 MB peak (bench/RESULTS.md, transfer). Now the file is read into a
 * few reused buffers and the upload copies every message before it asks the source for more.
 *
 * The node is a bare HTTP/2 server in a child process (not grpc-js, and not in this process, whose ArrayBuffer
 * memory is what is measured): it takes the gRPC messages of an upload, hashes their common.Data payload and
 * prints the hash, the byte count and each message's size, then answers OK.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readlinkSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTalosClient, type GrpcTalosClient } from '../../src/talos/client.js';
import { connectSession, uploadData, UploadFileSource } from '../../src/talos/h2stream.js';
import { issueServerCert } from '../../src/talos/pki.js';
import { loadTalosconfig } from '../../src/talos/talosconfig.js';
import { snapshotSource } from '../../src/wizard/upload.js';
import { makePki, writeTalosconfig, type TestPki } from './fake-talos.js';

/** The node: common.Data { bytes = 2 } of each message hashed; `refuse` in the path answers FailedPrecondition. */
const SINK = `
import http2 from 'node:http2';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
const [dir] = process.argv.slice(1);
const server = http2.createSecureServer({
  ca: readFileSync(dir + '/ca.crt'), cert: readFileSync(dir + '/server.crt'), key: readFileSync(dir + '/server.key'),
  requestCert: true, rejectUnauthorized: true,
});
server.on('stream', (stream, headers) => {
  stream.on('error', () => {});
  if (String(headers['nodes']).includes('refuse')) {
    stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '9', 'grpc-message': 'not now' },
      { endStream: true });
    return;
  }
  const hash = createHash('sha256');
  const sizes = [];
  let bytes = 0;
  let pending = Buffer.alloc(0);
  stream.on('data', (chunk) => {
    pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    let at = 0;
    while (pending.length - at >= 5) {
      const length = pending.readUInt32BE(at + 1);
      if (pending.length - at - 5 < length) break;
      let p = at + 6; // the field tag 0x12, then the varint length
      while (pending[p] & 0x80) p++;
      p++;
      const end = at + 5 + length;
      hash.update(pending.subarray(p, end));
      bytes += end - p;
      sizes.push(end - p);
      at = end;
    }
    pending = Buffer.from(pending.subarray(at));
  });
  stream.on('end', () => {
    console.log(JSON.stringify({ sha256: hash.digest('hex'), bytes, sizes: [...new Set(sizes)], last: sizes.at(-1) }));
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    stream.end();
  });
});
server.listen(0, '127.0.0.1', () => console.log('port ' + server.address().port));
`;

interface Landed {
  sha256: string;
  bytes: number;
  /** the distinct message sizes, and the last message's */
  sizes: number[];
  last: number;
}

const MiB = 1024 * 1024;
let pki: TestPki;
let dir: string;
let sink: ChildProcess;
let port: number;
let client: GrpcTalosClient;
const landed: Landed[] = [];
let onLanded: (() => void) | undefined;

beforeAll(async () => {
  pki = await makePki();
  const cert = await issueServerCert(pki.ca, { ips: ['127.0.0.1'] });
  dir = mkdtempSync(join(tmpdir(), 'talos-dr-upload-memory-'));
  writeFileSync(join(dir, 'ca.crt'), pki.ca.certPem);
  writeFileSync(join(dir, 'server.crt'), cert.certPem);
  writeFileSync(join(dir, 'server.key'), cert.keyPem);
  sink = spawn(process.execPath, ['--input-type=module', '-e', SINK, '--', dir], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: sink.stdout as NodeJS.ReadableStream });
  const ready = new Promise<number>((resolve) =>
    lines.on('line', (line) => {
      if (line.startsWith('port ')) return resolve(Number(line.slice(5)));
      landed.push(JSON.parse(line) as Landed);
      onLanded?.();
    }),
  );
  port = await ready;
  client = createTalosClient(loadTalosconfig({ talosconfig: writeTalosconfig(pki, [`127.0.0.1:${port}`]) }, {}));
});

afterAll(async () => {
  client?.close();
  if (sink && sink.exitCode === null) {
    sink.kill();
    await once(sink, 'exit');
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** What the node printed for the upload that ended last (its line may come just after the answer). */
async function lastLanded(count: number): Promise<Landed | undefined> {
  while (landed.length < count) await new Promise<void>((resolve) => (onLanded = resolve));
  return landed.at(-1);
}

/** Deterministic bytes that differ at every offset of a 1 MiB read (so a reused buffer shows). */
function pattern(bytes: number): Buffer {
  const data = Buffer.allocUnsafe(bytes);
  for (let i = 0; i + 4 <= bytes; i += 4) data.writeUInt32LE((i * 2654435761) >>> 0, i);
  for (let i = bytes - (bytes % 4); i < bytes; i++) data[i] = i & 0xff;
  return data;
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

describe("the wizard's snapshot upload", () => {
  it('sends a 96 MiB file whole with at most 16 MiB of buffers alive at any time', async () => {
    const data = pattern(96 * MiB + 12345);
    const file = join(dir, 'snapshot.db');
    writeFileSync(file, data);
    const before = landed.length;
    let peak = 0;
    const sample = () => (peak = Math.max(peak, process.memoryUsage().arrayBuffers));
    const timer = setInterval(sample, 2);
    const baseline = process.memoryUsage().arrayBuffers;
    try {
      const result = await client.etcdRecover('127.0.0.1', snapshotSource(file), {
        onProgress: sample,
        totalBytes: data.length,
      });
      expect(result.ok).toBe(true);
    } finally {
      clearInterval(timer);
    }
    const got = await lastLanded(before + 1);
    expect(got?.bytes).toBe(data.length);
    expect(got?.sha256).toBe(sha256(data));
    // a new 1 MiB buffer per read: 32 MiB of them alive before a collection freed any
    expect(peak - baseline).toBeLessThan(16 * MiB);
  }, 120_000);

  it('reads the file into the same four buffers over and over, never into the chunk in hand', async () => {
    const data = pattern(9 * MiB + 7);
    const file = join(dir, 'buffers.db');
    writeFileSync(file, data);
    const seen = new Set<ArrayBufferLike>();
    const copies: Buffer[] = [];
    for await (const chunk of new UploadFileSource(file) as AsyncIterable<Buffer>) {
      seen.add(chunk.buffer);
      // the reads ahead run meanwhile, into the other buffers: the chunk in hand stays as it was
      await new Promise((resolve) => setTimeout(resolve, 2));
      copies.push(Buffer.from(chunk)); // done with each chunk before asking for the next, as uploadData is
    }
    expect(Buffer.concat(copies).equals(data)).toBe(true);
    expect(seen.size).toBeLessThanOrEqual(4);
  });

  it('closes the file when the node refuses the upload before reading it', async () => {
    const file = join(dir, 'refused.db');
    writeFileSync(file, pattern(8 * MiB));
    const result = await client.etcdRecover('refuse', snapshotSource(file));
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error.message).toContain('not now');
    const open = () => readdirSync('/proc/self/fd').filter((fd) => safeReadlink(`/proc/self/fd/${fd}`) === file);
    for (let i = 0; i < 50 && open().length > 0; i++) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(open()).toEqual([]);
  });

  it('says what went wrong when the file cannot be read', async () => {
    await expect(client.etcdRecover('127.0.0.1', snapshotSource(join(dir, 'missing.db')))).rejects.toThrow(
      /Reading the snapshot to upload failed \(ENOENT/,
    );
  });
});

function safeReadlink(path: string): string | null {
  try {
    return readlinkSync(path);
  } catch {
    return null;
  }
}

/** A source that reads into one buffer, overwritten as soon as the next chunk is asked for. */
async function* oneBuffer(data: Buffer, readBytes: number): AsyncGenerator<Buffer> {
  const buf = Buffer.alloc(readBytes);
  for (let at = 0; at < data.length; at += readBytes) {
    const n = data.copy(buf, 0, at, Math.min(at + readBytes, data.length));
    yield buf.subarray(0, n);
    buf.fill(0xee); // the source's next read begins: what it handed out before is gone
  }
}

describe('an upload from a source that reuses its buffer', () => {
  it.each([
    { chunkSize: 256 * 1024, readBytes: MiB, what: 'large messages, reads a whole number of them' },
    { chunkSize: 4096, readBytes: 100_000, what: "talosctl's 4 KiB messages, reads that cut them" },
    { chunkSize: 256 * 1024, readBytes: 100_000, what: 'large messages, each made of several reads' },
  ])('lands intact: $what', async ({ chunkSize, readBytes }) => {
    const data = pattern(6 * MiB + 4321);
    const endpoint = { host: '127.0.0.1', port, address: `127.0.0.1:${port}` };
    const session = await connectSession(endpoint, {
      ca: pki.ca.certPem,
      cert: pki.client.certPem,
      key: pki.client.keyPem,
      ALPNProtocols: ['h2'],
    });
    const before = landed.length;
    try {
      await uploadData(
        session,
        {
          authority: endpoint.address,
          path: '/machine.MachineService/EtcdRecover',
          metadata: { nodes: ['127.0.0.1'] },
          chunkSize,
          onSent: () => {},
        },
        oneBuffer(data, readBytes),
      );
    } finally {
      session.close();
    }
    const got = await lastLanded(before + 1);
    expect(got?.bytes).toBe(data.length);
    expect(got?.sha256).toBe(sha256(data));
    expect(got?.sizes.filter((size) => size !== got.last)).toEqual([chunkSize]);
    expect(got?.last).toBe(data.length % chunkSize);
  });
});
