/**
 * PEM helpers that need nothing but node:crypto, kept apart from pki.ts so that loading a talosconfig or opening a
 * connection never pulls in the X.509 generation library (it costs most of a second at start-up).
 */
import { createHash, X509Certificate } from 'node:crypto';

const ED25519_KEY_LABEL = /-----(BEGIN|END) ED25519 PRIVATE KEY-----/g;

/** Talos labels its PKCS#8 Ed25519 keys "ED25519 PRIVATE KEY", which OpenSSL refuses; the payload is the same. */
export function normalizeKeyPem(pem: string): string {
  return pem.replace(ED25519_KEY_LABEL, '-----$1 PRIVATE KEY-----');
}

/** The reverse of normalizeKeyPem: the label Talos writes into a talosconfig. */
export function talosKeyPem(pem: string): string {
  return pem.replace(/-----(BEGIN|END) PRIVATE KEY-----/g, '-----$1 ED25519 PRIVATE KEY-----');
}

/** SHA-256 of the certificate's SubjectPublicKeyInfo, base64 (what talosctl's --cert-fingerprint takes). */
export function spkiFingerprint(certPem: string): string {
  const spki = new X509Certificate(certPem).publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(spki).digest('base64');
}
