/**
 * The hand-written protobuf wire code (src/talos/proto-wire.ts) judged by protobufjs, the encoder grpc-js's loader
 * uses: what ProtoWriter writes protobufjs decodes to the same values, and what protobufjs writes the readers find.
 */
import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { lengthField, lengthFields, ProtoWriter, varintField } from '../../src/talos/proto-wire.js';

// A message with every wire type the readers must read or step over.
const Probe = protobuf.Root.fromJSON({
  nested: {
    Probe: {
      fields: {
        name: { type: 'string', id: 1 },
        addresses: { rule: 'repeated', type: 'bytes', id: 2 },
        fixed: { type: 'fixed64', id: 3 },
        kind: { type: 'uint64', id: 4 },
        small: { type: 'fixed32', id: 5 },
        flag: { type: 'bool', id: 6 },
      },
    },
  },
}).lookupType('Probe');

const addresses = [Buffer.from([10, 5, 0, 2]), Buffer.from('fd00000000000000000000000000000a', 'hex')];

describe('proto-wire', () => {
  it('reads the fields protobufjs wrote, stepping over fixed64 and fixed32 ones', () => {
    const bytes = Buffer.from(
      Probe.encode(
        Probe.fromObject({ name: 'cp-1', addresses, fixed: '18446744073709551615', kind: '1099511627776', small: 7 }),
      ).finish(),
    );
    expect(lengthField(bytes, 1)?.toString()).toBe('cp-1');
    expect(lengthFields(bytes, 2)).toEqual(addresses);
    expect(varintField(bytes, 4)).toBe(1099511627776n);
    expect(varintField(bytes, 6)).toBeUndefined();
  });

  it('writes what protobufjs decodes, leaving out zero values as proto3 does', () => {
    const bytes = new ProtoWriter()
      .string(1, 'cp-2')
      .bytes(2, addresses[0]!)
      .bytes(2, addresses[1]!)
      .uint(4, 2n ** 63n)
      .bool(6, true)
      .uint(5, 0)
      .finish();
    const decoded = Probe.toObject(Probe.decode(bytes), { longs: String });
    expect(decoded).toEqual({ name: 'cp-2', addresses, kind: '9223372036854775808', flag: true });
    expect(new ProtoWriter().uint(4, 0).uint(4, 0n).bool(6, false).string(1, '').finish().length).toBe(0);
  });

  it('keeps what came before a message is cut short, and finds nothing in bytes that are not protobuf', () => {
    const whole = new ProtoWriter().string(1, 'cp-3').uint(4, 300).string(1, 'cp-4').finish();
    const cut = whole.subarray(0, whole.length - 2);
    expect(lengthField(cut, 1)?.toString()).toBe('cp-3');
    expect(varintField(cut, 4)).toBe(300n);
    expect(lengthFields(Buffer.from([0x0a, 0xff]), 1)).toEqual([]);
    expect(varintField(null, 4)).toBeUndefined();
  });
});
