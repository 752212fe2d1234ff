import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectMaintenance } from '../../src/talos/maintenance.js';
import { generateCa, issueServerCert, spkiFingerprint, type PemPair } from '../../src/talos/pki.js';
import { closedPort, makePki, NodeFailure, startFakeTalos, type FakeTalos } from './fake-talos.js';

let blank: FakeTalos;
let serverCert: PemPair;

beforeAll(async () => {
  // The node's own throw-away CA, which the client knows nothing about.
  const nodeCa = await generateCa({ commonName: 'maintenance' });
  serverCert = await issueServerCert(nodeCa, { ips: ['127.0.0.1'] });
  blank = await startFakeTalos(
    await makePki(),
    {
      unary: {
        ApplyConfiguration: (_node, request) => {
          if (request.mode === 'STAGED') {
            throw new NodeFailure(12, "apply configuration --mode='staged' is not supported in maintenance mode");
          }
          return { mode: 'REBOOT', modeDetails: `applied ${(request.data as Buffer).length} bytes`, warnings: [] };
        },
      },
      cosiGet: () => ({ spec: { yamlSpec: 'unknown\n' } }),
    },
    { serverCert, serverOnlyTls: true },
  );
});

afterAll(() => blank?.stop());

describe('maintenance mode', () => {
  it('connects without a client certificate, returns the SPKI fingerprint and sends no node metadata', async () => {
    const client = await connectMaintenance(blank.address);
    try {
      expect(client.serverFingerprint).toBe(spkiFingerprint(serverCert.certPem));
      expect(await client.machineType()).toBe('unknown');
      const result = await client.applyConfiguration({ data: Buffer.from('version: v1alpha1\n'), mode: 'AUTO' });
      expect(result).toEqual({ mode: 'REBOOT', modeDetails: 'applied 18 bytes', warnings: [] });
      expect(blank.seen.slice(-2)).toEqual([
        { method: 'Get', nodes: [], node: [] },
        { method: 'ApplyConfiguration', nodes: [], node: [] },
      ]);
    } finally {
      client.close();
    }
  });

  it('accepts the pinned fingerprint and refuses another one with a sentence', async () => {
    const pinned = await connectMaintenance(blank.address, {
      expectedFingerprint: spkiFingerprint(serverCert.certPem),
    });
    pinned.close();
    const otherCa = await generateCa();
    const other = spkiFingerprint((await issueServerCert(otherCa, { ips: ['127.0.0.1'] })).certPem);
    await expect(connectMaintenance(blank.address, { expectedFingerprint: other })).rejects.toThrow(
      /fingerprint differs from the one expected.*make sure it is the machine you mean/,
    );
  });

  it('passes on the refusal of a mode maintenance mode does not support', async () => {
    const client = await connectMaintenance(blank.address);
    try {
      await expect(client.applyConfiguration({ data: Buffer.from('x'), mode: 'STAGED' })).rejects.toThrow(
        /is in maintenance mode/,
      );
    } finally {
      client.close();
    }
  });

  it('says clearly when nothing answers', async () => {
    await expect(connectMaintenance(`127.0.0.1:${await closedPort()}`)).rejects.toThrow(/connection refused/);
  });
});
