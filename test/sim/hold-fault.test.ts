/**
 * The `hold` fault (src/sim/faults.ts): the node takes the call and never answers it, so the call stays open on the
 * wire until the caller gives up, for `times` calls; later calls are answered as usual. It models a node whose
 * machined is wedged on one call (test/drill/boot-id-unanswered.test.ts holds the boot-id Read before each Reset).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { collect, concatBytes, startBench, unary, type Bench } from './helpers.js';

const work = mkdtempSync(join(tmpdir(), 'talos-dr-hold-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
let bench: Bench | undefined;
afterEach(async () => {
  await bench?.close();
  bench = undefined;
});

function holdingScenario(fault: string): string {
  const path = join(work, 'hold.yaml');
  writeFileSync(
    path,
    [
      'name: hold',
      'description: A test scenario.',
      'expectedOutcome: recovered',
      'rightAnswer: Recover.',
      'nodes:',
      '  - { hostname: cp-1, type: controlplane, etcd: no-quorum }',
      '  - { hostname: cp-2, type: controlplane, etcd: crashloop }',
      '  - { hostname: cp-3, type: controlplane, etcd: crashloop }',
      'faults:',
      `  - ${fault}`,
      '',
    ].join('\n'),
  );
  return path;
}

const BOOT_ID = { path: '/proc/sys/kernel/random/boot_id' };
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

async function readBootId(b: Bench, address: string, opts: { timeoutMs?: number; node?: string } = {}) {
  return concatBytes(await collect(b.machine(address), 'Read', BOOT_ID, opts))
    .toString()
    .trim();
}

describe('a hold fault', () => {
  it('holds the first Read open until the caller’s deadline, answers the next, and leaves other nodes alone', async () => {
    bench = await startBench(holdingScenario('{ kind: hold, node: cp-2, method: Read, times: 1 }'));
    const [cp1, cp2] = bench.sim.nodes as [string, string];
    const started = Date.now();
    await expect(readBootId(bench, cp2, { timeoutMs: 400 })).rejects.toMatchObject({ code: 4 });
    // held, not refused: nothing came back before the caller's own deadline
    expect(Date.now() - started).toBeGreaterThanOrEqual(390);
    expect(await readBootId(bench, cp2)).toMatch(UUID);
    expect(await readBootId(bench, cp1)).toMatch(UUID);
    // other methods of the same node are answered
    await expect(unary(bench.machine(cp2), 'Version', {})).resolves.toBeDefined();
  });

  it('holds a call forwarded to the node by another node’s apid too, as many calls as `times` says', async () => {
    bench = await startBench(holdingScenario('{ kind: hold, node: cp-2, method: Read, times: 2 }'));
    const [cp1, cp2] = bench.sim.nodes as [string, string];
    await expect(readBootId(bench, cp1, { node: cp2, timeoutMs: 300 })).rejects.toMatchObject({ code: 4 });
    await expect(readBootId(bench, cp2, { timeoutMs: 300 })).rejects.toMatchObject({ code: 4 });
    expect(await readBootId(bench, cp1, { node: cp2 })).toMatch(UUID);
  });
});
