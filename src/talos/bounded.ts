/**
 * Bounds on repeated fields of decoded answers (issue 18 item 13). A 32 MiB answer (apid's message limit) can hold
 * millions of 4-byte etcd members; decoded into objects with their defaults that costs gigabytes. Before protobufjs
 * sees an answer, its wire bytes are walked and each bounded repeated field keeps at most `limit` occurrences (the
 * first ones, or the last ones for histories where the newest matter); what was left out is counted per field so the
 * caller can say what was cut. Fields that are not bounded are copied as they are.
 *
 * Bytes that are not valid protobuf are returned unchanged: the decoder then fails on them as it would have, which
 * the client reports as an answer that could not be decoded (a protocol error, not a verdict about etcd).
 */

export interface FieldBound {
  /** how many occurrences to keep */
  limit: number;
  /** which to keep: the first ones (lists) or the last ones (event histories, oldest first on the wire) */
  keep?: 'first' | 'last';
  /** the name the cut is counted under, e.g. "members" */
  name: string;
  /** bounds inside each kept occurrence (a message) */
  nested?: MessageBounds;
}

/** Bounds of one message type, by field number. */
export type MessageBounds = Record<number, FieldBound>;

/** Occurrences left out, by field name. */
export type CutCounts = Record<string, number>;

class Malformed extends Error {}

function readVarint(bytes: Buffer, at: { offset: number }, end: number): number {
  let result = 0;
  let multiplier = 1;
  for (let i = 0; i < 10; i++) {
    if (at.offset >= end) throw new Malformed();
    const byte = bytes[at.offset++] as number;
    // lengths and tags fit in 53 bits; larger varints (uint64 values) are only skipped, not used
    if (multiplier < 2 ** 53) result += (byte & 0x7f) * multiplier;
    if ((byte & 0x80) === 0) return result;
    multiplier *= 128;
  }
  throw new Malformed();
}

