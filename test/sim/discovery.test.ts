/**
 * Cluster discovery turned off (scenario `discovery: false`, shipped as lost-quorum-no-discovery): every machine config
 * says cluster.discovery.enabled: false, and Members.cluster.talos.dev lists nothing on any node, as on Talos, where
 * no affiliate is written or pulled then (siderolabs/talos internal/app/machined/pkg/controllers/cluster/
 * local_affiliate.go@v1.13.0, member.go@v1.13.0). The default keeps listing every machine.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { afterEach, describe, expect, it } from 'vitest';
import { collect, startBench, type Bench } from './helpers.js';

type Listed = { resource: { metadata: { id: string } } };

let bench: Bench | null = null;
afterEach(async () => {
  await bench?.close();
  bench = null;
});

const membersOn = async (b: Bench, node: string): Promise<string[]> =>
  (
    await collect<Listed>(
      b.cosi(b.sim.nodes[0]!),
      'List',
      { namespace: 'cluster', type: 'Members.cluster.talos.dev' },
      { node },
    )
  ).map((r) => r.resource.metadata.id);

/** cluster.discovery.enabled of a given machine config (the trainee's copy in the incident folder). */
const discoveryInGivenConfig = async (b: Bench): Promise<unknown> => {
  const written = await b.sim.writeGiven(join(b.dir, 'incident'));
  const config = written.find((p) => p.endsWith('.yaml'));
  if (!config) throw new Error(`no machine config among ${written.join(', ')}`);
  const v1alpha1 = parseAllDocuments(readFileSync(config, 'utf8'))
    .map((d) => d.toJS() as { version?: string; cluster?: { discovery?: { enabled?: unknown } } })
    .find((d) => d.version === 'v1alpha1');
  return v1alpha1?.cluster?.discovery?.enabled;
};

describe('cluster discovery', () => {
  it('off: the configs say so and no node lists any member, control plane or worker', async () => {
    bench = await startBench('lost-quorum-no-discovery', { speed: 200 });
    expect(await discoveryInGivenConfig(bench)).toBe(false);
    for (const node of bench.sim.allNodes) expect(await membersOn(bench, node)).toEqual([]);
  });

  it('on (the default): every configured machine is listed, workers included', async () => {
    bench = await startBench('lost-quorum', { speed: 200 });
    expect(await discoveryInGivenConfig(bench)).toBe(true);
    expect(await membersOn(bench, bench.sim.allNodes[3]!)).toEqual(['cp-1', 'cp-2', 'cp-3', 'worker-1']);
  });
});
