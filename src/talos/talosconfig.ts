/**
 * Reading a talosconfig exactly as talosctl does (talos-api-facts §4.3, behaviour-facts §7): where it is looked up,
 * the current or chosen context, the -e/-n overrides, endpoint forms and the base64 PEM fields. Every way it can be
 * wrong ends in one UserError sentence that says what to do.
 *
 * What talosctl accepts and we accept the same way (siderolabs/talos at v1.12.0):
 * - lookup: $TALOSCONFIG only when that file exists, then $TALOS_HOME/config (an absolute TALOS_HOME, 1.12+), else
 *   ~/.talos/config, then /var/run/secrets/talos.dev/config — the first that exists
 *   (siderolabs/talos: pkg/machinery/client/config/path.go@v1.12.0:25,46,60,98);
 * - the deprecated `target` is appended to the endpoints (config.go@v1.12.0:81-83);
 * - no `ca`: the node's certificate is checked against the system's roots (connection.go@v1.12.0:138,186);
 * - no `crt` and no `key`: no client certificate is sent (connection.go@v1.12.0:200);
 * - `auth.siderov1` (config.go@v1.12.0:66): Omni signs requests with the user's key and its machines refuse plain
 *   recovery calls (omni#1302), so such a context gets one sentence naming Omni's own restore instead.
 *
 * Tunnels: when the endpoint is an SSH tunnel or port-forward (e.g. 127.0.0.1:50000) whose address is not in the
 * node certificate, set TALOS_DR_SERVER_NAME to a name or IP the certificate does carry (a real node address); the
 * certificate is then checked against that name instead of the endpoint's host.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { isIP } from 'node:net';
import { isAbsolute, join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { UserError } from '../errors.js';
import type { GlobalFlags } from './global-flags.js';
import { OMNI_RESTORE_DOC } from './errors.js';
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
  /** absent: the context has no `ca`, the server certificate is checked against the system's roots */
  caPem?: string;
  /** absent (with keyPem): the context has no client certificate */
  certPem?: string;
  /** PKCS#8 with the plain "PRIVATE KEY" label */
  keyPem?: string;
  /** check the server certificate against this name instead of each endpoint's host (tunnels) */
  serverName?: string;
  /** the client certificate's expiry, so a refused handshake can be explained (absent without a certificate) */
  clientCertNotAfter?: Date;
  /** when the client certificate becomes valid (a refusal before then is a clock problem) */
  clientCertNotBefore?: Date;
}

interface RawContext {
  endpoints?: unknown;
  /** deprecated single endpoint, appended to `endpoints` as talosctl does */
  target?: unknown;
  nodes?: unknown;
  ca?: unknown;
  crt?: unknown;
  key?: unknown;
  auth?: unknown;
  cluster?: unknown;
}

const FIX_HINT = 'regenerate it (talosctl gen config, or talosctl config new) or pass another with --talosconfig';

/**
 * Finds the talosconfig as talosctl does: --talosconfig, else the first that exists of $TALOSCONFIG,
 * $TALOS_HOME/config (absolute TALOS_HOME only) or ~/.talos/config, and the in-cluster path.
 */
