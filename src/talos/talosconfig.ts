/**
 * Reading a talosconfig exactly as talosctl does (talos-api-facts §4.3): where it is looked up, the current or chosen
 * context, the -e/-n overrides, endpoint forms and the base64 PEM fields. Every way it can be wrong ends in one
 * UserError sentence that says what to do.
 *
 * Tunnels: when the endpoint is an SSH tunnel or port-forward (e.g. 127.0.0.1:50000) whose address is not in the
 * node certificate, set TALOS_DR_SERVER_NAME to a name or IP the certificate does carry (a real node address); the
 * certificate is then checked against that name instead of the endpoint's host.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { UserError } from '../errors.js';
import type { GlobalFlags } from '../commands/types.js';
import { normalizeKeyPem } from './pem.js';

export const DEFAULT_TALOS_PORT = 50000;
export const SERVER_NAME_ENV = 'TALOS_DR_SERVER_NAME';
const IN_CLUSTER_PATH = '/var/run/secrets/talos.dev/config';

export interface Endpoint {
  /** host name or IP, without brackets */
  host: string;
  port: number;
  /** "host:port", IPv6 in brackets: what the user sees and what grpc-js dials */
  address: string;
}

export interface TalosContextConfig {
  /** the file the configuration came from */
  path: string;
  contextName: string;
  endpoints: Endpoint[];
  /** default targets: -n, else the context's nodes (may be empty) */
  nodes: string[];
  caPem: string;
  certPem: string;
  /** PKCS#8 with the plain "PRIVATE KEY" label */
  keyPem: string;
  /** check the server certificate against this name instead of each endpoint's host (tunnels) */
  serverName?: string;
  /** the client certificate's expiry, so a refused handshake can be explained */
  clientCertNotAfter: Date;
}

interface RawContext {
  endpoints?: unknown;
  nodes?: unknown;
  ca?: unknown;
  crt?: unknown;
  key?: unknown;
}

const FIX_HINT = 'regenerate it (talosctl gen config, or talosctl config new) or pass another with --talosconfig';

/** Finds the talosconfig: --talosconfig, then TALOSCONFIG, then ~/.talos/config, then the in-cluster path. */
export function resolveTalosconfigPath(global: GlobalFlags, env: NodeJS.ProcessEnv): string {
  if (global.talosconfig) return mustExist(global.talosconfig, 'given with --talosconfig');
  if (env.TALOSCONFIG) return mustExist(env.TALOSCONFIG, 'named by TALOSCONFIG');
  const home = env.HOME || homedir();
  const userPath = join(home, '.talos', 'config');
  if (existsSync(userPath)) return userPath;
  if (existsSync(IN_CLUSTER_PATH)) return IN_CLUSTER_PATH;
  throw new UserError(
    `No talosconfig found at ${userPath}: pass one with --talosconfig FILE or set TALOSCONFIG (talosctl gen config writes one).`,
  );
}

function mustExist(path: string, how: string): string {
  if (!existsSync(path)) throw new UserError(`The talosconfig ${how} does not exist: ${path}; check the path.`);
  if (statSync(path).isDirectory()) {
    throw new UserError(`The talosconfig ${how} is a folder, not a file: ${path}; give the file inside it.`);
  }
  return path;
}

/** Loads the context the flags and environment select, with -e/-n applied. */
export function loadTalosconfig(global: GlobalFlags, env: NodeJS.ProcessEnv): TalosContextConfig {
  const path = resolveTalosconfigPath(global, env);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'unknown error';
    throw new UserError(`Cannot read the talosconfig ${path} (${code}); check its permissions.`);
  }
  return parseTalosconfig(text, path, global, env[SERVER_NAME_ENV]);
}

/** Parses talosconfig text; `path` is only used in the sentences. */
export function parseTalosconfig(
  text: string,
  path: string,
  global: GlobalFlags = {},
  serverName?: string,
): TalosContextConfig {
  const doc = parseDocument(text, path);
  const contexts = doc.contexts as Record<string, RawContext | null> | undefined;
  const names = contexts && typeof contexts === 'object' ? Object.keys(contexts) : [];
  const contextName = global.context || (typeof doc.context === 'string' ? doc.context : '');
  if (!contextName) {
    throw new UserError(
      `The talosconfig ${path} names no current context; choose one with --context (it has: ${listNames(names)}).`,
    );
  }
  const raw = contexts?.[contextName];
  if (!raw || typeof raw !== 'object') {
    const how = global.context ? 'given with --context' : 'set as current';
    throw new UserError(
      `The talosconfig ${path} has no context "${contextName}" (${how}); it has: ${listNames(names)}. Use --context to pick one.`,
    );
  }
  const where = `context "${contextName}" of ${path}`;
  const endpointTexts = global.endpoints?.length ? global.endpoints : stringList(raw.endpoints, 'endpoints', where);
  if (endpointTexts.length === 0) {
    throw new UserError(
      `The talosconfig ${where} has no endpoints: pass them with -e (e.g. -e 10.0.0.2) or add them with "talosctl config endpoint".`,
    );
  }
  const endpoints = endpointTexts.map((text) => parseEndpoint(text));
  const nodes = global.nodes?.length ? global.nodes : stringList(raw.nodes, 'nodes', where);
  const caPem = pemField(raw.ca, 'ca', where, 'CERTIFICATE');
  const certPem = pemField(raw.crt, 'crt', where, 'CERTIFICATE');
  const keyPem = normalizeKeyPem(pemField(raw.key, 'key', where, 'PRIVATE KEY'));
  checkCertificate(caPem, 'ca', where);
  const clientCert = checkCertificate(certPem, 'crt', where);
  checkKeyMatches(clientCert, keyPem, where);
  const trimmedServerName = serverName?.trim();
  return {
    path,
    contextName,
    endpoints,
    nodes,
    caPem,
    certPem,
    keyPem,
    ...(trimmedServerName ? { serverName: trimmedServerName } : {}),
    clientCertNotAfter: new Date(clientCert.validTo),
  };
}

