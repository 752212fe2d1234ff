/**
 * Protobuf's wire format by hand, for the few messages that are not a service's request or answer and so have no
 * grpc-js (de)serializer: COSI `proto_spec` bytes the client reads a field or two from, and the messages the simulator
 * and the snapshot writer embed as bytes (COSI specs, event payloads inside `google.protobuf.Any`, etcd's
 * mvccpb.KeyValue). proto3 rules: scalar zero values are not written. (src/talos/bounded.ts and src/etcd/status.ts walk
 * the same format with bounds and speed of their own.)
 */

function encodeVarint(value: bigint | number): Buffer {
  let v = BigInt.asUintN(64, BigInt(value));
  const out: number[] = [];
  while (v >= 0x80n) {
    out.push(Number((v & 0x7fn) | 0x80n));
    v >>= 7n;
  }
  out.push(Number(v));
  return Buffer.from(out);
}

/** Builds one message field by field, in the order written. */
export class ProtoWriter {
  private readonly parts: Buffer[] = [];

  uint(field: number, value: number | bigint): this {
    if (value !== 0 && value !== 0n) this.parts.push(encodeVarint(field << 3), encodeVarint(value));
    return this;
  }

  bool(field: number, value: boolean): this {
    return this.uint(field, value ? 1 : 0);
  }

  bytes(field: number, value: Uint8Array): this {
    if (value.length > 0)
      this.parts.push(encodeVarint((field << 3) | 2), encodeVarint(value.length), Buffer.from(value));
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, Buffer.from(value, 'utf8'));
  }

  /** An embedded message, written even when empty (presence matters for messages). */
  message(field: number, value: Buffer): this {
    this.parts.push(encodeVarint((field << 3) | 2), encodeVarint(value.length), value);
    return this;
  }

  finish(): Buffer {
    return Buffer.concat(this.parts);
  }
}

/** One top-level field as it stands on the wire: a varint's value, or a length-delimited field's bytes. */
type WireField = { number: number; varint: bigint } | { number: number; bytes: Buffer };

/**
 * The top-level fields of a message in wire order. Stops quietly at the first thing that is not valid protobuf (a
 * truncated varint, a length past the end, a group): what came before it is still read.
 */
function* fieldsOf(bytes: Buffer): Generator<WireField> {
  let offset = 0;
  const readVarint = (): bigint | null => {
    let result = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      const byte = bytes[offset++];
      if (byte === undefined) return null;
      result |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) return result;
    }
    return null;
  };
  while (offset < bytes.length) {
    const key = readVarint();
    if (key === null) return;
    const number = Number(key >> 3n);
    const wireType = Number(key & 7n);
    if (wireType === 0) {
      const varint = readVarint();
      if (varint === null) return;
      yield { number, varint };
    } else if (wireType === 2) {
      const length = readVarint();
      if (length === null || offset + Number(length) > bytes.length) return;
      yield { number, bytes: bytes.subarray(offset, offset + Number(length)) };
      offset += Number(length);
    } else if (wireType === 1) offset += 8;
    else if (wireType === 5) offset += 4;
    else return;
  }
}

/** Every top-level length-delimited field `field` (a repeated field's values, in order) from protobuf bytes. */
export function lengthFields(bytes: Buffer | null | undefined, field: number): Buffer[] {
  if (!bytes) return [];
  const found: Buffer[] = [];
  for (const f of fieldsOf(bytes)) if (f.number === field && 'bytes' in f) found.push(f.bytes);
  return found;
}

/** One top-level length-delimited field (the last one seen, as protobuf merges) from protobuf bytes, or undefined. */
export function lengthField(bytes: Buffer | null | undefined, field: number): Buffer | undefined {
  return lengthFields(bytes, field).at(-1);
}

/** One top-level varint field (the last one seen) from protobuf bytes, or undefined. */
export function varintField(bytes: Buffer | null | undefined, field: number): bigint | undefined {
  if (!bytes) return undefined;
  let found: bigint | undefined;
  for (const f of fieldsOf(bytes)) if (f.number === field && 'varint' in f) found = f.varint;
  return found;
}
