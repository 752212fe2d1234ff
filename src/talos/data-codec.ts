/**
 * A hand decoder for `common.Data` (metadata = 1, bytes = 2; talos-api-facts §2), the message of the snapshot and
 * copy streams. A node sends those in 1 KiB messages, so a 1 GiB snapshot is a million of them: decoding each into
 * a full JS object through protobufjs made the client CPU-bound, slower than talosctl. This keeps the payload as a
 * view of the received buffer (no copy) and decodes only the few metadata fields we read.
 */

export interface DataMessage {
  bytes: Buffer;
  hostname: string;
  /** metadata.error, '' when none */
  error: string;
  /** metadata.status, when set */
  status: { code: number; message: string } | null;
}

class Reader {
  offset = 0;
  constructor(readonly buf: Buffer) {}

  get done(): boolean {
    return this.offset >= this.buf.length;
  }

  varint(): number {
    let result = 0;
    let multiplier = 1;
    for (;;) {
      const byte = this.buf[this.offset++];
      if (byte === undefined) throw new RangeError('truncated message');
      result += (byte & 0x7f) * multiplier;
      if ((byte & 0x80) === 0) return result;
      multiplier *= 128;
    }
  }

  /** a length-delimited field as a view of the buffer */
  slice(): Buffer {
    const length = this.varint();
    const end = this.offset + length;
    if (end > this.buf.length) throw new RangeError('truncated message');
    const view = this.buf.subarray(this.offset, end);
    this.offset = end;
    return view;
  }

  skip(wireType: number): void {
    if (wireType === 0) this.varint();
    else if (wireType === 1) this.offset += 8;
    else if (wireType === 2) this.slice();
    else if (wireType === 5) this.offset += 4;
    else throw new RangeError(`unsupported wire type ${wireType}`);
  }
}

function decodeStatus(buf: Buffer): { code: number; message: string } {
  const reader = new Reader(buf);
  let code = 0;
  let message = '';
  while (!reader.done) {
    const key = reader.varint();
    const field = key >>> 3;
    const wireType = key & 7;
    // int32 code: a negative value arrives as a 10-byte varint; gRPC codes are never negative.
    if (field === 1 && wireType === 0) code = reader.varint();
    else if (field === 2 && wireType === 2) message = reader.slice().toString('utf8');
    else reader.skip(wireType);
  }
  return { code, message };
}

function decodeMetadata(buf: Buffer, into: DataMessage): void {
  const reader = new Reader(buf);
  while (!reader.done) {
    const key = reader.varint();
    const field = key >>> 3;
    const wireType = key & 7;
    if (field === 1 && wireType === 2) into.hostname = reader.slice().toString('utf8');
    else if (field === 2 && wireType === 2) into.error = reader.slice().toString('utf8');
    else if (field === 3 && wireType === 2) into.status = decodeStatus(reader.slice());
    else reader.skip(wireType);
  }
}

const EMPTY = Buffer.alloc(0);

export function decodeData(buf: Buffer): DataMessage {
  const message: DataMessage = { bytes: EMPTY, hostname: '', error: '', status: null };
  const reader = new Reader(buf);
  while (!reader.done) {
    const key = reader.varint();
    const field = key >>> 3;
    const wireType = key & 7;
    if (field === 1 && wireType === 2) decodeMetadata(reader.slice(), message);
    else if (field === 2 && wireType === 2) message.bytes = reader.slice();
    else reader.skip(wireType);
  }
  return message;
}

/** Where scanData found things: offsets into the scanned buffer (-1 when absent). Reused: read it right away. */
export interface DataScan {
  payloadStart: number;
  payloadEnd: number;
  /** true when metadata carries an error or a status, i.e. the message is a failure: decode it with decodeData */
  failed: boolean;
}

const scan: DataScan = { payloadStart: -1, payloadEnd: -1, failed: false };

function varintAt(buf: Buffer, at: { offset: number }): number {
  let result = 0;
  let multiplier = 1;
  for (;;) {
    const byte = buf[at.offset++];
    if (byte === undefined) throw new RangeError('truncated message');
    result += (byte & 0x7f) * multiplier;
    if ((byte & 0x80) === 0) return result;
    multiplier *= 128;
  }
}

/**
 * The hot path of a data stream: finds the payload of the common.Data message in buf[start, end) without
 * allocating, and whether its metadata reports a failure (metadata fields error = 2 or status = 3 present).
 * Fields may come in any order and more than once: apid appends the node's metadata{hostname} after machined's data
 * (siderolabs/talos internal/app/apid/pkg/backend/apid.go@v1.11.6:180-181), so a message can carry metadata twice.
 */
export function scanData(buf: Buffer, start: number, end: number): DataScan {
  scan.payloadStart = -1;
  scan.payloadEnd = -1;
  scan.failed = false;
  const at = { offset: start };
  while (at.offset < end) {
    const key = varintAt(buf, at);
    const field = key >>> 3;
    const wireType = key & 7;
    if (wireType !== 2) return failedScan();
    const length = varintAt(buf, at);
    const fieldEnd = at.offset + length;
    if (fieldEnd > end) throw new RangeError('truncated message');
    if (field === 2) {
      scan.payloadStart = at.offset;
      scan.payloadEnd = fieldEnd;
    } else if (field === 1 && metadataReportsFailure(buf, at.offset, fieldEnd)) {
      scan.failed = true;
    }
    at.offset = fieldEnd;
  }
  return scan;
}

/** Anything unusual sends the message to the full decoder, which knows the rest of the wire format. */
function failedScan(): DataScan {
  scan.failed = true;
  return scan;
}

function metadataReportsFailure(buf: Buffer, start: number, end: number): boolean {
  const at = { offset: start };
  while (at.offset < end) {
    const key = varintAt(buf, at);
    const field = key >>> 3;
    if ((key & 7) !== 2) return true;
    if (field === 2 || field === 3) return true;
    // Read the length before moving: `at.offset += varintAt(buf, at)` would add it to the offset from before the
    // length's own bytes, land inside the hostname and misread it (real apid puts this metadata after the data, so
    // that walk ran past the message: "truncated message" for nodes named like 10.5.0.2).
    const length = varintAt(buf, at);
    at.offset += length;
    if (at.offset > end) throw new RangeError('truncated message');
  }
  return false;
}
