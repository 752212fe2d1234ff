import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBench, unary, type Bench } from './helpers.js';

let bench: Bench;
beforeAll(async () => {
  bench = await startBench('lost-quorum');
});
afterAll(async () => bench?.close());

describe('smoke', () => {
  it('answers Version with nodes fan-out', async () => {
    const [a, b] = bench.sim.nodes;
    const res = await unary<{ messages: { metadata: { hostname: string }; version: { tag: string } }[] }>(
      bench.machine(a!),
      'Version',
      {},
      { nodes: [a!, b!] },
    );
    expect(res.messages.map((m) => m.metadata.hostname)).toEqual([a, b]);
    expect(res.messages[0]?.version.tag).toBe('v1.11.6');
  });
});
