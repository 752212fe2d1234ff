import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { extract } from 'tar-stream';
import * as grpc from '@grpc/grpc-js';
import type { Client as GrpcClient } from '@grpc/grpc-js';
import { caFromJson, issueClientCert } from '../../src/talos/pki.js';
import { talosProtos } from '../../src/talos/proto.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect, concatBytes, scenarioAtVersion, startBench, unary, type Bench } from './helpers.js';
import { etcdctlStatus, haveEtcdctl } from './etcd-tools.js';

let bench: Bench;
let cp1: string;
let cp2: string;
let worker: string;
const work = mkdtempSync(join(tmpdir(), 'talos-dr-wire-'));

beforeAll(async () => {
  bench = await startBench(scenarioAtVersion('lost-quorum', '1.11')); // the texts of Talos 1.11; 1.14's are tested elsewhere
  [cp1, cp2] = bench.sim.nodes as [string, string];
  worker = bench.sim.allNodes[3]!;
});
afterAll(async () => {
  await bench?.close();
  rmSync(work, { recursive: true, force: true });
});

type Meta = { hostname: string; error: string; status: { code: number; message: string } | null };

async function untar(tgz: Buffer): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  const ex = extract();
  const done = new Promise<void>((resolve, reject) => {
    ex.on('entry', (header, stream, next) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: unknown) => chunks.push(c as Buffer));
      stream.on('end', () => {
        files.set(header.name, Buffer.concat(chunks));
        next();
      });
    });
    ex.on('finish', resolve);
    ex.on('error', reject);
  });
  ex.end(gunzipSync(tgz));
  await done;
  return files;
}

describe('apid semantics', () => {
  it('fans out with nodes: hostname as sent, per-node failures in-band, overall status OK', async () => {
    const res = await unary<{ messages: { metadata: Meta; memberStatus: { leader: string } | null }[] }>(
      bench.machine(cp1),
      'EtcdStatus',
      {},
      { nodes: [cp1, worker, '127.0.0.1'] },
    );
    expect(res.messages.map((m) => m.metadata.hostname)).toEqual([cp1, worker, '127.0.0.1']);
    expect(res.messages[0]?.metadata.error).toBe('');
    expect(res.messages[0]?.memberStatus?.leader).toBe('0');
    expect(res.messages[1]?.metadata.error).toBe(
      'rpc error: code = Unimplemented desc = etcd status is only available on control plane nodes',
    );
    expect(res.messages[1]?.metadata.status).toMatchObject({
      code: 12,
      message: 'etcd status is only available on control plane nodes',
    });
    expect(res.messages[2]?.metadata.error).toMatch(/^rpc error: code = Unavailable desc = connection error/);
  });

  it('forwards with node one-to-one: real status codes, no hostname', async () => {
    await expect(
      unary(bench.machine(cp1), 'EtcdMemberList', { queryLocal: true }, { node: cp1 }),
    ).rejects.toMatchObject({ code: 2, details: 'etcdserver: no leader' });
    const version = await unary<{ messages: { metadata: Meta | null }[] }>(
      bench.machine(cp1),
      'Version',
      {},
      { node: cp2 },
    );
    expect(version.messages[0]?.metadata).toBeNull();
  });

  it('refuses nodes on COSI and more than one node value', async () => {
    await expect(
      unary(
        bench.cosi(cp1),
        'Get',
        { namespace: 'config', type: 'MachineTypes.config.talos.dev', id: 'machine-type' },
        { nodes: [cp1] },
      ),
    ).rejects.toMatchObject({ code: 3, details: 'one-2-many proxying is not supported for COSI methods' });
  });

  it("makes a call to an etcd that does not serve clients wait until the caller's deadline", async () => {
    const started = Date.now();
    await expect(unary(bench.machine(cp1), 'EtcdStatus', {}, { node: cp2, timeoutMs: 300 })).rejects.toMatchObject({
      code: 4,
    });
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
  });

  it('reports the survivor as serving without a leader', async () => {
    const res = await unary<{
      messages: { memberStatus: { leader: string; errors: string[]; raftAppliedIndex: string; memberId: string } }[];
    }>(bench.machine(cp1), 'EtcdStatus', {});
    const status = res.messages[0]!.memberStatus;
    expect(status.errors).toEqual(['etcdserver: no leader']);
    expect(BigInt(status.raftAppliedIndex)).toBeGreaterThan(0n);
    expect(BigInt(status.memberId)).toBeGreaterThan(0n);
  });
});

