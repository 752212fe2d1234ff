/**
 * Ed25519 PKI made the way Talos makes it (talos-api-facts §4.3/§4.4): an OS CA valid 10 years, server certificates
 * with IP (and DNS) SANs, and admin client certificates whose Organization carries the role(s). Used by the tests'
 * own gRPC bench and by the simulated cluster, which must look like a real cluster to the client.
 */
// @peculiar/x509 resolves its ASN.1 parsers through tsyringe, which needs the Reflect metadata API loaded first.
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { stringify as yamlStringify } from 'yaml';
import { talosKeyPem, normalizeKeyPem } from './pem.js';

// The project compiles without the DOM lib, so the WebCrypto types @peculiar/x509 names are taken from its signatures.
type X509Crypto = Parameters<typeof x509.cryptoProvider.set>[0];
type X509KeyPair = Parameters<typeof x509.X509CertificateGenerator.createSelfSigned>[0]['keys'];
type X509Key = X509KeyPair['privateKey'];

x509.cryptoProvider.set(webcrypto as unknown as X509Crypto);

const ED25519 = { name: 'Ed25519' } as const;
const DAY_MS = 24 * 60 * 60 * 1000;
const CA_VALIDITY_MS = 10 * 365 * DAY_MS;
const CLIENT_VALIDITY_MS = 365 * DAY_MS;
/** Talos re-issues its server certificates every ~12 h with 24 h validity; a simulator lives longer than that. */
const SERVER_VALIDITY_MS = 365 * DAY_MS;
/** Certificates are back-dated a little so a clock a few seconds behind does not reject a fresh one. */
const CLOCK_SKEW_MS = 5 * 60 * 1000;

export interface PemPair {
  certPem: string;
  /** PKCS#8 with the plain "PRIVATE KEY" label (what OpenSSL and Node accept). */
  keyPem: string;
}

export interface CertificateAuthority extends PemPair {
  readonly certificate: x509.X509Certificate;
  readonly signingKey: webcrypto.CryptoKey;
}

interface Validity {
  notBefore?: Date;
  notAfter?: Date;
}

function validity(opts: Validity, lifetimeMs: number): { notBefore: Date; notAfter: Date } {
  const notBefore = opts.notBefore ?? new Date(Date.now() - CLOCK_SKEW_MS);
  const notAfter = opts.notAfter ?? new Date(notBefore.getTime() + lifetimeMs);
  return { notBefore, notAfter };
}

/** A random positive 128-bit serial, hex; the top bit cleared so DER does not need a sign byte. */
function randomSerial(): string {
  const bytes = webcrypto.getRandomValues(new Uint8Array(16));
  bytes[0] = (bytes[0] ?? 0) & 0x7f;
  return Buffer.from(bytes).toString('hex');
}

async function generateKeys(): Promise<webcrypto.CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(ED25519, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
}

async function privateKeyPem(key: webcrypto.CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

/** Escapes a value for an RFC 4514 distinguished-name string. */
function dnValue(value: string): string {
  return value.replace(/([,+"\\<>;=#])/g, '\\$1');
}

export async function generateCa(
  opts: { commonName?: string; notBefore?: Date; notAfter?: Date } = {},
): Promise<CertificateAuthority> {
  const keys = await generateKeys();
  const name = opts.commonName ? `O=talos, CN=${dnValue(opts.commonName)}` : 'O=talos';
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name,
    ...validity(opts, CA_VALIDITY_MS),
    keys: keys as unknown as X509KeyPair,
    signingAlgorithm: ED25519,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.cRLSign,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey as unknown as X509Key),
    ],
  });
  return {
    certificate,
    signingKey: keys.privateKey,
    certPem: certificate.toString('pem'),
    keyPem: await privateKeyPem(keys.privateKey),
  };
}

