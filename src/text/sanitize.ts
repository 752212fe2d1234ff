/**
 * Text a node or a file controls (error messages, archive entry names, hostnames, anything read back from a journal)
 * is made safe before it is shown, journalled or reported: a hostile node could otherwise repaint the operator's
 * terminal with escape sequences, hide a warning behind a carriage return or reorder a line with bidirectional
 * controls, or flood the screen with a message megabytes long.
 *
 * Removed: terminal escape sequences (CSI, OSC, DCS and the other ESC forms, whole), every other C0 and C1 control
 * character and DEL, bidirectional embedding/override/isolate controls, and lone UTF-16 surrogates. Line breaks and
 * tabs become one space (one sentence stays one line). The result is cut to `max` characters with an ellipsis.
 */

/** ESC-introduced sequences: CSI (ESC [ … final), OSC/DCS/SOS/PM/APC (… up to BEL or ESC \), and two-byte forms. */
// eslint-disable-next-line no-control-regex
const ESCAPES = /\u001b(?:\[[0-?]*[ -/]*[@-~]?|[\]PX^_][^\u0007\u001b]*(?:\u0007|\u001b\\)?|[ -/]*[0-~]?)/g;
/** C1 CSI / OSC introducers used as single characters (U+009B, U+009D …) with their parameters. */
// eslint-disable-next-line no-control-regex
const C1_SEQUENCES = /\u009b[0-?]*[ -/]*[@-~]?|[\u0090\u009d\u0098\u009e\u009f][^\u0007\u009c]*[\u0007\u009c]?/g;
const LINE_BREAKS = /[\t\n\v\f\r\u0085\u2028\u2029]+/g;
// eslint-disable-next-line no-control-regex
const CONTROLS = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
const LONE_SURROGATES = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

export const DEFAULT_MAX_CHARS = 500;

/** One safe line of at most `max` characters from text a node or a file controls. */
export function nodeText(value: unknown, max = DEFAULT_MAX_CHARS): string {
  const text = typeof value === 'string' ? value : value === undefined || value === null ? '' : String(value);
  const clean = text
    .replace(ESCAPES, '')
    .replace(C1_SEQUENCES, '')
    .replace(LINE_BREAKS, ' ')
    .replace(CONTROLS, '')
    .replace(LONE_SURROGATES, '\ufffd');
  if (clean.length <= max) return clean;
  // never cut between the two halves of a surrogate pair
  let end = Math.max(0, max - 1);
  const code = clean.charCodeAt(end - 1);
  if (code >= 0xd800 && code <= 0xdbff) end--;
  return `${clean.slice(0, end)}…`;
}

/** Every string inside a JSON-like value made safe with nodeText (objects and arrays walked, keys too). */
export function nodeTextDeep(value: unknown, max = DEFAULT_MAX_CHARS): unknown {
  if (typeof value === 'string') return nodeText(value, max);
  if (Array.isArray(value)) return value.map((v) => nodeTextDeep(v, max));
  if (value && typeof value === 'object' && !Buffer.isBuffer(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[nodeText(k, 200)] = nodeTextDeep(v, max);
    return out;
  }
  return value;
}