describe('etcd data over the wire', () => {
  it('streams EtcdSnapshot in chunks of at most 1 KiB with the sha256 trailer', async () => {
    const messages = await collect<{ bytes: Buffer }>(bench.machine(cp1), 'EtcdSnapshot', {});
    expect(messages.length).toBeGreaterThan(10);
    expect(messages.every((m) => m.bytes.length <= 1024)).toBe(true);
    const file = concatBytes(messages);
    expect(file.length % 512).toBe(32);
    const digest = createHash('sha256').update(file.subarray(0, -32)).digest();
    expect(digest.equals(file.subarray(-32))).toBe(true);
    if (haveEtcdctl) {
      const path = join(work, 'api.snapshot');
      writeFileSync(path, file);
      const status = await etcdctlStatus(path);
      expect(status.revision).toBe(bench.sim.dataReport().lastWriteRevision);
    }
  });

  it('keeps EtcdSnapshot on a node whose etcd does not serve open until the caller gives up', async () => {
    // the local etcd client waits for a ready connection (facts §2): no bytes, then the caller's own deadline
    await expect(collect(bench.machine(cp1), 'EtcdSnapshot', {}, { node: cp2, timeoutMs: 1500 })).rejects.toMatchObject(
      { code: 4 },
    );
  });

  it('copies the raw database as a .tar.gz with one entry "db" (no trailer)', async () => {
    const messages = await collect<{ bytes: Buffer; metadata: Meta | null }>(
      bench.machine(cp1),
      'Copy',
      { rootPath: '/var/lib/etcd/member/snap/db' },
      { node: cp2 },
    );
    expect(messages.every((m) => !m.metadata?.error)).toBe(true);
    const files = await untar(concatBytes(messages));
    expect([...files.keys()]).toEqual(['db']);
    const db = files.get('db')!;
    expect(db.length % 4096).toBe(0);
    if (haveEtcdctl) {
      const path = join(work, 'db');
      writeFileSync(path, db);
      const status = await etcdctlStatus(path);
      expect(status.totalSize).toBe(db.length);
    }
  });

  it('reports a missing Copy root in-band with no archive bytes at all, and refuses relative paths', async () => {
    const messages = await collect<{ bytes: Buffer; metadata: Meta | null }>(bench.machine(worker), 'Copy', {
      rootPath: '/var/lib/etcd/member/snap/db',
    });
    // the archiver's Lstat fails before a gzip header is written: one message, the error, and status OK
    expect(messages).toHaveLength(1);
    expect(messages[0]?.bytes.length ?? 0).toBe(0);
    expect(messages[0]?.metadata?.error).toBe('lstat /var/lib/etcd/member/snap/db: no such file or directory');
    await expect(collect(bench.machine(cp1), 'Copy', { rootPath: 'var/lib' })).rejects.toMatchObject({
      details: 'path is not absolute var/lib',
    });
  });

  it('reads the boot id', async () => {
    const id = concatBytes(await collect(bench.machine(cp1), 'Read', { path: '/proc/sys/kernel/random/boot_id' }))
      .toString()
      .trim();
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe('COSI', () => {
  const get = (address: string, namespace: string, type: string, id: string) =>
    unary<{ resource: { metadata: { id: string; type: string }; spec: { protoSpec: Buffer; yamlSpec: string } } }>(
      bench.cosi(address),
      'Get',
      { namespace, type, id },
      { node: address },
    );

  it('serves the machine configuration (multi-line YAML with the machine type) and the machine type', async () => {
    const mc = await get(cp1, 'config', 'MachineConfigs.config.talos.dev', 'v1alpha1');
    expect(mc.resource.spec.yamlSpec).toMatch(/^version: v1alpha1/);
    expect(mc.resource.spec.yamlSpec).toContain('    type: controlplane');
    expect(mc.resource.spec.yamlSpec).toContain('hostname: cp-1');
    const mt = await get(cp1, 'config', 'MachineTypes.config.talos.dev', 'machine-type');
    expect([...mt.resource.spec.protoSpec]).toEqual([0x08, 0x02]);
    expect(mt.resource.spec.yamlSpec.trim()).toBe('controlplane');
    const wt = await get(worker, 'config', 'MachineTypes.config.talos.dev', 'machine-type');
    expect(wt.resource.spec.yamlSpec.trim()).toBe('worker');
  });

  it('shows the ETCD volume as a directory on Talos 1.11', async () => {
    const vs = await get(cp1, 'runtime', 'VolumeStatuses.block.talos.dev', 'ETCD');
    expect(vs.resource.spec.yamlSpec).toContain('type: directory');
  });

  it("answers with the access filter's and the store's texts", async () => {
    await expect(get(cp1, 'config', 'mc', 'v1alpha1')).rejects.toMatchObject({
      code: 7,
      details: 'resource type "mc" is not supported',
    });
    await expect(get(cp1, '', 'MachineConfigs.config.talos.dev', 'v1alpha1')).rejects.toMatchObject({
      code: 7,
      details: 'namespace "" is not supported',
    });
    await expect(get(cp1, 'config', 'MachineConfigs.config.talos.dev', 'nope')).rejects.toMatchObject({
      code: 5,
      details: "resource MachineConfigs.config.talos.dev(config/nope@undefined) doesn't exist",
    });
  });

  it('lists resource definitions so aliases can be resolved', async () => {
    const list = await collect<{ resource: { spec: { yamlSpec: string } } }>(
      bench.cosi(cp1),
      'List',
      { namespace: 'meta', type: 'ResourceDefinitions.meta.cosi.dev' },
      { node: cp1 },
    );
    expect(list.some((r) => r.resource.spec.yamlSpec.includes('    - mc'))).toBe(true);
  });
});

describe('Reset validation (Talos 1.11)', () => {
  it("rejects the ETCD label and unknown labels with Talos's texts, wiping nothing", async () => {
    await expect(
      unary(bench.machine(cp1), 'Reset', { systemPartitionsToWipe: [{ label: 'ETCD', wipe: true }], reboot: true }),
    ).rejects.toMatchObject({ code: 2, details: 'failed to reset: volume "ETCD" is not located' });
    await expect(
      unary(bench.machine(cp1), 'Reset', { systemPartitionsToWipe: [{ label: 'BOGUS', wipe: true }] }),
    ).rejects.toMatchObject({
      code: 2,
      details: expect.stringMatching(/^failed to get volume status with label "BOGUS"/),
    });
    expect(bench.sim.view().find((n) => n.address === cp1)?.etcdRevision).toBe(
      bench.sim.dataReport().lastWriteRevision,
    );
  });
});

describe('roles from the client certificate', () => {
  it('lets os:reader read but not act, with Talos\'s "not authorized"', async () => {
    const statePath = join(work, 'roles-state.json');
    await bench.sim.saveState(statePath);
    const ca = await caFromJson((JSON.parse(readFileSync(statePath, 'utf8')) as { ca: string }).ca);
    const reader = await issueClientCert(ca, { roles: ['os:reader'] });
    const creds = grpc.credentials.createSsl(
      Buffer.from(bench.sim.caPem),
      Buffer.from(reader.keyPem),
      Buffer.from(reader.certPem),
    );
    type Ctor = new (a: string, c: unknown) => GrpcClient;
    const machine = new (talosProtos().machine.MachineService as unknown as Ctor)(`${cp1}:${bench.sim.port}`, creds);
    const cosi = new (talosProtos().cosi.resource.State as unknown as Ctor)(`${cp1}:${bench.sim.port}`, creds);
    const resetsBefore = bench.sim.destructiveCalls().reset[cp1];
    try {
      const version = await unary<{ messages: unknown[] }>(machine, 'Version', {});
      expect(version.messages).toHaveLength(1);
      await expect(unary(machine, 'Reset', { reboot: true })).rejects.toMatchObject({
        code: 7,
        details: 'not authorized',
      });
      await expect(collect(machine, 'EtcdSnapshot', {})).rejects.toMatchObject({ code: 7, details: 'not authorized' });
      await expect(
        unary(cosi, 'Get', { namespace: 'config', type: 'MachineConfigs.config.talos.dev', id: 'v1alpha1' }),
      ).rejects.toMatchObject({ code: 7, details: 'not authorized' });
      const mt = await unary<{ resource: { spec: { yamlSpec: string } } }>(cosi, 'Get', {
        namespace: 'config',
        type: 'MachineTypes.config.talos.dev',
        id: 'machine-type',
      });
      expect(mt.resource.spec.yamlSpec.trim()).toBe('controlplane');
      // Refused before it reached the node: nothing counted, nothing wiped.
      expect(bench.sim.destructiveCalls().reset[cp1]).toBe(resetsBefore);
      expect(bench.sim.view()[0]?.reachable).toBe(true);
    } finally {
      machine.close();
      cosi.close();
    }
  });
});
