/**
 * `talosctl -n <node> reboot` as the wizard prints it (the NOSPACE quota advice: reboot the control-plane nodes one
 * at a time), judged by real talosctl: it waits, through the node's events, for the machine to be RUNNING and ready
 * again, then for a new boot id (cmd/talosctl/pkg/talos/action/tracker.go@v1.13.0:39-82, node.go@v1.13.0:67-110), so
 * the simulated node must publish its machine status on the events stream as machined does
 * (controllers/runtime/machine_status.go@v1.14.1:150-258).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBench, type Bench } from '../sim/helpers.js';
import { peer, runPeer, skipReason } from './peers.js';

const have = Boolean(peer('talosctl'));
const healthy = new URL('./healthy-3cp.yaml', import.meta.url).pathname;

describe(`talosctl reboot waits for the node to come back ready${skipReason('talosctl')}`, { timeout: 120_000 }, () => {
  let bench: Bench;
  beforeAll(async () => {
    bench = await startBench(healthy, { speed: 200 });
  });
  afterAll(async () => bench?.close());

  it.skipIf(!have)('a control-plane node reboots; talosctl sees it ready with a new boot id and exits 0', async () => {
    const cp2 = bench.sim.nodes[1]!;
    const bootId = async (): Promise<string> =>
      (
        await runPeer('talosctl', [
          '--talosconfig',
          bench.sim.talosconfigPath,
          '-n',
          cp2,
          'read',
          '/proc/sys/kernel/random/boot_id',
        ])
      ).stdout.trim();
    const before = await bootId();
    const r = await runPeer(
      'talosctl',
      ['--talosconfig', bench.sim.talosconfigPath, '-n', cp2, 'reboot', '--timeout=90s', '--progress=plain'],
      { cwd: bench.dir, timeoutMs: 100_000 },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('post check passed');
    const after = await bootId();
    expect(after).toMatch(/^[0-9a-f-]{36}$/);
    expect(after).not.toBe(before);
  });
});

describe(
  `talosctl reboot on a lost-quorum control-plane node never sees it ready${skipReason('talosctl')}`,
  { timeout: 120_000 },
  () => {
    let bench: Bench;
    beforeAll(async () => {
      bench = await startBench('lost-quorum', { speed: 200 });
    });
    afterAll(async () => bench?.close());

    it.skipIf(!have)('the node comes back RUNNING but not ready (etcd); talosctl gives up at its timeout', async () => {
      const cp2 = bench.sim.nodes[1]!;
      const r = await runPeer(
        'talosctl',
        ['--talosconfig', bench.sim.talosconfigPath, '-n', cp2, 'reboot', '--timeout=15s', '--progress=plain'],
        { cwd: bench.dir, timeoutMs: 100_000 },
      );
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/stage: RUNNING ready: false unmetCond: \[.*services.*etcd not (healthy|running)/);
      expect(r.stderr).not.toContain('post check passed');
    });
  },
);
