/**
 * Editing a Talos machine configuration without disturbing it (issue 12 item 5). Since Talos 1.12 `gen config` writes
 * several YAML documents — the v1alpha1 document, then HostnameConfig and any VolumeConfig, ExtensionServiceConfig, …
 * documents — separated by `---` (siderolabs/talos: pkg/machinery/config/generate/init.go@v1.12.0:235-241,
 * pkg/machinery/config/container/container.go@v1.12.0:505). An edit changes one value of the v1alpha1 document in
 * place and keeps every other byte of the text, the other documents, comments and key order included.
 *
 * Which document is the v1alpha1 one is decided as Talos's decoder does: no `kind`, and `version: v1alpha1` or one of
 * the top-level keys machine, cluster, debug, persist (configloader/internal/decoder/decoder.go@v1.12.0:127-165).
 *
 * Pure: text in, text out; every refusal is a MachineConfigError with one sentence.
 */
import { isMap, isScalar, parseAllDocuments, type Document, type Scalar, type YAMLMap } from 'yaml';

/** A configuration that cannot be edited safely; `message` is the sentence for the user. */
export class MachineConfigError extends Error {
  constructor(sentence: string) {
    super(sentence);
    this.name = 'MachineConfigError';
  }
}

/** One YAML document of a machine configuration: its kind (`v1alpha1` for the main one) and where it sits. */
export interface ConfigDocumentInfo {
  /** `v1alpha1` for the legacy main document, else the document's `kind` (e.g. "HostnameConfig"); "" if none */
  kind: string;
  /** character offsets of the document's contents in the text */
  start: number;
  end: number;
}

/** "The machine configuration of 10.5.0.2" (`what` = "of 10.5.0.2"), or without the node. */
const label = (what: string): string => `The machine configuration${what ? ` ${what}` : ''}`;

const V1ALPHA1_KEYS = new Set(['machine', 'cluster', 'debug', 'persist']);

function parseDocuments(text: string, what: string): Document.Parsed[] {
  const documents = parseAllDocuments(text, { keepSourceTokens: false });
  if (!Array.isArray(documents)) {
    throw new MachineConfigError(`${label(what)} is empty; there is nothing to edit.`);
  }
  for (const document of documents) {
    const error = document.errors[0];
    if (error) {
      const detail = error.message.split('\n')[0] ?? 'not valid YAML';
      throw new MachineConfigError(
        `${label(what)} is not valid YAML (${detail}); check the file or read it again from the node.`,
      );
    }
  }
  return documents;
}

function kindOf(document: Document.Parsed): string {
  const contents = document.contents;
  if (!isMap(contents)) return '';
  const kind: unknown = contents.get('kind');
  if (typeof kind === 'string' && kind) return kind;
  const version: unknown = contents.get('version');
  if (version === 'v1alpha1') return 'v1alpha1';
  const keys = contents.items.map((pair) => (isScalar(pair.key) ? String(pair.key.value) : ''));
  return keys.some((key) => V1ALPHA1_KEYS.has(key)) ? 'v1alpha1' : '';
}

/** The documents of a machine configuration, in order. */
export function configDocuments(text: string, what = ''): ConfigDocumentInfo[] {
  return parseDocuments(text, what).map((document) => {
    const range = document.contents?.range ?? document.range;
    return { kind: kindOf(document), start: range[0], end: range[1] };
  });
}

function v1alpha1Of(text: string, what: string): Document.Parsed {
  const main = parseDocuments(text, what).filter((document) => kindOf(document) === 'v1alpha1');
  if (main.length === 0) {
    throw new MachineConfigError(
      `${label(what)} has no v1alpha1 document (the one with machine: and cluster:); check that it is a Talos machine configuration.`,
    );
  }
  if (main.length > 1) {
    throw new MachineConfigError(
      `${label(what)} has ${main.length} v1alpha1 documents where Talos accepts one; fix it before applying it.`,
    );
  }
  return main[0] as Document.Parsed;
}

/** A scalar as it is written in place: plain when that reads back as the same string, else double-quoted. */
function scalarText(value: string): string {
  return /^[A-Za-z][A-Za-z0-9._/-]*$/.test(value) && !/^(true|false|null|yes|no|on|off|~)$/i.test(value)
    ? value
    : JSON.stringify(value);
}

/**
 * Sets `path` (e.g. ["machine", "type"]) of the v1alpha1 document to a string value, rewriting only that value's
 * characters; when the key is missing it is added as the first key of its block map. Everything else — the other
 * documents, comments, order, indentation — stays byte-for-byte.
 */
export function setV1alpha1Value(text: string, path: string[], value: string, what = ''): string {
  const document = v1alpha1Of(text, what);
  const where = path.join('.');
  const node = document.getIn(path, true);
  if (node !== undefined) {
    if (!isScalar(node) || !node.range) {
      throw new MachineConfigError(
        `${label(what)} has ${where} that is not a single value; fix it before converting the node.`,
      );
    }
    const [start, end] = (node as Scalar).range as [number, number, number];
    return `${text.slice(0, start)}${scalarText(value)}${text.slice(end)}`;
  }
  const parentPath = path.slice(0, -1);
  const key = path[path.length - 1] as string;
  const parent = parentPath.length ? document.getIn(parentPath, true) : document.contents;
  if (!isMap(parent) || (parent as YAMLMap).flow || !parent.range || parent.items.length === 0) {
    throw new MachineConfigError(
      `${label(what)} has no ${parentPath.join('.') || 'top level'} section to put ${where} in; add it by hand (talosctl edit mc) and retry.`,
    );
  }
  const start = parent.range[0];
  const lineStart = text.lastIndexOf('\n', start - 1) + 1;
  const indent = text.slice(lineStart, start);
  if (!/^ *$/.test(indent)) {
    throw new MachineConfigError(
      `${label(what)} writes ${parentPath.join('.')} in a form this tool does not edit; set ${where} by hand (talosctl edit mc) and retry.`,
    );
  }
  return `${text.slice(0, start)}${key}: ${scalarText(value)}\n${indent}${text.slice(start)}`;
}

/** The machine type the v1alpha1 document names (`machine.type`), or "" when it names none. */
export function machineTypeOf(text: string, what = ''): string {
  const value = v1alpha1Of(text, what).getIn(['machine', 'type']);
  return typeof value === 'string' ? value : '';
}

/** The recovery's init → controlplane conversion: `machine.type` becomes controlplane, nothing else changes. */
export function withControlPlaneType(text: string, what = ''): string {
  return setV1alpha1Value(text, ['machine', 'type'], 'controlplane', what);
}