export function resolveTalosconfigPath(global: GlobalFlags, env: NodeJS.ProcessEnv): string {
  if (global.talosconfig) return mustExist(global.talosconfig, 'given with --talosconfig');
  const talosHome = env.TALOS_HOME && isAbsolute(env.TALOS_HOME) ? env.TALOS_HOME : undefined;
  const userPath = join(talosHome ?? join(env.HOME || homedir(), '.talos'), 'config');
  const candidates = [...(env.TALOSCONFIG ? [env.TALOSCONFIG] : []), userPath, IN_CLUSTER_PATH];
  const found = candidates.find((path) => existsSync(path));
  if (found) return found === env.TALOSCONFIG ? mustExist(found, 'named by TALOSCONFIG') : found;
  const looked = env.TALOSCONFIG ? `${env.TALOSCONFIG} (TALOSCONFIG) nor at ${userPath}` : userPath;
  throw new UserError(
    `No talosconfig found at ${looked}: pass one with --talosconfig FILE or set TALOSCONFIG (talosctl gen config writes one).`,
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
  refuseOmni(raw, contextName);
  const endpointTexts = global.endpoints?.length ? global.endpoints : contextEndpoints(raw, where);
  if (endpointTexts.length === 0) {
    throw new UserError(
      `The talosconfig ${where} has no endpoints: pass them with -e (e.g. -e 10.0.0.2) or add them with "talosctl config endpoint".`,
    );
  }
  const endpoints = endpointTexts.map((text) => parseEndpoint(text));
  const nodes = global.nodes?.length ? global.nodes : stringList(raw.nodes, 'nodes', where);
  refuseNodesWithPort(nodes, global.nodes?.length ? 'given with -n' : `in the ${where}`);
  const caPem = isAbsent(raw.ca) ? undefined : pemField(raw.ca, 'ca', where, 'CERTIFICATE');
  if (caPem) checkCertificate(caPem, 'ca', where);
  const trimmedServerName = serverName?.trim();
  return {
    path,
    contextName,
    endpoints,
    nodes,
    ...(caPem ? { caPem } : {}),
    ...clientIdentity(raw, where),
    ...(trimmedServerName ? { serverName: trimmedServerName } : {}),
  };
}

/**
 * apid refuses a target with a port ("invalid target", siderolabs/talos: internal/app/apid/pkg/backend/apid.go@v1.12.0:54-56,
 * using siderolabs/net AddressContainsPort: Go's SplitHostPort succeeds and the host is not a bare IPv6 address).
 * Every call would fail, so say it before any.
 */
export function nodeHasPort(node: string): boolean {
  const bracketed = /^\[([^\]]*)\]:([^:\]]*)$/.exec(node);
  if (bracketed) {
    const host = bracketed[1] ?? '';
    return !host.includes(':') || isIP(host) !== 0;
  }
  return !node.startsWith('[') && node.split(':').length === 2;
}

function refuseNodesWithPort(nodes: string[], how: string): void {
  const withPort = nodes.find(nodeHasPort);
  if (withPort === undefined) return;
  const host = withPort.replace(/^\[(.*)\]:[^:]*$/, '$1').replace(/^([^:]*):[^:]*$/, '$1');
  throw new UserError(
    `The node "${withPort}" ${how} has a port, which Talos refuses ("invalid target"): name nodes by address only (-n ${host}) and give the port with the endpoint (-e ${withPort}).`,
    2,
  );
}

const isAbsent = (value: unknown) => value === undefined || value === null || value === '';

/** The client certificate and key: both or neither (talosctl sends none when both are empty). */
function clientIdentity(
  raw: RawContext,
  where: string,
): Pick<TalosContextConfig, 'certPem' | 'keyPem' | 'clientCertNotAfter' | 'clientCertNotBefore'> {
  if (isAbsent(raw.crt) && isAbsent(raw.key)) return {};
  const certPem = pemField(raw.crt, 'crt', where, 'CERTIFICATE');
  const keyPem = normalizeKeyPem(pemField(raw.key, 'key', where, 'PRIVATE KEY'));
  const clientCert = checkCertificate(certPem, 'crt', where);
  checkKeyMatches(clientCert, keyPem, where);
  return {
    certPem,
    keyPem,
    clientCertNotAfter: new Date(clientCert.validTo),
    clientCertNotBefore: new Date(clientCert.validFrom),
  };
}

/** `endpoints`, then the deprecated `target` appended as talosctl's upgrade() does. */
function contextEndpoints(raw: RawContext, where: string): string[] {
  const endpoints = stringList(raw.endpoints, 'endpoints', where);
  if (isAbsent(raw.target)) return endpoints;
  if (typeof raw.target !== 'string') {
    throw new UserError(`The talosconfig ${where} has a "target" that is not an address; ${FIX_HINT}.`);
  }
  return raw.target.trim() ? [...endpoints, raw.target.trim()] : endpoints;
}

/**
 * A context with `auth.siderov1` talks to Omni, which signs each request with the user's key; Omni-managed machines
 * refuse plain recovery calls, so no new talosconfig would help: the restore goes through Omni.
 */
function refuseOmni(raw: RawContext, contextName: string): void {
  const auth = raw.auth as { siderov1?: unknown } | null | undefined;
  if (!auth || typeof auth !== 'object' || !auth.siderov1) return;
  const cluster = typeof raw.cluster === 'string' && raw.cluster.trim() ? raw.cluster.trim() : 'CLUSTER';
  throw new UserError(
    `The talosconfig context "${contextName}" belongs to a cluster managed by Omni, whose machines refuse these recovery calls; restore etcd through Omni instead (list its backups with "omnictl get etcdbackup -l omni.sidero.dev/cluster=${cluster}" and follow ${OMNI_RESTORE_DOC}).`,
    2,
  );
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
