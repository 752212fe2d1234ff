/**
 * `talosctl events --tail -1` after a graceful reset failed (lost-quorum's cp-1: the leave phase needs an etcd
 * leader), run by real talosctl: machined keeps the sequence's events in its events ring, so a watcher that comes
 * afterwards is sent them, under the actor id `talosctl reset` printed (v1alpha1_events.go@v1.13.9:104-229), and
 * `--duration 1m --actor-id <id>` shows those events alone (tail_seconds, with_actor_id); the machine's stage is
 * REBOOTING, which its MachineStatus controller sets on a FATAL sequence error
 * (machine_status.go@v1.13.9:424-430) though the node runs on. A simulator saved and resumed (the drill's process
 * died, the node did not reboot) shows the same history. test/sim/reset-events-history.test.ts checks the same
 * without talosctl.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bootId, startBench, type Bench } from '../sim/helpers.js';
import { peer, runPeer, runPeerUntilStopped, skipReason } from './peers.js';

const have = Boolean(peer('talosctl'));
const work = mkdtempSync(join(tmpdir(), 'talos-dr-reset-history-'));

/**
 * What `talosctl events --tail -1` prints for the node within a moment: the reset's events as
 * "<actor id> <name> <action or error>", and the machine status lines' stage, in order (the table's two lines per
 * event, cmd/talosctl/cmd/talos/events.go@v1.13.9:64-116, joined).
 */
async function history(
  bench: Bench,
  node: string,
  tail = ['--tail', '-1'],
): Promise<{ reset: string[]; stages: string[]; raw: string }> {
  const r = await runPeerUntilStopped(
    'talosctl',
    ['--talosconfig', bench.sim.talosconfigPath, '-n', node, 'events', ...tail],
    { stopAfterMs: 2000, cwd: bench.dir },
  );
  const rows = r.stdoutBeforeStop
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length > 0 && f[0] !== '');
  const reset: string[] = [];
  const stages: string[] = [];
  // each event is two rows: "<node> <id> <type url>", then "<actor id> <name> <message…>" (the actor may be empty)
  for (let i = 0; i + 1 < rows.length; i++) {
    const type = rows[i]![2] ?? '';
    if (!type.startsWith('talos/runtime/machine.')) continue;
    const next = rows[i + 1]!;
    if (type.endsWith('.MachineStatusEvent')) stages.push(next[0]!);
    else if (/\.(Sequence|Phase|Task)Event$/.test(type)) reset.push(next.slice(0, 3).join(' '));
    i++;
  }
  return { reset, stages, raw: r.stdoutBeforeStop + r.stderr };
}

describe(
  `talosctl events after a failed graceful reset: the sequence under its actor id, the machine REBOOTING${skipReason('talosctl')}`,
  { timeout: 120_000 },
  () => {
    let bench: Bench | undefined;
    afterAll(async () => {
      await bench?.close();
      rmSync(work, { recursive: true, force: true });
    });

    it.skipIf(!have)('seen by a later watcher, and again by one on the resumed simulator', async () => {
      // speed 200: the drain's one-minute wait for a cordon that cannot be written takes 0.3 s (machine-events.ts)
      bench = await startBench('lost-quorum', { speed: 200 });
      const cp1 = bench.sim.nodes[0]!;
      const before = await bootId(bench, cp1);
      const reset = await runPeer(
        'talosctl',
        ['--talosconfig', bench.sim.talosconfigPath, '-n', cp1, 'reset', '--timeout=60s'],
        { cwd: bench.dir, timeoutMs: 90_000 },
      );
      expect(reset.stderr).toContain('sequence error: sequence failed: error running phase 4 in reset sequence');
      const actor = /actor ID: ([0-9a-f-]{36})/.exec(reset.stderr)?.[1];
      expect(actor, reset.stderr).toBeDefined();

      // v1alpha1_sequencer.go@v1.13.9:292-311 (graceful, control plane) up to the failed leave, then the sequence's
      // STOP and the NOOP that carries the error (v1alpha1_controller.go@v1.13.9:142-157)
      const phase = (name: string, task: string): string[] => [
        `${actor} ${name} START`,
        `${actor} ${task} START`,
        `${actor} ${task} STOP`,
        `${actor} ${name} STOP`,
      ];
      const expected = [
        `${actor} reset START`,
        ...phase('drain', 'cordonAndDrainNode'),
        ...phase('cleanup', 'removeAllPods'),
        ...phase('dbus', 'stopDBus'),
        ...phase('leave', 'leaveEtcd'),
        `${actor} reset STOP`,
        `${actor} reset error:`,
      ];
      const later = await history(bench, cp1);
      expect(later.reset, later.raw).toEqual(expected);
      expect(later.stages.at(-1), later.raw).toBe('REBOOTING');
      // the last minute's events that carry the reset's actor id: the same, and no machine status (it carries none)
      const filtered = await history(bench, cp1, ['--duration', '1m', '--actor-id', actor!]);
      expect(filtered.reset, filtered.raw).toEqual(expected);
      expect(filtered.stages, filtered.raw).toEqual([]);

      const statePath = join(work, 'sim-state.json');
      await bench.sim.saveState(statePath);
      await bench.close();
      bench = await startBench('ignored', { speed: 200, restoreFrom: statePath });
      expect(await bootId(bench, cp1)).toBe(before);
      const resumed = await history(bench, cp1);
      expect(resumed.reset, resumed.raw).toEqual(expected);
      expect(resumed.stages.at(-1), resumed.raw).toBe('REBOOTING');
    });
  },
);
