/**
 * What the wizard needs after a restore, against the simulator over the wire: the cluster's members from discovery
 * (COSI Members.cluster.talos.dev, workers included) and ServiceRestart of kubelet on every node as Talos answers it.
 */
import * as grpc from '@grpc/grpc-js';
import { parse as parseYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect, eventually, startBench, unary, type Bench } from './helpers.js';

let bench: Bench;
beforeAll(async () => {
  bench = await startBench('member-crashloop', { speed: 200 });
});
afterAll(async () => bench?.close());

type Listed = { resource: { metadata: { id: string }; spec: { yamlSpec: string } } };
type Svc = { id: string; state: string; health: { healthy: boolean }; events: { events: { msg: string }[] } };
const kubelet = async (node: string, through: string): Promise<Svc> =>
  (
    await unary<{ messages: { services: Svc[] }[] }>(bench.machine(through), 'ServiceList', {}, { node })
  ).messages[0]!.services.find((s) => s.id === 'kubelet')!;

describe('discovery lists every machine of the cluster, workers included', () => {
  it('answers Members.cluster.talos.dev with each hostname, address and machine type, on any node', async () => {
    const [cp1] = bench.sim.nodes as [string];
    const worker = bench.sim.allNodes[3]!;
    for (const node of [cp1, worker]) {
      const list = await collect<Listed>(
        bench.cosi(cp1),
        'List',
        { namespace: 'cluster', type: 'Members.cluster.talos.dev' },
        { node },
      );
      const members = list.map((r) => ({
        id: r.resource.metadata.id,
        ...(parseYaml(r.resource.spec.yamlSpec) as { hostname: string; addresses: string[]; machineType: string }),
      }));
      expect(members.map((m) => [m.id, m.hostname, m.addresses[0], m.machineType])).toEqual([
        ['cp-1', 'cp-1', bench.sim.allNodes[0], 'controlplane'],
        ['cp-2', 'cp-2', bench.sim.allNodes[1], 'controlplane'],
        ['cp-3', 'cp-3', bench.sim.allNodes[2], 'controlplane'],
        ['worker-1', 'worker-1', worker, 'worker'],
      ]);
    }
  });
});

describe('ServiceRestart', () => {
  it('restarts kubelet on a worker reached through an endpoint: the answer, then its states back to healthy', async () => {
    const [cp1] = bench.sim.nodes as [string];
    const worker = bench.sim.allNodes[3]!;
    const reply = await unary<{ messages: { resp: string }[] }>(
      bench.machine(cp1),
      'ServiceRestart',
      { id: 'kubelet' },
      { node: worker },
    );
    expect(reply.messages[0]!.resp).toBe('Service "kubelet" restarted');
    const svc = await eventually(
      () => kubelet(worker, cp1),
      (s) => s.state === 'Running' && s.health.healthy,
    );
    const msgs = svc.events.events.map((e) => e.msg);
    const from = msgs.lastIndexOf('Service finished successfully');
    expect(from).toBeGreaterThan(-1);
    expect(msgs.slice(from, from + 3)).toEqual([
      'Service finished successfully',
      'Starting service',
      'Waiting for service "cri" to be "up", time sync, network',
    ]);
    expect(msgs.at(-1)).toBe('Health check successful');
    expect(bench.sim.destructiveCalls().serviceRestart[worker]).toBe(1);
  });

  it('refuses etcd and unknown services with Talos 1.14 texts', async () => {
    const [cp1] = bench.sim.nodes as [string];
    await expect(unary(bench.machine(cp1), 'ServiceRestart', { id: 'etcd' })).rejects.toMatchObject({
      code: grpc.status.UNKNOWN,
      details: 'service "etcd" doesn\'t support restart operation via API',
    });
    await expect(unary(bench.machine(cp1), 'ServiceRestart', { id: 'nope' })).rejects.toMatchObject({
      code: grpc.status.UNKNOWN,
      details: 'service "nope" not defined',
    });
  });
});
