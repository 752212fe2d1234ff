/**
 * The client lists every machine of the cluster, workers included, from COSI Members.cluster.talos.dev — the list the
 * after-restore step restarts kubelets on. The resources are sent as real Talos sends them: proto_spec bytes encoded
 * as protoenc lays out MemberSpec (siderolabs/talos pkg/machinery/resources/cluster/member.go@v1.13.0:30-36), or a
 * yaml_spec, one resource per stream message.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTalosClient, type GrpcTalosClient } from '../../src/talos/client.js';
import { loadTalosconfig } from '../../src/talos/talosconfig.js';
import { makePki, NodeFailure, startFakeTalos, writeTalosconfig, type FakeTalos } from './fake-talos.js';

/** protobuf bytes of one MemberSpec as protoenc writes it: nodeId 1, addresses 2 (netip binary), hostname 3, type 4 */
function memberSpecBytes(m: { nodeId: string; addresses: number[][]; hostname: string; type: number }): Buffer {
  const field = (n: number, bytes: Buffer) => Buffer.concat([Buffer.from([(n << 3) | 2, bytes.length]), bytes]);
  return Buffer.concat([
    field(1, Buffer.from(m.nodeId)),
    ...m.addresses.map((a) => field(2, Buffer.from(a))),
    field(3, Buffer.from(m.hostname)),
    Buffer.from([4 << 3, m.type]),
    field(5, Buffer.from('Talos (v1.13.0)')),
  ]);
}

const resource = (id: string, spec: object) => ({
  metadata: { namespace: 'cluster', type: 'Members.cluster.talos.dev', id, version: '1', phase: 'running' },
  spec,
});

let talos: FakeTalos;
let client: GrpcTalosClient;

beforeAll(async () => {
  const pki = await makePki();
  talos = await startFakeTalos(pki, {
    cosiList: (node, request) => {
      if (request.namespace !== 'cluster' || request.type !== 'Members.cluster.talos.dev')
        throw new NodeFailure(5, 'resource type not found');
      if (node === 'no-rbac') throw new NodeFailure(7, 'not authorized');
      if (node === 'yaml') {
        return [
          resource('cp-1', {
            yamlSpec: 'nodeId: abc\naddresses:\n  - 10.5.0.2\nhostname: cp-1\nmachineType: controlplane\n',
          }),
          resource('worker-1', {
            yamlSpec: 'nodeId: def\naddresses:\n  - 10.5.0.5\nhostname: worker-1\nmachineType: worker\n',
          }),
        ];
      }
      return [
        resource('cp-1', {
          protoSpec: memberSpecBytes({ nodeId: 'n1', addresses: [[10, 5, 0, 2]], hostname: 'cp-1', type: 2 }),
        }),
        resource('worker-1', {
          protoSpec: memberSpecBytes({
            nodeId: 'n2',
            addresses: [
              [10, 5, 0, 5],
              [0xfd, 0, ...Array(13).fill(0), 5],
            ],
            hostname: 'worker-1',
            type: 3,
          }),
        }),
        // a resource with no hostname is not a machine the tool can act on
        resource('ghost', { protoSpec: Buffer.from([0x0a, 0x01, 0x78]) }),
      ];
    },
  });
  client = createTalosClient(loadTalosconfig({ talosconfig: writeTalosconfig(pki, [talos.address]) }, {}));
});

afterAll(async () => {
  client?.close();
  await talos?.stop();
});

describe('clusterMembers: every machine of the cluster from discovery, workers included', () => {
  it('reads proto_spec members streamed one per message, with IPv4 and IPv6 addresses and the machine type', async () => {
    const got = await client.clusterMembers('10.5.0.2');
    expect(got).toEqual({
      node: '10.5.0.2',
      ok: true,
      value: [
        { id: 'cp-1', hostname: 'cp-1', addresses: ['10.5.0.2'], machineType: 'controlplane' },
        { id: 'worker-1', hostname: 'worker-1', addresses: ['10.5.0.5', 'fd00::5'], machineType: 'worker' },
      ],
    });
    // COSI calls carry `node` metadata, never `nodes` (apid refuses one-to-many proxying for them)
    expect(talos.seen.filter((s) => s.method === 'List').at(-1)).toMatchObject({ node: ['10.5.0.2'], nodes: [] });
  });

  it('reads yaml_spec members', async () => {
    const got = await client.clusterMembers('yaml');
    expect(got.ok && got.value.map((m) => [m.hostname, m.addresses[0], m.machineType])).toEqual([
      ['cp-1', '10.5.0.2', 'controlplane'],
      ['worker-1', '10.5.0.5', 'worker'],
    ]);
  });

  it('a refusal comes back as that node’s failure, not a throw', async () => {
    const got = await client.clusterMembers('no-rbac');
    expect(got.ok).toBe(false);
    expect(!got.ok && got.error.code).toBe(7);
  });
});