function encodeVarint(value: number): Buffer {
  const out: number[] = [];
  let n = value;
  while (n >= 0x80) {
    out.push((n % 128) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Buffer.from(out);
}

/** The pieces of one message, with its bounded fields trimmed; counts what was cut into `cut`. */
function trimMessage(bytes: Buffer, start: number, end: number, bounds: MessageBounds, cut: CutCounts): Buffer[] {
  const pieces: Buffer[] = [];
  const kept = new Map<number, Buffer[][]>();
  const seen = new Map<number, number>();
  const at = { offset: start };
  while (at.offset < end) {
    const fieldStart = at.offset;
    const tag = readVarint(bytes, at, end);
    const field = Math.floor(tag / 8);
    const wireType = tag % 8;
    const tagEnd = at.offset;
    let valueStart = at.offset;
    switch (wireType) {
      case 0:
        readVarint(bytes, at, end);
        break;
      case 1:
        at.offset += 8;
        break;
      case 5:
        at.offset += 4;
        break;
      case 2: {
        const length = readVarint(bytes, at, end);
        valueStart = at.offset;
        at.offset += length;
        break;
      }
      default:
        throw new Malformed();
    }
    if (at.offset > end || field === 0) throw new Malformed();
    const bound = bounds[field];
    if (!bound) {
      pieces.push(bytes.subarray(fieldStart, at.offset));
      continue;
    }
    const count = (seen.get(field) ?? 0) + 1;
    seen.set(field, count);
    const list = kept.get(field) ?? [];
    kept.set(field, list);
    if ((bound.keep ?? 'first') === 'first' && count > bound.limit) {
      cut[bound.name] = (cut[bound.name] ?? 0) + 1;
      continue;
    }
    const occurrence =
      bound.nested && wireType === 2
        ? nestedPieces(bytes, { fieldStart, tagEnd, valueStart, valueEnd: at.offset }, bound.nested, cut)
        : [bytes.subarray(fieldStart, at.offset)];
    list.push(occurrence);
    if (list.length > bound.limit) {
      list.shift();
      cut[bound.name] = (cut[bound.name] ?? 0) + 1;
    }
  }
  // bounded fields go after the others, each in its own order: protobuf does not care where a field sits
  for (const list of kept.values()) for (const occurrence of list) pieces.push(...occurrence);
  return pieces;
}

/** A length-delimited field whose message has bounds of its own: re-encoded with its new length when trimmed. */
function nestedPieces(
  bytes: Buffer,
  field: { fieldStart: number; tagEnd: number; valueStart: number; valueEnd: number },
  bounds: MessageBounds,
  cut: CutCounts,
): Buffer[] {
  const total = () => Object.values(cut).reduce((a, b) => a + b, 0);
  const before = total();
  const inner = trimMessage(bytes, field.valueStart, field.valueEnd, bounds, cut);
  if (total() === before) return [bytes.subarray(field.fieldStart, field.valueEnd)];
  const length = inner.reduce((sum, piece) => sum + piece.length, 0);
  return [bytes.subarray(field.fieldStart, field.tagEnd), encodeVarint(length), ...inner];
}

/**
 * The answer's bytes with every bounded repeated field trimmed, and what was cut. Unchanged bytes (and no counts)
 * when nothing exceeded its bound or the bytes are not valid protobuf.
 */
export function trimRepeated(bytes: Buffer, bounds: MessageBounds): { bytes: Buffer; cut: CutCounts } {
  const cut: CutCounts = {};
  try {
    const pieces = trimMessage(bytes, 0, bytes.length, bounds, cut);
    if (Object.keys(cut).length === 0) return { bytes, cut };
    return { bytes: Buffer.concat(pieces), cut };
  } catch (error) {
    if (error instanceof Malformed) return { bytes, cut: {} };
    throw error;
  }
}

/** etcd runs a handful of members (Talos: one per control-plane node); anything past this is a damaged answer. */
export const MAX_MEMBERS = 1000;
/** Talos has a few dozen services. */
export const MAX_SERVICES = 256;
/** Talos keeps 64 events per service (siderolabs/talos: internal/app/machined/pkg/system/events/events.go@v1.12.0:18). */
export const MAX_SERVICE_EVENTS = 64;
/** errors and alarms of one EtcdStatus */
export const MAX_STATUS_ERRORS = 64;
/** answers in one response: one per node asked (the client asks one node per call) */
const MAX_ANSWERS = 256;
const MAX_URLS = 64;

/** EtcdMemberListResponse{messages=1: EtcdMembers{legacy_members=2, members=3: EtcdMember{peer_urls=4, client_urls=5}}} */
export const MEMBER_LIST_BOUNDS: MessageBounds = {
  1: {
    limit: MAX_ANSWERS,
    name: 'answers',
    nested: {
      2: { limit: MAX_MEMBERS, name: 'legacy members' },
      3: {
        limit: MAX_MEMBERS,
        name: 'members',
        nested: { 4: { limit: MAX_URLS, name: 'peer URLs' }, 5: { limit: MAX_URLS, name: 'client URLs' } },
      },
    },
  },
};

/** ServiceListResponse{messages=1: ServiceList{services=2: ServiceInfo{events=3: ServiceEvents{events=1}}}} */
export const SERVICE_LIST_BOUNDS: MessageBounds = {
  1: {
    limit: MAX_ANSWERS,
    name: 'answers',
    nested: {
      2: {
        limit: MAX_SERVICES,
        name: 'services',
        nested: {
          3: {
            limit: 1,
            keep: 'last',
            name: 'event lists',
            nested: { 1: { limit: MAX_SERVICE_EVENTS, keep: 'last', name: 'service events' } },
          },
        },
      },
    },
  },
};

/** EtcdStatusResponse{messages=1: EtcdStatus{member_status=2: EtcdMemberStatus{errors=8}}} */
export const STATUS_BOUNDS: MessageBounds = {
  1: {
    limit: MAX_ANSWERS,
    name: 'answers',
    nested: {
      2: {
        limit: 1,
        keep: 'last',
        name: 'statuses',
        nested: { 8: { limit: MAX_STATUS_ERRORS, name: 'status errors' } },
      },
    },
  },
};

/** "1,999,000 members and 3 peer URLs" */
export function describeCut(cut: CutCounts): string {
  return Object.entries(cut)
    .map(([name, count]) => `${count.toLocaleString('en-US')} ${name}`)
    .join(' and ');
}

const CUT = Symbol('cut');

/** Marks a decoded value with what its answer left out (kept off its enumerable fields, so it never reaches JSON). */
export function withCut<T extends object>(value: T, cut: CutCounts | undefined): T {
  if (cut && Object.keys(cut).length > 0) Object.defineProperty(value, CUT, { value: cut, enumerable: false });
  return value;
}

/** What the answer behind a decoded value (a member list, a service list, a status) left out, if anything. */
export function cutOf(value: unknown): CutCounts | undefined {
  return value !== null && typeof value === 'object' ? (value as { [CUT]?: CutCounts })[CUT] : undefined;
}

/** One sentence for a node whose answer was cut, or null when nothing was. */
export function cutNote(node: string, what: string, value: unknown): string | null {
  const cut = cutOf(value);
  if (!cut) return null;
  return `${node}'s ${what} was longer than any real cluster's, so ${describeCut(cut)} were left out; the answer is damaged or not from a Talos node, so do not trust it.`;
}
