/**
 * `talosctl logs <service>` (the wizard prints `talosctl -n <node> logs kubelet` for a kubelet failing its health
 * check), judged by real talosctl: machined answers a service's log from its in-memory buffer, which exists once the
 * service has run on the node (v1alpha1_server.go@v1.14.1:1324-1376, logging/circular.go@v1.14.1:236-248).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { talosProtos } from '../../src/talos/proto.js';
import { startBench, type Bench } from '../sim/helpers.js';
import { peer, runPeer, runPeerUntilStopped, skipReason } from './peers.js';

const have = Boolean(peer('talosctl'));
const protoHasLogs = 'Logs' in talosProtos().machine.MachineService.service;
const healthy = new URL('./healthy-3cp.yaml', import.meta.url).pathname;
const reason = skipReason('talosctl') || (protoHasLogs ? '' : ' (skipped: protos/machine/machine.proto has no Logs)');

describe(`talosctl logs${reason}`, () => {
  let bench: Bench;
  let cp1: string;
  let worker: string;
  beforeAll(async () => {
    bench = await startBench(healthy, { speed: 200 });
    cp1 = bench.sim.nodes[0]!;
    worker = bench.sim.allNodes.find((n) => !bench.sim.nodes.includes(n))!;
  });
  afterAll(async () => bench?.close());
  const talosctl = (...args: string[]) =>
    runPeer('talosctl', ['--talosconfig', bench.sim.talosconfigPath, ...args], { cwd: bench.dir });

  it.skipIf(!have || !protoHasLogs)('a service that ran on the node: its log is read, exit 0', async () => {
    const kubelet = await talosctl('-n', worker, 'logs', 'kubelet');
    expect(kubelet.stderr).toBe('');
    expect(kubelet.code).toBe(0);
    const etcd = await talosctl('-n', cp1, 'logs', 'etcd', '--tail', '20');
    expect(etcd.stderr).toBe('');
    expect(etcd.code).toBe(0);
  });

  it.skipIf(!have || !protoHasLogs)('a service that never ran there: its log was not registered', async () => {
    const r = await talosctl('-n', worker, 'logs', 'etcd');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('code = Unknown desc = log "etcd" was not registered');
  });

  it.skipIf(!have || !protoHasLogs)('--follow stays open until it is stopped', async () => {
    const r = await runPeerUntilStopped(
      'talosctl',
      ['--talosconfig', bench.sim.talosconfigPath, '-n', cp1, 'logs', 'etcd', '-f'],
      { stopAfterMs: 1500, cwd: bench.dir },
    );
    expect(r.stderr).not.toContain('error');
    expect(r.code).toBe(0);
  });
});
