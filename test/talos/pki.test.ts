import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import {
  caFromJson,
  caToJson,
  generateCa,
  issueClientCert,
  issueServerCert,
  normalizeKeyPem,
  spkiFingerprint,
  talosconfigYaml,
} from '../../src/talos/pki.js';

/** One mutual-TLS handshake on loopback; resolves with the error text or 'ok'. */
async function handshake(
  server: { ca: string; cert: string; key: string },
  client: { ca: string; cert: string; key: string },
) {
  const srv = tls.createServer({ ...server, requestCert: true, rejectUnauthorized: true }, (s) => s.end('hi'));
  srv.on('tlsClientError', () => {});
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const { port } = srv.address() as AddressInfo;
  try {
    return await new Promise<string>((resolve) => {
      const sock = tls.connect({
        host: '127.0.0.1',
        port,
        ...client,
        checkServerIdentity: (_h, c) => tls.checkServerIdentity('127.0.0.1', c),
      });
      sock.on('secureConnect', () => {
        sock.end();
        resolve('ok');
      });
      sock.on('error', (e) => resolve(e.message));
    });
  } finally {
    srv.close();
  }
}

describe('pki', () => {
  it('makes an Ed25519 CA, server and client certificates that complete a mutual TLS handshake', async () => {
    const ca = await generateCa();
    const server = await issueServerCert(ca, { ips: ['127.0.0.1'], dnsNames: ['node-1'] });
    const client = await issueClientCert(ca, { roles: ['os:admin'] });
    expect(client.keyPem).toContain('-----BEGIN PRIVATE KEY-----');
    const caCert = new X509Certificate(ca.certPem);
    expect(caCert.ca).toBe(true);
    expect(caCert.publicKey.asymmetricKeyType).toBe('ed25519');
    const clientCert = new X509Certificate(client.certPem);
    expect(clientCert.subject).toContain('O=os:admin');
    expect(clientCert.checkIssued(caCert)).toBe(true);
    expect(new X509Certificate(server.certPem).subjectAltName).toContain('IP Address:127.0.0.1');
    expect(
      await handshake(
        { ca: ca.certPem, cert: server.certPem, key: server.keyPem },
        { ca: ca.certPem, cert: client.certPem, key: client.keyPem },
      ),
    ).toBe('ok');
  });

  it('restores a CA from JSON that can still sign certificates the original CA validates', async () => {
    const ca = await generateCa({ commonName: 'drill' });
    const restored = await caFromJson(caToJson(ca));
    const client = await issueClientCert(restored, { roles: ['os:admin', 'os:reader'] });
    const cert = new X509Certificate(client.certPem);
    expect(cert.verify(new X509Certificate(ca.certPem).publicKey)).toBe(true);
    expect(cert.subject).toContain('O=os:admin');
    expect(cert.subject).toContain('os:reader');
  });

  it('honours notAfter so a test can make an expired certificate', async () => {
    const ca = await generateCa();
    const past = new Date(Date.now() - 2 * 86400_000);
    const client = await issueClientCert(ca, {
      roles: ['os:admin'],
      notBefore: new Date(Date.now() - 3 * 86400_000),
      notAfter: past,
    });
    expect(new Date(new X509Certificate(client.certPem).validTo).getTime()).toBeLessThan(Date.now());
  });

  it('writes a talosconfig the way Talos does, with the ED25519 key label', async () => {
    const ca = await generateCa();
    const client = await issueClientCert(ca, { roles: ['os:admin'] });
    const doc = parseYaml(talosconfigYaml({ context: 'drill', endpoints: ['127.0.0.1'], ca, client })) as {
      context: string;
      contexts: Record<string, { ca: string; crt: string; key: string; endpoints: string[] }>;
    };
    const ctx = doc.contexts.drill!;
    expect(doc.context).toBe('drill');
    expect(Buffer.from(ctx.ca, 'base64').toString()).toBe(ca.certPem);
    const key = Buffer.from(ctx.key, 'base64').toString();
    expect(key).toMatch(/^-----BEGIN ED25519 PRIVATE KEY-----/);
    expect(normalizeKeyPem(key)).toBe(client.keyPem);
  });

  it('fingerprints the SPKI as talosctl --cert-fingerprint does (sha256, base64)', async () => {
    const ca = await generateCa();
    const server = await issueServerCert(ca, { ips: ['127.0.0.1'] });
    const fp = spkiFingerprint(server.certPem);
    expect(Buffer.from(fp, 'base64')).toHaveLength(32);
    expect(spkiFingerprint(server.certPem)).toBe(fp);
    expect(spkiFingerprint(ca.certPem)).not.toBe(fp);
  });
});
