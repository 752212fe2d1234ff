/**
 * A tiny protobuf writer for the few messages the simulator must embed as bytes (COSI `proto_spec`, event payloads
 * inside `google.protobuf.Any`): those are not request/response types of a service, so grpc-js has no serializer for
 * them. proto3 rules: zero values are omitted.
 */
function varint(value: bigint | number): Buffer {
  let v = BigInt.asUintN(64, BigInt(value));
  const out: number[] = [];
  while (v >= 0x80n) {
    out.push(Number((v & 0x7fn) | 0x80n));
    v >>= 7n;
  }
  out.push(Number(v));
  return Buffer.from(out);
}

export class ProtoWriter {
  private readonly parts: Buffer[] = [];

  uint(field: number, value: number | bigint): this {
    if (BigInt(value) !== 0n) this.parts.push(varint(field << 3), varint(value));
    return this;
  }

  bool(field: number, value: boolean): this {
    return this.uint(field, value ? 1 : 0);
  }

  bytes(field: number, value: Uint8Array): this {
    if (value.length > 0) this.parts.push(varint((field << 3) | 2), varint(value.length), Buffer.from(value));
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, Buffer.from(value, 'utf8'));
  }

  /** An embedded message, written even when empty (presence matters for messages). */
  message(field: number, value: Buffer): this {
    this.parts.push(varint((field << 3) | 2), varint(value.length), value);
    return this;
  }

  finish(): Buffer {
    return Buffer.concat(this.parts);
  }
}

/** seconds as a number (exact below 2^53): protobufjs encodes it much faster than a decimal string (ServiceList). */
export const timestamp = (ms: number): { seconds: number; nanos: number } => ({
  seconds: Math.floor(ms / 1000),
  nanos: (ms % 1000) * 1_000_000,
});
