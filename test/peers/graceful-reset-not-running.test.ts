/**
 * Plain `talosctl reset --reboot --system-labels-to-wipe EPHEMERAL` (graceful, talosctl's default:
 * cmd/talosctl/cmd/talos/reset.go@v1.13.9:188) on a control-plane node whose etcd crash-loops, in a cluster without
 * quorum, run by real talosctl with its default --wait. machined's leaveEtcd skips a member whose etcd service is not
 * Running, Stopping or Failed (internal/app/machined/pkg/runtime/v1alpha1/v1alpha1_sequencer_tasks.go@v1.13.9:
 * 901-937), so the reset goes on without a leader: the node wipes, boots again and talosctl's post-check passes on
 * its new boot id. Only a running member tries to leave and fails without one (reset-wait.test.ts, on cp-1).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bootId, startBench, type Bench } from '../sim/helpers.js';
import { peer, runPeer, skipReason } from './peers.js';

const have = Boolean(peer('talosctl'));

describe(
  `plain talosctl reset (graceful) on a crash-looping control-plane node without quorum${skipReason('talosctl')}`,
  { timeout: 120_000 },
  () => {
    let bench: Bench;
    beforeAll(async () => {
      bench = await startBench('lost-quorum', { speed: 200 });
    });
    afterAll(async () => bench?.close());

    it.skipIf(!have)('leave is skipped: the node resets and boots again, talosctl exits 0', async () => {
      const cp2 = bench.sim.nodes[1]!;
      const before = await bootId(bench, cp2);
      const r = await runPeer(
        'talosctl',
        [
          '--talosconfig',
          bench.sim.talosconfigPath,
          '-n',
          cp2,
          'reset',
          '--reboot',
          '--system-labels-to-wipe',
          'EPHEMERAL',
          '--timeout=60s',
        ],
        { cwd: bench.dir, timeoutMs: 90_000 },
      );
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).not.toContain('sequence error');
      expect(r.stderr).toContain('post check passed');
      const after = await bootId(bench, cp2);
      expect(after).toMatch(/^[0-9a-f-]{36}$/);
      expect(after).not.toBe(before);
    });
  },
);
