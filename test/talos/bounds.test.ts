/**
 * Answers too long to be true, and answers that cannot be decoded (issue 18 item 13): a node (or whatever answers on
 * its port) sends bytes chosen by the test, over TLS with the client's own mTLS set-up. A million-member list keeps
 * 1,000 members and says how many were left out; a member list that is not valid protobuf is a protocol error, not an
 * etcd verdict.
 */
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_MEMBERS, MAX_SERVICE_EVENTS, cutNote, cutOf } from '../../src/talos/bounded.js';
import { createTalosClient, type GrpcTalosClient } from '../../src/talos/client.js';
import { classifyFailure, describeFailure } from '../../src/talos/errors.js';
import { issueServerCert } from '../../src/talos/pki.js';
import { loadTalosconfig } from '../../src/talos/talosconfig.js';
import { makePki, writeTalosconfig } from './fake-talos.js';

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Buffer.from(out);
}
const field = (number: number, value: Buffer) => Buffer.concat([varint(number * 8 + 2), varint(value.length), value]);
const text = (number: number, value: string) => field(number, Buffer.from(value));
const metadata = (host: string) => field(1, text(1, host));

/** EtcdMemberListResponse{messages: [EtcdMembers{metadata, members × count}]} */
function memberList(host: string, count: number): Buffer {
  const members: Buffer[] = [];
  for (let i = 1; i <= count; i++) {
    // EtcdMember{id = 2 (varint), hostname = 3}
    members.push(field(3, Buffer.concat([Buffer.from([0x10]), varint(i), text(3, `m${i}`)])));
  }
  return field(1, Buffer.concat([metadata(host), ...members]));
}

/** ServiceListResponse{messages: [ServiceList{metadata, services: [ServiceInfo{id, state, events{events × count}}]}]} */
function serviceList(host: string, count: number): Buffer {
  const events: Buffer[] = [];
  for (let i = 1; i <= count; i++) events.push(field(1, text(1, `event ${i}`)));
  const info = Buffer.concat([text(1, 'etcd'), text(2, 'Running'), field(3, Buffer.concat(events))]);
  return field(1, Buffer.concat([metadata(host), field(2, info)]));
}

let server: grpc.Server;
let client: GrpcTalosClient;
const answers: Record<string, Buffer> = {};

beforeAll(async () => {
  const pki = await makePki();
  const cert = await issueServerCert(pki.ca, { ips: ['127.0.0.1'] });
  server = new grpc.Server();
  const raw = (name: string) => ({
    path: `/machine.MachineService/${name}`,
    requestStream: false,
    responseStream: false,
    requestSerialize: (b: Buffer) => b,
    requestDeserialize: (b: Buffer) => b,
    responseSerialize: (b: Buffer) => b,
    responseDeserialize: (b: Buffer) => b,
  });
  const names = ['EtcdMemberList', 'ServiceList'];
  server.addService(
    Object.fromEntries(names.map((name) => [name, raw(name)])),
    Object.fromEntries(
      names.map((name) => [
        name,
        (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) =>
          callback(null, answers[`${name}:${String(call.metadata.get('nodes')[0])}`] ?? Buffer.alloc(0)),
      ]),
    ),
  );
  const credentials = grpc.ServerCredentials.createSsl(
    Buffer.from(pki.ca.certPem),
    [{ cert_chain: Buffer.from(cert.certPem), private_key: Buffer.from(cert.keyPem) }],
    true,
  );
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', credentials, (error, bound) => (error ? reject(error) : resolve(bound))),
  );
  client = createTalosClient(loadTalosconfig({ talosconfig: writeTalosconfig(pki, [`127.0.0.1:${port}`]) }, {}));
  answers['EtcdMemberList:huge'] = memberList('huge', 1_000_000);
  answers['EtcdMemberList:three'] = memberList('three', 3);
  // a member whose length runs past the end of its message: not protobuf
  answers['EtcdMemberList:garbled'] = Buffer.concat([Buffer.from([0x0a, 0x06]), Buffer.from([0x1a, 0x09, 0x10, 0x01])]);
  answers['ServiceList:chatty'] = serviceList('chatty', 1_000);
});

afterAll(() => {
  client.close();
  server.forceShutdown();
});

describe('bounded answers', () => {
  it('a million-member list keeps the first 1,000 members and says how many were left out', async () => {
    const [result] = await client.etcdMemberList(['huge'], true);
    expect(result?.ok).toBe(true);
    if (!result?.ok) return;
    expect(result.value).toHaveLength(MAX_MEMBERS);
    expect(result.value[0]?.hostname).toBe('m1');
    expect(result.value.at(-1)?.hostname).toBe(`m${MAX_MEMBERS}`);
    expect(cutOf(result.value)).toEqual({ members: 1_000_000 - MAX_MEMBERS });
    expect(cutNote('huge', 'etcd member list', result.value)).toBe(
      "huge's etcd member list was longer than any real cluster's, so 999,000 members were left out; the answer is damaged or not from a Talos node, so do not trust it.",
    );
    // the cut is not an enumerable field: it never lands in the journal's JSON
    expect(JSON.stringify(result.value)).not.toContain('999000');
  });

  it('a normal list is read whole, with nothing marked as cut', async () => {
    const [result] = await client.etcdMemberList(['three'], true);
    expect(result?.ok && result.value.map((m) => m.hostname)).toEqual(['m1', 'm2', 'm3']);
    expect(result?.ok && cutOf(result.value)).toBeUndefined();
  });

  it('a service history keeps its newest 64 events', async () => {
    const [result] = await client.serviceList(['chatty']);
    expect(result?.ok).toBe(true);
    if (!result?.ok) return;
    const events = result.value[0]?.events ?? [];
    expect(events).toHaveLength(MAX_SERVICE_EVENTS);
    expect(events[0]?.msg).toBe(`event ${1_000 - MAX_SERVICE_EVENTS + 1}`);
    expect(events.at(-1)?.msg).toBe('event 1000');
    expect(cutOf(result.value)).toEqual({ 'service events': 1_000 - MAX_SERVICE_EVENTS });
  });

  it('a member list that cannot be decoded is a protocol error, not an etcd verdict', async () => {
    const [result] = await client.etcdMemberList(['garbled'], true);
    expect(result?.ok).toBe(false);
    if (result?.ok !== false) return;
    expect(classifyFailure(result.error)).toBe('undecodable-answer');
    const sentence = describeFailure('garbled', result.error, 'the member list');
    expect(sentence).toMatch(
      /^garbled sent for the member list an answer that could not be decoded \(.+\); this is a protocol mismatch, not an etcd verdict/,
    );
    expect(sentence).not.toMatch(/Response message parsing error|no quorum|no leader/);
  });
});
