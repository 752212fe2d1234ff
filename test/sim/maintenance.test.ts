import { connect } from 'node:tls';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { Client as GrpcClient } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spkiFingerprint } from '../../src/talos/pki.js';
import { talosProtos } from '../../src/talos/proto.js';
import { collect, etcdState, eventually, scenarioAtVersion, startBench, unary, type Bench } from './helpers.js';

let bench: Bench;
let cp1: string;
let cp2: string;
beforeAll(async () => {
  // the separate maintenance service of Talos ≤1.12 (facts §6); 1.13+ is tested below
  bench = await startBench(scenarioAtVersion('hardware-failure', '1.11'));
  [cp1, cp2] = bench.sim.nodes as [string, string];
});
afterAll(async () => bench?.close());

function peerCertificatePem(address: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: address, port, rejectUnauthorized: false, ALPNProtocols: ['h2'] }, () => {
      const raw = socket.getPeerCertificate().raw;
      socket.end();
      resolve(`-----BEGIN CERTIFICATE-----\n${raw.toString('base64')}\n-----END CERTIFICATE-----\n`);
    });
    socket.on('error', reject);
  });
}

describe('a blank machine in maintenance mode (Talos 1.11)', () => {
  it('serves server-only TLS with its own certificate (the fingerprint the simulator reports)', async () => {
    const pem = await peerCertificatePem(cp2, bench.sim.port);
    expect(spkiFingerprint(pem)).toBe(bench.sim.maintenanceFingerprints[cp2]);
    // A normal node's certificate is a different one, issued by the cluster's CA.
    expect(spkiFingerprint(await peerCertificatePem(cp1, bench.sim.port))).not.toBe(
      bench.sim.maintenanceFingerprints[cp2],
    );
  });

  it('refuses what a LAN client may not do, with the texts of facts §4.5', async () => {
    const m = bench.maintenance(cp2);
    await expect(unary(m, 'Version', {})).rejects.toMatchObject({
      code: 12,
      details: 'API is not implemented in maintenance mode',
    });
    await expect(unary(m, 'Reset', {})).rejects.toMatchObject({
      code: 12,
      details: 'API is not implemented in maintenance mode',
    });
    await expect(unary(m, 'EtcdStatus', {})).rejects.toMatchObject({
      code: 12,
      details: 'method EtcdStatus not implemented',
    });
    await expect(collect(m, 'EtcdSnapshot', {})).rejects.toMatchObject({
      code: 12,
      details: 'method EtcdSnapshot not implemented',
    });
    await expect(
      unary(m, 'ApplyConfiguration', { data: Buffer.from('version: v1alpha1\n'), mode: 'STAGED' }),
    ).rejects.toMatchObject({
      code: 12,
      details: "apply configuration --mode='staged' is not supported in maintenance mode",
    });
    await expect(
      unary(m, 'ApplyConfiguration', { data: Buffer.from('kind: Foo\n'), mode: 'AUTO' }),
    ).rejects.toMatchObject({
      code: 3,
      details:
        "the applied machine configuration doesn't contain v1alpha1 config, did you mean to patch the machine config instead?",
    });
  });

  it('lets a LAN client read non-sensitive resources only', async () => {
    const insecure = grpc.credentials.createSsl(null, null, null, {
      rejectUnauthorized: false,
      checkServerIdentity: () => undefined,
    });
    const cosi = new (talosProtos().cosi.resource.State as unknown as new (a: string, c: unknown) => GrpcClient)(
      `${cp2}:${bench.sim.port}`,
      insecure,
    );
    try {
      const mt = await unary<{ resource: { spec: { yamlSpec: string; protoSpec: Buffer } } }>(cosi, 'Get', {
        namespace: 'config',
        type: 'MachineTypes.config.talos.dev',
        id: 'machine-type',
      });
      expect(mt.resource.spec.yamlSpec.trim()).toBe('unknown');
      expect(mt.resource.spec.protoSpec.length).toBe(0);
      await expect(
        unary(cosi, 'Get', { namespace: 'config', type: 'MachineConfigs.config.talos.dev', id: 'v1alpha1' }),
      ).rejects.toMatchObject({ code: 7, details: 'not authorized' });
    } finally {
      cosi.close();
    }
  });

  it('installs the given backup configuration, reboots into it and waits in Preparing', async () => {
    const given = join(bench.dir, 'incident');
    const written = await bench.sim.writeGiven(given);
    expect(written.map((p) => p.slice(given.length + 1)).sort()).toEqual(
      bench.sim.nodes.map((n) => `given/configs/${n}.yaml`).sort(),
    );
    // Never overwritten: a second call writes nothing.
    expect(await bench.sim.writeGiven(given)).toEqual([]);
    const config = readFileSync(join(given, 'given', 'configs', `${cp2}.yaml`));
    const applied = await unary<{ messages: { mode: string }[] }>(bench.maintenance(cp2), 'ApplyConfiguration', {
      data: config,
      mode: 'AUTO',
    });
    expect(applied.messages[0]?.mode).toBe('REBOOT');
    // Every call received counts, refused or not (two were refused above).
    expect(bench.sim.destructiveCalls().apply[cp2]).toBe(3);
    // Back with mTLS as a control-plane node; without quorum anywhere its etcd waits for a bootstrap.
    await eventually(
      () => etcdState(bench, cp2).catch((e: Error) => e.message),
      (s) => s === 'Preparing',
    );
    const mt = await unary<{ resource: { spec: { yamlSpec: string } } }>(
      bench.cosi(cp1),
      'Get',
      { namespace: 'config', type: 'MachineTypes.config.talos.dev', id: 'machine-type' },
      { node: cp2 },
    );
    expect(mt.resource.spec.yamlSpec.trim()).toBe('controlplane');
    const view = bench.sim.view().find((n) => n.address === cp2);
    expect(view).toMatchObject({ hostname: 'cp-2', machineType: 'controlplane', etcdState: 'Preparing' });
  });
});

