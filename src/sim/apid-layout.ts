/**
 * The bytes apid puts on the wire for a `nodes` (one-to-many) call. apid never decodes a backend's reply: it appends
 * `common.Empty{metadata{hostname}}` after the bytes machined sent — inside the one reply of a unary response (whose
 * header it rewrites), after the whole message of a stream (talos: internal/app/apid/pkg/backend/apid.go@v1.14.1:223-267,
 * applied per message by grpc-proxy: proxy/handler_one2many.go@v0.5.2:174 unary, :256 streaming). A failed backend
 * becomes `metadata{hostname, error, status}` in its place (apid.go@v1.14.1:288-307 BuildError). One-to-one (`node`)
 * and local calls are proxied verbatim (grpc-proxy proxy/director.go@v0.5.2:91), so they carry no hostname at all.
 *
 * The simulator's handlers return plain objects; the service definition built here serializes them with the protos'
 * own serializer and then lays out apid's additions the same way apid does, so the metadata comes after the data.
 */
import type * as grpc from '@grpc/grpc-js';
import type { Payload } from './api.js';
import { ProtoWriter } from '../talos/proto-wire.js';
import type { RpcError } from './rpc-error.js';

const ONE2MANY = Symbol('apid one-to-many response');
const APPENDED = Symbol('bytes apid appends');
const RAW = Symbol('bytes apid built itself');

/** One backend's part of a `nodes` call: its replies, or the error apid turns into an in-band reply. */
export type One2ManyResult = { hostname: string; payloads: Payload[] } | { hostname: string; error: RpcError };

/** `common.Empty{metadata: common.Metadata{hostname, error, status}}`, as Go's proto.Marshal writes it. */
function emptyWithMetadata(hostname: string, error?: RpcError): Buffer {
  const metadata = new ProtoWriter().string(1, hostname);
  if (error) {
    const status = new ProtoWriter().uint(1, error.code).string(2, error.message).finish();
    metadata.string(2, error.goText()).message(3, status);
  }
  return new ProtoWriter().message(1, metadata.finish()).finish();
}

function varint(value: number): Buffer {
  const out: number[] = [];
  let v = value;
  while (v >= 0x80) {
    out.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return Buffer.from(out);
}

function readVarint(buf: Buffer, at: number): [number, number] {
  let value = 0;
  let shift = 1;
  let i = at;
  for (;;) {
    const byte = buf[i++];
    if (byte === undefined) throw new Error('truncated varint');
    value += (byte & 0x7f) * shift;
    if (byte < 0x80) return [value, i];
    shift *= 128;
  }
}

/** AppendInfo for a unary response `{repeated Reply messages = 1}` holding one reply: the reply grows by `tail`. */
function appendToUnaryReply(response: Buffer, tail: Buffer): Buffer {
  if (response.length === 0) return Buffer.concat([Buffer.from([0x0a]), varint(tail.length), tail]);
  const [tag, afterTag] = readVarint(response, 0);
  if (tag !== 0x0a) throw new Error(`unexpected message format: ${tag}`);
  const [, afterLength] = readVarint(response, afterTag);
  const reply = response.subarray(afterLength);
  return Buffer.concat([Buffer.from([0x0a]), varint(reply.length + tail.length), reply, tail]);
}

/** A unary `nodes` response: every backend's replies in order, each with apid's metadata after it. */
export function one2many(results: One2ManyResult[]): Payload {
  return { [ONE2MANY]: results } as Payload;
}

/** A streamed message as apid forwards it from one of several backends: machined's bytes, then `{hostname}`. */
export function withAppendedHostname(message: Payload, hostname: string): Payload {
  return { ...message, [APPENDED]: emptyWithMetadata(hostname) } as Payload;
}

/** A streamed in-band error of one backend of a `nodes` call (BuildError, streaming). */
export function streamedError(hostname: string, error: RpcError): Payload {
  return { [RAW]: emptyWithMetadata(hostname, error) } as Payload;
}

function serializeOne2Many(serialize: (value: unknown) => Buffer, results: One2ManyResult[]): Buffer {
  const parts: Buffer[] = [];
  for (const result of results) {
    if ('error' in result) {
      const empty = emptyWithMetadata(result.hostname, result.error);
      parts.push(Buffer.from([0x0a]), varint(empty.length), empty);
      continue;
    }
    // the node's own reply (no metadata: machined sets none), with apid's metadata appended to it
    const tail = emptyWithMetadata(result.hostname);
    for (const payload of result.payloads) parts.push(appendToUnaryReply(serialize({ messages: [payload] }), tail));
  }
  return Buffer.concat(parts);
}

/** The service definition with apid's layout: values built above serialize as apid would have sent them. */
export function apidServiceDefinition(definition: grpc.ServiceDefinition): grpc.ServiceDefinition {
  const out: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const [name, method] of Object.entries(definition)) {
    const serialize = method.responseSerialize as (value: unknown) => Buffer;
    out[name] = {
      ...method,
      responseSerialize: (value: unknown): Buffer => {
        const v = value as Record<symbol, unknown>;
        if (v[RAW]) return v[RAW] as Buffer;
        if (v[ONE2MANY]) return serializeOne2Many(serialize, v[ONE2MANY] as One2ManyResult[]);
        const head = serialize(value);
        const tail = v[APPENDED] as Buffer | undefined;
        return tail ? Buffer.concat([head, tail]) : head;
      },
    };
  }
  return out as grpc.ServiceDefinition;
}