/** Rebuilds a CA from its PEMs (the key may carry Talos's "ED25519 PRIVATE KEY" label). */
export async function caFromPem(pair: PemPair): Promise<CertificateAuthority> {
  const certificate = new x509.X509Certificate(pair.certPem);
  const keyPem = normalizeKeyPem(pair.keyPem);
  const der = x509.PemConverter.decodeFirst(keyPem);
  const signingKey = await webcrypto.subtle.importKey('pkcs8', der, ED25519, true, ['sign']);
  return { certificate, signingKey, certPem: certificate.toString('pem'), keyPem };
}

/** The CA as JSON (its two PEMs), for a simulator to save and later restore with caFromJson. */
export function caToJson(ca: CertificateAuthority): string {
  return JSON.stringify({ certPem: ca.certPem, keyPem: ca.keyPem });
}

export async function caFromJson(json: string): Promise<CertificateAuthority> {
  const parsed = JSON.parse(json) as Partial<PemPair>;
  if (typeof parsed.certPem !== 'string' || typeof parsed.keyPem !== 'string') {
    throw new Error('The saved certificate authority is missing its certificate or key.');
  }
  return caFromPem({ certPem: parsed.certPem, keyPem: parsed.keyPem });
}

async function issue(
  ca: CertificateAuthority,
  subject: string,
  window: { notBefore: Date; notAfter: Date },
  extensions: x509.Extension[],
): Promise<PemPair> {
  const keys = await generateKeys();
  const certificate = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject,
    issuer: ca.certificate.subjectName,
    ...window,
    publicKey: keys.publicKey as unknown as X509Key,
    signingKey: ca.signingKey as unknown as X509Key,
    signingAlgorithm: ED25519,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      ...extensions,
      await x509.AuthorityKeyIdentifierExtension.create(ca.certificate),
    ],
  });
  return { certPem: certificate.toString('pem'), keyPem: await privateKeyPem(keys.privateKey) };
}

export async function issueServerCert(
  ca: CertificateAuthority,
  opts: { ips: string[]; dnsNames?: string[]; commonName?: string; notBefore?: Date; notAfter?: Date },
): Promise<PemPair> {
  const commonName = opts.commonName ?? opts.dnsNames?.[0] ?? opts.ips[0] ?? 'talos';
  const altNames: x509.JsonGeneralName[] = [
    ...(opts.dnsNames ?? []).map((value) => ({ type: 'dns' as const, value })),
    ...opts.ips.map((value) => ({ type: 'ip' as const, value })),
  ];
  return issue(ca, `CN=${dnValue(commonName)}`, validity(opts, SERVER_VALIDITY_MS), [
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
    new x509.SubjectAlternativeNameExtension(altNames),
  ]);
}

export async function issueClientCert(
  ca: CertificateAuthority,
  opts: { roles: string[]; notBefore?: Date; notAfter?: Date },
): Promise<PemPair> {
  if (opts.roles.length === 0) throw new Error('A Talos client certificate needs at least one role.');
  const subject = opts.roles.map((role) => `O=${dnValue(role)}`).join(', ');
  return issue(ca, subject, validity(opts, CLIENT_VALIDITY_MS), [
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
  ]);
}

export { normalizeKeyPem, spkiFingerprint, talosKeyPem } from './pem.js';

const base64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');

/**
 * talosconfig YAML as Talos writes it: ca/crt/key are standard base64 of the PEM text; the key uses the
 * "ED25519 PRIVATE KEY" label exactly as Talos does.
 */
export function talosconfigYaml(opts: {
  context: string;
  endpoints: string[];
  nodes?: string[];
  ca: PemPair;
  client: PemPair;
}): string {
  const context: Record<string, unknown> = { endpoints: opts.endpoints };
  if (opts.nodes && opts.nodes.length > 0) context.nodes = opts.nodes;
  context.ca = base64(opts.ca.certPem);
  context.crt = base64(opts.client.certPem);
  context.key = base64(talosKeyPem(opts.client.keyPem));
  return yamlStringify({ context: opts.context, contexts: { [opts.context]: context } });
}