describe('Talos 1.14: one API for maintenance and configured nodes (facts §4, §6)', () => {
  let b14: Bench;
  let c1: string;
  let c2: string;
  beforeAll(async () => {
    b14 = await startBench('hardware-failure');
    [c1, c2] = b14.sim.nodes as [string, string];
  });
  afterAll(async () => b14?.close());

  it('reports 1.14 by default', async () => {
    const v = await unary<{ messages: { version: { tag: string } }[] }>(b14.machine(c1), 'Version', {});
    expect(v.messages[0]?.version.tag).toMatch(/^v1\.14\./);
    expect(b14.sim.scenario.talosVersion).toBe('1.14');
  });

  it('refuses REBOOT on a configured node and ETCD without EPHEMERAL', async () => {
    await expect(
      unary(b14.machine(c1), 'ApplyConfiguration', { data: Buffer.from('version: v1alpha1\n'), mode: 'REBOOT' }),
    ).rejects.toMatchObject({
      code: 12,
      details: 'the REBOOT mode is not supported, please use AUTO or NO_REBOOT modes instead',
    });
    await expect(
      unary(b14.machine(c1), 'Reset', { systemPartitionsToWipe: [{ label: 'ETCD', wipe: true }], reboot: true }),
    ).rejects.toMatchObject({
      code: 2,
      details:
        'failed to reset: volume "ETCD" resides on volume "EPHEMERAL", and therefore "ETCD" cannot be wiped without wiping "EPHEMERAL"',
    });
    expect(b14.sim.view().find((n) => n.address === c1)?.reachable).toBe(true);
  });

  it('fails TLS when a blank machine is asked through an endpoint (apid cannot verify its certificate)', async () => {
    await expect(unary(b14.machine(c1), 'Version', {}, { node: c2 })).rejects.toMatchObject({
      code: 14,
      details:
        'connection error: desc = "transport: authentication handshake failed: tls: failed to verify certificate: x509: certificate signed by unknown authority"',
    });
  });

  it('takes REBOOT in maintenance as NO_REBOOT and comes up configured', async () => {
    const given = join(b14.dir, 'incident');
    await b14.sim.writeGiven(given);
    const config = readFileSync(join(given, 'given', 'configs', `${c2}.yaml`));
    const applied = await unary<{ messages: { mode: string; modeDetails: string }[] }>(
      b14.maintenance(c2),
      'ApplyConfiguration',
      { data: config, mode: 'REBOOT' },
    );
    expect(applied.messages[0]).toMatchObject({
      mode: 'NO_REBOOT',
      modeDetails: 'Applied configuration without a reboot',
    });
    await eventually(
      () => etcdState(b14, c2).catch((e: Error) => e.message),
      (s) => s === 'Preparing',
    );
  });
});
