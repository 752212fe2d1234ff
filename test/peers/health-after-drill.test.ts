/**
 * Real talosctl judges the simulated cluster a drill has recovered: after `drill --autopilot` on lost-quorum ends
 * recovered, `talosctl health --control-plane-nodes …` (as the wizard prints it, checked server-side as talosctl does
 * by default) passes every check and exits 0 against the same simulated nodes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runScenario, type DrillRun } from '../drill/harness.js';
import { peer, runPeer, skipReason } from './peers.js';

const have = Boolean(peer('talosctl'));

describe(`talosctl health after a drill recovered lost-quorum${skipReason('talosctl')}`, { timeout: 240_000 }, () => {
  let run: DrillRun | undefined;
  beforeAll(async () => {
    if (!have) return;
    run = await runScenario('lost-quorum');
  }, 240_000);
  afterAll(async () => run?.sim.stop());

  it.skipIf(!have)('the drill ends recovered; health names every node and exits 0', async () => {
    const { sim, code, lines } = run!;
    expect(code, lines.join('\n')).toBe(0);
    const workers = sim.allNodes.filter((n) => !sim.nodes.includes(n));
    const r = await runPeer(
      'talosctl',
      [
        '--talosconfig',
        sim.talosconfigPath,
        '-n',
        sim.nodes[0]!,
        'health',
        `--control-plane-nodes=${sim.nodes.join(',')}`,
        ...(workers.length > 0 ? [`--worker-nodes=${workers.join(',')}`] : []),
        '--wait-timeout=2m',
      ],
      { timeoutMs: 150_000 },
    );
    expect(r.stderr).toContain(`discovered nodes: ["${sim.allNodes.join('" "')}"]`);
    for (const check of [
      'etcd to be healthy',
      'etcd members to be consistent across nodes',
      'etcd members to be control plane nodes',
      'apid to be ready',
      'all nodes to finish boot sequence',
    ]) {
      expect(r.stderr).toContain(`waiting for ${check}: OK`);
    }
    expect(r.code, r.stderr).toBe(0);
  });
});
