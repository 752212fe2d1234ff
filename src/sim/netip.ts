/**
 * Go's netip.ParseAddr and Addr.String, as the Talos code that takes node addresses runs them: talosctl health and
 * machined's HealthCheck turn every node the caller names into an address with netip.ParseAddr
 * (talos: pkg/cluster/cluster.go@v1.14.1:69-96 IPsToNodeInfos/IPToNodeInfo) and print it back with String
 * (v1alpha1_cluster.go@v1.14.1:71-79 "discovered nodes: %q"). The error texts and the canonical forms reproduced here
 * are Go's (go1.26 src/net/netip/netip.go:114-128 ParseAddr, :140-152 parseAddrError.Error, :154-190 the IPv4 fields,
 * :203-343 parseIPv6, :784-796 String, :909-939 the IPv6 text with the longest run of zero groups shortened).
 */

export type ParsedAddr = { ok: true; text: string } | { ok: false; error: string };

/** strconv.Quote for the strings a flag can carry: Go escapes, printable characters kept. */
export function goQuote(s: string): string {
  const named: Record<string, string> = {
    '\x07': '\\a',
    '\b': '\\b',
    '\f': '\\f',
    '\n': '\\n',
    '\r': '\\r',
    '\t': '\\t',
    '\v': '\\v',
    '"': '\\"',
    '\\': '\\\\',
  };
  let out = '"';
  for (const ch of s) {
    const code = ch.codePointAt(0)!;
    if (named[ch] !== undefined) out += named[ch];
    else if (code < 0x20 || code === 0x7f) out += `\\x${code.toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return `${out}"`;
}

class AddrError extends Error {
  constructor(input: string, why: string, at?: string) {
    super(`ParseAddr(${goQuote(input)}): ${why}${at ? ` (at ${goQuote(at)})` : ''}`);
  }
}

const isDigit = (c: string | undefined): boolean => c !== undefined && c >= '0' && c <= '9';

/** Four dotted decimal fields of `part` (a piece of `input`, which the errors name). */
function ipv4Fields(input: string, part: string): number[] {
  const fields: number[] = [];
  let value = 0;
  let digits = 0;
  for (let i = 0; i < part.length; i++) {
    const c = part[i]!;
    if (isDigit(c)) {
      if (digits === 1 && value === 0) throw new AddrError(input, 'IPv4 field has octet with leading zero');
      value = value * 10 + Number(c);
      digits++;
      if (value > 255) throw new AddrError(input, 'IPv4 field has value >255');
    } else if (c === '.') {
      if (i === 0 || i === part.length - 1 || part[i - 1] === '.') {
        throw new AddrError(input, 'IPv4 field must have at least one digit', part.slice(i));
      }
      if (fields.length === 3) throw new AddrError(input, 'IPv4 address too long');
      fields.push(value);
      value = 0;
      digits = 0;
    } else {
      throw new AddrError(input, 'unexpected character', part.slice(i));
    }
  }
  if (fields.length < 3) throw new AddrError(input, 'IPv4 address too short');
  return [...fields, value];
}

const HEX = /^[0-9a-fA-F]$/;

/** Sixteen bytes and the zone of an IPv6 text. */
function ipv6(input: string): { bytes: number[]; zone: string } {
  let rest = input;
  let zone = '';
  const percent = rest.indexOf('%');
  if (percent !== -1) {
    zone = rest.slice(percent + 1);
    rest = rest.slice(0, percent);
    if (zone === '') throw new AddrError(input, 'zone must be a non-empty string');
  }
  const bytes: number[] = [];
  let ellipsis = -1;
  if (rest.startsWith('::')) {
    ellipsis = 0;
    rest = rest.slice(2);
    if (rest === '') return { bytes: new Array<number>(16).fill(0), zone };
  }
  while (bytes.length < 16) {
    let n = 0;
    let value = 0;
    while (n < rest.length && HEX.test(rest[n]!)) {
      value = value * 16 + parseInt(rest[n]!, 16);
      if (n > 3) throw new AddrError(input, 'each group must have 4 or less digits', rest);
      if (value > 0xffff) throw new AddrError(input, 'IPv6 field has value >=2^16', rest);
      n++;
    }
    if (n === 0) throw new AddrError(input, 'each colon-separated field must have at least one digit', rest);
    if (rest[n] === '.') {
      // a dotted IPv4 tail: only in the last four bytes (or after a ::)
      if (ellipsis < 0 && bytes.length !== 12) {
        throw new AddrError(input, 'embedded IPv4 address must replace the final 2 fields of the address', rest);
      }
      if (bytes.length + 4 > 16) {
        throw new AddrError(input, 'too many hex fields to fit an embedded IPv4 at the end of the address', rest);
      }
      bytes.push(...ipv4Fields(input, rest));
      rest = '';
      break;
    }
    bytes.push(value >> 8, value & 0xff);
    rest = rest.slice(n);
    if (rest === '') break;
    if (rest[0] !== ':') throw new AddrError(input, 'unexpected character, want colon', rest);
    if (rest.length === 1) throw new AddrError(input, 'colon must be followed by more characters', rest);
    rest = rest.slice(1);
    if (rest[0] === ':') {
      if (ellipsis >= 0) throw new AddrError(input, 'multiple :: in address', rest);
      ellipsis = bytes.length;
      rest = rest.slice(1);
      if (rest === '') break;
    }
  }
  if (rest !== '') throw new AddrError(input, 'trailing garbage after address', rest);
  if (bytes.length < 16) {
    if (ellipsis < 0) throw new AddrError(input, 'address string too short');
    const zeros = new Array<number>(16 - bytes.length).fill(0);
    bytes.splice(ellipsis, 0, ...zeros);
  } else if (ellipsis >= 0) {
    throw new AddrError(input, 'the :: must expand to at least one field of zeros');
  }
  return { bytes, zone };
}

/** Addr.String of an IPv6 address: IPv4-mapped as ::ffff:a.b.c.d, else the longest zero run (two groups or more,
 * the first of equals) as ::, groups in lower-case hex without leading zeros; the zone after %. */
function ipv6Text(bytes: number[], zone: string): string {
  const suffix = zone === '' ? '' : `%${zone}`;
  if (bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff) {
    return `::ffff:${bytes.slice(12).join('.')}${suffix}`;
  }
  const groups = Array.from({ length: 8 }, (_, i) => (bytes[2 * i]! << 8) | bytes[2 * i + 1]!);
  let start = -1;
  let end = -1;
  for (let i = 0; i < 8; i++) {
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i >= 2 && j - i > end - start) [start, end] = [i, j];
  }
  const hex = (from: number, to: number): string =>
    groups
      .slice(from, to)
      .map((g) => g.toString(16))
      .join(':');
  if (start < 0) return hex(0, 8) + suffix;
  return `${hex(0, start)}::${hex(end, 8)}${suffix}`;
}

/** netip.ParseAddr(s) then String(): the canonical text, or Go's error text. */
export function parseAddr(s: string): ParsedAddr {
  try {
    for (const c of s) {
      if (c === '.') return { ok: true, text: ipv4Fields(s, s).join('.') };
      if (c === ':') {
        const { bytes, zone } = ipv6(s);
        return { ok: true, text: ipv6Text(bytes, zone) };
      }
      if (c === '%') throw new AddrError(s, 'missing IPv6 address');
    }
    throw new AddrError(s, 'unable to parse IP');
  } catch (error) {
    if (error instanceof AddrError) return { ok: false, error: error.message };
    throw error;
  }
}
