/**
 * Node addresses given to `talosctl health`: talosctl parses them itself before it connects (cmd/talosctl/cmd/talos/
 * health.go@v1.14.1:39-70, 95-98), and machined parses the same strings again with the same function
 * (v1alpha1_cluster.go@v1.14.1:121-135 → pkg/cluster/cluster.go@v1.14.1:69-96, netip.ParseAddr). So real talosctl's
 * own answer to each malformed address is the text a real node answers a HealthCheck carrying it: the simulator's
 * answer, asked directly over gRPC, must be the same, as gRPC's Unknown. An address talosctl accepts reaches the node
 * and comes back in "discovered nodes" in Go's canonical form.
 */
import type * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { talosProtos } from '../../src/talos/proto.js';
import { collect, startBench, type Bench } from '../sim/helpers.js';
import { peer, runPeer, skipReason } from './peers.js';

const have = Boolean(peer('talosctl'));
const healthy = new URL('./healthy-3cp.yaml', import.meta.url).pathname;

const MALFORMED = [
  '1.2.3',
  '256.1.1.1',
  '01.2.3.4',
  '1.2.3.4.5',
  '1..2.3',
  '1.2.3.4:50000',
  'cp-1',
  'cp-1.example',
  '10.0.0.1 ',
  '%eth0',
  'fe80::1%',
  '1:2:3:4:5:6:7:8:9',
  '1::2::3',
  '12345::1',
  '::1.2.3',
  '1:2:3:4:5:6:7:8::',
  ':1',
];

describe(`HealthCheck with malformed node addresses answers as Talos does${skipReason('talosctl')}`, () => {
  let bench: Bench;
  let cluster: grpc.Client;
  let cp1: string;
  beforeAll(async () => {
    bench = await startBench(healthy, { speed: 200 });
    cp1 = bench.sim.nodes[0]!;
    const ctor = talosProtos().cluster.ClusterService as unknown as new (
      a: string,
      c: grpc.ChannelCredentials,
    ) => grpc.Client;
    cluster = new ctor(`${cp1}:${bench.sim.port}`, bench.creds);
  });
  afterAll(async () => {
    cluster?.close();
    await bench?.close();
  });

  const simAnswer = async (controlPlaneNodes: string[], workerNodes: string[] = []): Promise<string> => {
    try {
      await collect(cluster, 'HealthCheck', {
        waitTimeout: { seconds: 1 },
        clusterInfo: { controlPlaneNodes, workerNodes },
      });
      return 'no error';
    } catch (error) {
      const e = error as grpc.ServiceError;
      return `${e.code} ${e.details}`;
    }
  };

  it.skipIf(!have)("each malformed address: the simulator's Unknown carries real talosctl's own text", async () => {
    for (const address of MALFORMED) {
      const real = await runPeer('talosctl', [
        '--talosconfig',
        bench.sim.talosconfigPath,
        '-n',
        cp1,
        'health',
        `--control-plane-nodes=${address}`,
      ]);
      expect(real.code, address).toBe(1);
      expect(real.stderr).toMatch(/^ParseAddr\(/);
      expect(await simAnswer([address]), address).toBe(`2 ${real.stderr.trim()}`);
    }
  });

  it.skipIf(!have)('the control-plane nodes are parsed before the workers, the first failure answered', async () => {
    const real = await runPeer('talosctl', [
      '--talosconfig',
      bench.sim.talosconfigPath,
      '-n',
      cp1,
      'health',
      '--control-plane-nodes=10.0.0.1,cp-2',
      '--worker-nodes=1.2.3',
    ]);
    expect(real.stderr.trim()).toBe('ParseAddr("cp-2"): unable to parse IP');
    expect(await simAnswer(['10.0.0.1', 'cp-2'], ['1.2.3'])).toBe(`2 ${real.stderr.trim()}`);
  });

  it.skipIf(!have)('an address talosctl accepts comes back in its canonical form', async () => {
    const r = await runPeer('talosctl', [
      '--talosconfig',
      bench.sim.talosconfigPath,
      '-n',
      cp1,
      'health',
      `--control-plane-nodes=${bench.sim.nodes.join(',')},2001:DB8:0:0:1:0:0:0001,0:0:0:0:0:ffff:a00:1`,
      '--wait-timeout=1s',
    ]);
    expect(r.stderr).toContain(
      `discovered nodes: ["${bench.sim.nodes.join('" "')}" "2001:db8::1:0:0:1" "::ffff:10.0.0.1"]`,
    );
  });
});
