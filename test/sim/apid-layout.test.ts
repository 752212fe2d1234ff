/**
 * The bytes on the wire, read raw (no proto decoding on our side): apid appends the node's metadata after the data of
 * every message of a `nodes` call and leaves `node` calls verbatim (talos-behaviour-facts §1).
 */
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBench, type Bench } from './helpers.js';

let bench: Bench;
let cp1: string;
let cp2: string;

beforeAll(async () => {
  bench = await startBench('quorum-intact');
  [cp1, cp2] = bench.sim.nodes as [string, string];
});
afterAll(async () => {
  await bench?.close();
});

const identity = (b: Buffer): Buffer => b;
const md = (key: 'node' | 'nodes', values: string[]): grpc.Metadata => {
  const m = new grpc.Metadata();
  for (const v of values) m.add(key, v);
  return m;
};

function rawClient(address: string): grpc.Client {
  return new grpc.Client(`${address}:${bench.sim.port}`, bench.creds);
}

function rawStream(address: string, method: string, request: Buffer, metadata: grpc.Metadata): Promise<Buffer[]> {
  const client = rawClient(address);
  return new Promise<Buffer[]>((resolve, reject) => {
    const call = client.makeServerStreamRequest(
      `/machine.MachineService/${method}`,
      identity,
      identity,
      request,
      metadata,
      {
        deadline: Date.now() + 20_000,
      },
    );
    const out: Buffer[] = [];
    call.on('data', (m: Buffer) => out.push(m));
    call.on('error', reject);
    call.on('end', () => resolve(out));
  }).finally(() => client.close());
}

function rawUnary(address: string, method: string, request: Buffer, metadata: grpc.Metadata): Promise<Buffer> {
  const client = rawClient(address);
  return new Promise<Buffer>((resolve, reject) => {
    client.makeUnaryRequest(
      `/machine.MachineService/${method}`,
      identity,
      identity,
      request,
      metadata,
      { deadline: Date.now() + 20_000 },
      (error, value) => (error || !value ? reject(error ?? new Error('no value')) : resolve(value)),
    );
  }).finally(() => client.close());
}

/** `0a <len> 0a <len> <hostname>`: common.Empty{metadata{hostname}} as Go marshals it. */
function hostnameTrailer(hostname: string): Buffer {
  const host = Buffer.from(hostname);
  const metadata = Buffer.concat([Buffer.from([0x0a, host.length]), host]);
  return Buffer.concat([Buffer.from([0x0a, metadata.length]), metadata]);
}

/** Splits a protobuf message into its top-level fields (tag byte, payload) for the length-delimited ones we expect. */
function fields(buf: Buffer): { tag: number; body: Buffer }[] {
  const out: { tag: number; body: Buffer }[] = [];
  let at = 0;
  while (at < buf.length) {
    const tag = buf[at++]!;
    expect(tag & 7).toBe(2);
    let len = 0;
    let shift = 1;
    for (;;) {
      const b = buf[at++]!;
      len += (b & 0x7f) * shift;
      shift *= 128;
      if (b < 0x80) break;
    }
    out.push({ tag, body: buf.subarray(at, at + len) });
    at += len;
  }
  expect(at).toBe(buf.length);
  return out;
}

describe('apid stream layout', () => {
  it('a nodes snapshot: every message is the chunk, then the node metadata', async () => {
    const messages = await rawStream(cp1, 'EtcdSnapshot', Buffer.alloc(0), md('nodes', [cp1]));
    expect(messages.length).toBeGreaterThan(1);
    const trailer = hostnameTrailer(cp1);
    const chunks: Buffer[] = [];
    for (const message of messages) {
      expect(message[0]).toBe(0x12); // bytes = 2 first
      expect(message.subarray(message.length - trailer.length).equals(trailer)).toBe(true);
      const parts = fields(message);
      expect(parts.map((p) => p.tag)).toEqual([0x12, 0x0a]);
      chunks.push(parts[0]!.body);
    }
    const direct = await rawStream(cp1, 'EtcdSnapshot', Buffer.alloc(0), md('node', [cp1]));
    // one-to-one is verbatim: only the data field, no hostname anywhere
    for (const message of direct) expect(fields(message).map((p) => p.tag)).toEqual([0x12]);
    const directBytes = Buffer.concat(direct.map((m) => fields(m)[0]!.body));
    expect(Buffer.concat(chunks).length).toBe(directBytes.length);
    // the file starts with a bbolt meta page either way
    expect(Buffer.concat(chunks).readUInt32LE(16)).toBe(0xed0cdaed);
  });

  it('a failed nodes Copy carries machined metadata{error} and then apid metadata{hostname}', async () => {
    const path = Buffer.from('/var/lib/etcd/member/snap/nope');
    const request = Buffer.concat([Buffer.from([0x0a, path.length]), path]);
    const messages = await rawStream(cp2, 'Copy', request, md('nodes', [cp2]));
    expect(messages).toHaveLength(1);
    const parts = fields(messages[0]!);
    expect(parts.map((p) => p.tag)).toEqual([0x0a, 0x0a]);
    const error = Buffer.from('lstat /var/lib/etcd/member/snap/nope: no such file or directory');
    expect(parts[0]!.body).toEqual(Buffer.concat([Buffer.from([0x12, error.length]), error]));
    expect(
      Buffer.concat([Buffer.from([0x0a, parts[1]!.body.length]), parts[1]!.body]).equals(hostnameTrailer(cp2)),
    ).toBe(true);
  });

  it('a unary nodes reply holds the node reply first and its metadata last, one reply per node', async () => {
    const response = await rawUnary(cp1, 'Version', Buffer.alloc(0), md('nodes', [cp1, cp2]));
    const replies = fields(response);
    expect(replies.map((r) => r.tag)).toEqual([0x0a, 0x0a]);
    replies.forEach((reply, i) => {
      const inner = fields(reply.body);
      expect(inner.at(-1)!.tag).toBe(0x0a);
      expect(inner.slice(0, -1).every((f) => f.tag !== 0x0a)).toBe(true);
      const host = [cp1, cp2][i]!;
      expect(Buffer.concat([Buffer.from([0x0a, inner.at(-1)!.body.length]), inner.at(-1)!.body])).toEqual(
        hostnameTrailer(host),
      );
    });
  });

  it('refuses a node value with a port as apid does', async () => {
    await expect(
      rawUnary(cp1, 'Version', Buffer.alloc(0), md('node', [`${cp2}:${bench.sim.port}`])),
    ).rejects.toMatchObject({ code: grpc.status.INTERNAL, details: `invalid target "${cp2}:${bench.sim.port}"` });
  });
});