function parseDocument(text: string, path: string): Record<string, unknown> {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (error) {
    const detail = (error as Error).message.split('\n')[0];
    throw new UserError(`The talosconfig ${path} is not valid YAML (${detail}); ${FIX_HINT}.`);
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) {
    throw new UserError(`The talosconfig ${path} does not look like a talosconfig (no contexts); ${FIX_HINT}.`);
  }
  return doc as Record<string, unknown>;
}

const listNames = (names: string[]): string => (names.length ? names.map((n) => `"${n}"`).join(', ') : 'none');

function stringList(value: unknown, field: string, where: string): string[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value) || value.some((item) => typeof item !== 'string')) {
    throw new UserError(`The talosconfig ${where} has "${field}" that is not a list of addresses; ${FIX_HINT}.`);
  }
  return (value as string[]).map((item) => item.trim()).filter((item) => item.length > 0);
}

const STRICT_BASE64 = /^[A-Za-z0-9+/\s]*={0,2}\s*$/;

/** A talosconfig PEM field: standard base64 of the PEM text. */
function pemField(value: unknown, field: string, where: string, label: string): string {
  if (typeof value !== 'string' || value.trim() === '') {
    throw new UserError(`The talosconfig ${where} has no "${field}"; ${FIX_HINT}.`);
  }
  if (!STRICT_BASE64.test(value)) {
    throw new UserError(`The talosconfig ${where} has a "${field}" that is not base64; ${FIX_HINT}.`);
  }
  const pem = Buffer.from(value, 'base64').toString('utf8');
  if (!new RegExp(`-----BEGIN [A-Z0-9 ]*${label}-----`).test(pem)) {
    throw new UserError(
      `The talosconfig ${where} has a "${field}" that is not a PEM ${label.toLowerCase()}; ${FIX_HINT}.`,
    );
  }
  return pem;
}

function checkCertificate(pem: string, field: string, where: string): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch {
    throw new UserError(`The talosconfig ${where} has a "${field}" certificate that cannot be read; ${FIX_HINT}.`);
  }
}

function checkKeyMatches(cert: X509Certificate, keyPem: string, where: string): void {
  let matches: boolean;
  try {
    matches = cert.checkPrivateKey(createPrivateKey(keyPem));
  } catch {
    throw new UserError(`The talosconfig ${where} has a "key" that is not a readable private key; ${FIX_HINT}.`);
  }
  if (!matches) {
    throw new UserError(`The talosconfig ${where} has a "key" that does not belong to its "crt"; ${FIX_HINT}.`);
  }
}

/**
 * Endpoint forms talosctl accepts: `host` (port 50000), `host:port`, `https://host` (port 443), `https://host:port`,
 * IPv6 as `[::1]`, `[::1]:port` or a bare `::1`.
 */
export function parseEndpoint(text: string): Endpoint {
  const value = text.trim();
  const bad = (why: string) =>
    new UserError(`The endpoint "${text}" is not usable (${why}); write it as host, host:port or https://host:port.`);
  if (value === '') throw bad('it is empty');
  if (value.includes('://')) return parseUrlEndpoint(value, bad);
  if (value.startsWith('[')) {
    const match = /^\[([^\]]+)\](?::(\d+))?$/.exec(value);
    if (!match || isIP(match[1] ?? '') !== 6) throw bad('the IPv6 address in brackets is not valid');
    return endpoint(match[1] ?? '', match[2] === undefined ? DEFAULT_TALOS_PORT : parsePort(match[2], bad));
  }
  if (isIP(value) === 6) return endpoint(value, DEFAULT_TALOS_PORT);
  const parts = value.split(':');
  if (parts.length > 2) throw bad('an IPv6 address needs brackets when it has a port');
  const [host = '', port] = parts;
  if (!/^[A-Za-z0-9._-]+$/.test(host)) throw bad('the host name has characters a host cannot have');
  return endpoint(host, port === undefined ? DEFAULT_TALOS_PORT : parsePort(port, bad));
}

function parseUrlEndpoint(value: string, bad: (why: string) => UserError): Endpoint {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw bad('it is not a valid URL');
  }
  if (url.protocol !== 'https:') throw bad(`the scheme ${url.protocol.replace(':', '')} is not supported, use https`);
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (!host) throw bad('it has no host');
  return endpoint(host, url.port ? parsePort(url.port, bad) : 443);
}

function parsePort(text: string, bad: (why: string) => UserError): number {
  const port = /^\d{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(port >= 1 && port <= 65535)) throw bad(`the port "${text}" is not a number from 1 to 65535`);
  return port;
}

function endpoint(host: string, port: number): Endpoint {
  const address = isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
  return { host, port, address };
}
