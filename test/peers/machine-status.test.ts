/**
 * `talosctl get machinestatus`, judged by real talosctl: the MachineStatuses.runtime.talos.dev resource a node keeps
 * (runtime/machine: stage and readiness, pkg/machinery/resources/runtime/machine_status.go@v1.13.9:17-46), with its
 * definition's STAGE and READY columns (:56-76) and its singular display type as TYPE
 * (cmd/talosctl/cmd/talos/output/table.go@v1.13.9:49-83). A node that took a Reset and is still acting on it shows
 * the stage `resetting` (controllers/runtime/machine_status.go@v1.13.9:404-420).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBench, unary, type Bench } from '../sim/helpers.js';
import { simNode } from '../drill/interrupted.js';
import { peer, runPeer, skipReason } from './peers.js';

const have = Boolean(peer('talosctl'));
const healthy = new URL('./healthy-3cp.yaml', import.meta.url).pathname;

describe(`get machinestatus${skipReason('talosctl')}`, () => {
  let bench: Bench;
  beforeAll(async () => {
    bench = await startBench(healthy, { speed: 200 });
  });
  afterAll(async () => bench?.close());

  const talosctl = (node: string, ...args: string[]) =>
    runPeer('talosctl', ['--talosconfig', bench.sim.talosconfigPath, '-n', node, ...args], {
      cwd: bench.dir,
      timeoutMs: 30_000,
    });

  it.skipIf(!have)('a running node: stage running and ready, in the table and in YAML', async () => {
    const node = bench.sim.nodes[0]!;
    const table = await talosctl(node, 'get', 'machinestatus');
    expect(table.stderr).toBe('');
    expect(table.stdout).toMatch(/NODE\s+NAMESPACE\s+TYPE\s+ID\s+VERSION\s+STAGE\s+READY/);
    expect(table.stdout).toMatch(/runtime\s+MachineStatus\s+machine\s+1\s+running\s+true/);
    const yaml = await talosctl(node, 'get', 'ms', 'machine', '-o', 'yaml');
    expect(yaml.stdout).toContain('stage: running');
    expect(yaml.stdout).toContain('ready: true');
  });

  it.skipIf(!have)('a node that took a Reset and still acts on it: stage resetting', async () => {
    const node = bench.sim.nodes[2]!;
    // the node accepts the Reset and starts going down only later, as a real one stopping its pods first
    const n = simNode(bench.sim, node);
    n.reset = (wipe, reboot) => {
      n.state.pendingReset = { ...wipe, reboot };
    };
    await unary(bench.machine(node), 'Reset', {
      graceful: false,
      reboot: true,
      systemPartitionsToWipe: [{ label: 'EPHEMERAL', wipe: true }],
    });
    const table = await talosctl(node, 'get', 'machinestatus');
    expect(table.stdout).toMatch(/runtime\s+MachineStatus\s+machine\s+\d+\s+resetting\s+true/);
  });
});
