import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { collect, concatBytes, eventually, startBench, unary, upload, type Bench } from './helpers.js';

const work = mkdtempSync(join(tmpdir(), 'talos-dr-faults-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
let bench: Bench | undefined;
afterEach(async () => {
  await bench?.close();
  bench = undefined;
});

/** A user-written scenario (the simulator accepts a path), for faults that need real time to observe. */
function scenarioFile(name: string, faults: string): string {
  const path = join(work, `${name}.yaml`);
  writeFileSync(
    path,
    [
      `name: ${name}`,
      'description: A test scenario.',
      'expectedOutcome: recovered',
      'rightAnswer: Recover.',
      'nodes:',
      '  - { hostname: cp-1, type: controlplane, etcd: no-quorum }',
      '  - { hostname: cp-2, type: controlplane, etcd: crashloop }',
      '  - { hostname: cp-3, type: controlplane, etcd: crashloop }',
      'faults:',
      faults,
      '',
    ].join('\n'),
  );
  return path;
}

describe('flaky-network faults', () => {
  it('cuts the snapshot stream twice after 40000 bytes, ending with status OK, then streams it whole', async () => {
    bench = await startBench('flaky-network');
    const cp1 = bench.sim.nodes[0]!;
    for (let i = 0; i < 2; i++) {
      const cut = concatBytes(await collect(bench.machine(cp1), 'EtcdSnapshot', {}));
      expect(cut.length).toBe(40000);
      expect(cut.length % 512).not.toBe(32);
    }
    const whole = concatBytes(await collect(bench.machine(cp1), 'EtcdSnapshot', {}));
    expect(whole.length).toBeGreaterThan(40000);
    expect(whole.length % 512).toBe(32);
  });

  it("fails EtcdStatus on cp-3 twice with the scenario's status, then behaves normally", async () => {
    bench = await startBench('flaky-network');
    const cp3 = bench.sim.nodes[2]!;
    for (let i = 0; i < 2; i++) {
      await expect(unary(bench.machine(cp3), 'EtcdStatus', {}, { timeoutMs: 300 })).rejects.toMatchObject({
        code: 14,
        details: 'connection reset by peer',
      });
    }
    // Third time: the crash-looping etcd does not serve, so the call runs into the caller's deadline.
    await expect(unary(bench.machine(cp3), 'EtcdStatus', {}, { timeoutMs: 300 })).rejects.toMatchObject({ code: 4 });
  });

  it('shows an in-band failure for cp-3 in a fan-out while the others answer', async () => {
    bench = await startBench('flaky-network');
    const [cp1, , cp3] = bench.sim.nodes as [string, string, string];
    const res = await unary<{ messages: { metadata: { hostname: string; error: string } }[] }>(
      bench.machine(cp1),
      'EtcdStatus',
      {},
      { nodes: [cp1, cp3], timeoutMs: 3000 },
    );
    expect(res.messages.map((m) => [m.metadata.hostname, m.metadata.error])).toEqual([
      [cp1, ''],
      [cp3, 'rpc error: code = Unavailable desc = connection reset by peer'],
    ]);
  });

  it('reboots cp-1 when the upload arrives: the call fails and the node is away for a while', async () => {
    bench = await startBench('flaky-network');
    const cp1 = bench.sim.nodes[0]!;
    await expect(upload(bench.machine(cp1), Buffer.alloc(8192, 1))).rejects.toMatchObject({
      code: 14,
      details: 'error reading from server: EOF',
    });
    expect(bench.sim.view()[0]?.reachable).toBe(false);
    await eventually(
      () => bench!.sim.view()[0]?.reachable,
      (r) => r === true,
    );
  });

  it('adds latency to every call of a node', async () => {
    bench = await startBench(scenarioFile('slow', '  - { kind: latency, node: cp-1, ms: 250 }'), { speed: 1 });
    const cp1 = bench.sim.nodes[0]!;
    await unary(bench.machine(cp1), 'Version', {}); // connection set up outside the measurement
    const started = Date.now();
    await unary(bench.machine(cp1), 'Version', {});
    expect(Date.now() - started).toBeGreaterThanOrEqual(240);
  });

  it('makes a node unreachable for a while, then lets it answer again', async () => {
    bench = await startBench(scenarioFile('gone', '  - { kind: unreachable, node: cp-2, forSec: 2 }'), { speed: 1 });
    const [cp1, cp2] = bench.sim.nodes as [string, string];
    const res = await unary<{ messages: { metadata: { error: string } }[] }>(
      bench.machine(cp1),
      'Version',
      {},
      { nodes: [cp2] },
    );
    expect(res.messages[0]?.metadata.error).toMatch(
      /^rpc error: code = Unavailable desc = connection error: .*connection refused/,
    );
    await expect(unary(bench.machine(cp2), 'Version', {})).rejects.toMatchObject({ code: 14 });
    await eventually(
      () =>
        unary(bench!.machine(cp2), 'Version', {}).then(
          () => 'ok',
          () => 'down',
        ),
      (r) => r === 'ok',
      5000,
    );
  });
});
