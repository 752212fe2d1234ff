/**
 * The reset line the wizard prints (machines/recovery/steps.ts resetLine, machines/replace-member/steps.ts step 6),
 * run by real talosctl with its default --wait. talosctl follows a reset through the node's events: it waits for a
 * TaskEvent "stopAllServices" (whatever its actor), resubscribes when the node goes away, then checks the node came
 * back: the maintenance API's Disks, else a new boot id (cmd/talosctl/pkg/talos/action/tracker.go@v1.13.9:50-76,
 * node.go@v1.13.9:67-109,121-185,219-254; cmd/talosctl/cmd/talos/reset.go@v1.13.9:119-151). A simulated node that
 * publishes no TaskEvent leaves a trainee who pastes the line waiting until talosctl's timeout (30 min by default).
 * The node comes back with its configuration (only EPHEMERAL is wiped), so its apid asks for a client certificate
 * (internal/app/apid/pkg/provider/provider.go@v1.13.9:110-121; server.ts) and the maintenance API's Disks, dialled
 * without one, fails: the new boot id is what passes the post-check.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resetLine } from '../../machines/recovery/steps.js';
import { bootId, eventually, startBench, unary, type Bench } from '../sim/helpers.js';
import { peer, runPeer, skipReason } from './peers.js';

const have = Boolean(peer('talosctl'));
const healthy = new URL('./healthy-3cp.yaml', import.meta.url).pathname;

interface Member {
  id: string;
  hostname: string;
  isLearner?: boolean;
}

async function members(bench: Bench, address: string): Promise<Member[]> {
  const res = await unary<{ messages: { members: Member[] }[] }>(bench.machine(address), 'EtcdMemberList', {});
  return res.messages[0]?.members ?? [];
}

async function etcdRunning(bench: Bench, address: string): Promise<boolean> {
  try {
    const res = await unary<{ messages: { services: { id: string; state: string }[] }[] }>(
      bench.machine(address),
      'ServiceList',
      {},
    );
    return res.messages[0]?.services.some((s) => s.id === 'etcd' && s.state === 'Running') ?? false;
  } catch {
    return false; // the node is still down
  }
}

describe(
  `talosctl reset, as the wizard prints it, waits for the node to come back${skipReason('talosctl')}`,
  {
    timeout: 150_000,
  },
  () => {
    let bench: Bench;
    beforeAll(async () => {
      bench = await startBench(healthy, { speed: 200 });
    });
    afterAll(async () => bench?.close());

    it.skipIf(!have)('the removed member is wiped; talosctl sees the reset and a new boot id, exits 0', async () => {
      const [cp1, cp2] = bench.sim.nodes as [string, string];
      // replace-member's order: the member is removed through a healthy node first (step 5), then its node is reset
      const old = (await members(bench, cp1)).find((m) => m.hostname === 'cp-2');
      expect(old).toBeDefined();
      await unary(bench.machine(cp1), 'EtcdRemoveMemberByID', { memberId: old!.id });
      const before = await bootId(bench, cp2);

      const line = resetLine(cp2, ['EPHEMERAL']);
      expect(line).toBe(`talosctl -n ${cp2} reset --graceful=false --reboot --system-labels-to-wipe EPHEMERAL`);
      const args = line.split(' ').slice(1);
      const r = await runPeer('talosctl', ['--talosconfig', bench.sim.talosconfigPath, ...args, '--timeout=90s'], {
        cwd: bench.dir,
        timeoutMs: 110_000,
      });
      expect(r.code, r.stderr).toBe(0);
      // the reset's own events, shown because they carry the actor id Reset answered with; the stopAllServices task
      // that follows the last phase shown is the condition met, not shown itself (node.go@v1.13.9:229-241). Only the
      // phases published as the node goes down are asserted: talosctl opens its events watch beside the boot-id read
      // and the Reset (node.go@v1.13.9:66-90), with tail_events 0, so the events published as Reset answers can come
      // before its watch is registered and are then not sent to it, on a loaded machine as on a real node
      const lines = r.stderr.split('\n');
      const met = lines.findIndex((l) => l.endsWith('events check condition met'));
      expect(met, r.stderr).toBeGreaterThan(0);
      expect(lines[met - 1]).toMatch(/phase: stopEverything action: START$/);
      expect(r.stderr).toContain('post check passed');

      const after = await bootId(bench, cp2);
      expect(after).toMatch(/^[0-9a-f-]{36}$/);
      expect(after).not.toBe(before);
      // it joins again as a new member (wiped: another id), and etcd runs on it
      await eventually(
        () => members(bench, cp1),
        (list) => list.some((m) => m.hostname === 'cp-2' && m.id !== old!.id && !m.isLearner),
        20_000,
      );
      await eventually(
        () => etcdRunning(bench, cp2),
        (running) => running,
        20_000,
      );
    });
  },
);

describe(
  `plain talosctl reset (graceful) on a control-plane node without quorum fails with the sequence's error${skipReason('talosctl')}`,
  {
    timeout: 120_000,
  },
  () => {
    let bench: Bench;
    beforeAll(async () => {
      // speed 200: the drain's one-minute wait for a cordon that cannot be written takes 0.3 s (machine-events.ts)
      bench = await startBench('lost-quorum', { speed: 200 });
    });
    afterAll(async () => bench?.close());

    it.skipIf(!have)(
      'the leave phase fails: talosctl exits non-zero with "sequence error", the node runs on',
      async () => {
        const cp1 = bench.sim.nodes[0]!;
        const before = await bootId(bench, cp1);
        // graceful is talosctl's default (cmd/talosctl/cmd/talos/reset.go@v1.13.9:188): the node must leave etcd first,
        // which its member without a leader refuses; machined publishes the failure under the reset's actor id
        // (v1alpha1_controller.go@v1.13.9:142-157) and talosctl stops on it (node.go@v1.13.9:274-295). Before, the
        // simulated node published nothing and talosctl waited out its --timeout.
        const r = await runPeer(
          'talosctl',
          ['--talosconfig', bench.sim.talosconfigPath, '-n', cp1, 'reset', '--timeout=60s'],
          {
            cwd: bench.dir,
            timeoutMs: 90_000,
          },
        );
        expect(r.code, r.stderr).not.toBe(0);
        // the sequence's first events (its START, drain's START) are published as Reset answers, while talosctl,
        // which sends Reset as it opens its events stream, is still starting: some runs here did not print them, so
        // only the later ones are asserted
        expect(r.stderr).toContain('phase: leave action: START');
        expect(r.stderr).toContain('task: leaveEtcd action: STOP');
        expect(r.stderr).toMatch(
          /sequence error: sequence failed: error running phase 4 in reset sequence: task 1\/1: failed, failed to leave cluster: 1 error\(s\) occurred:/,
        );
        expect(r.stderr).toContain('etcdserver: no leader');
        expect(r.stderr).not.toContain('post check passed');
        // the node did not reset: the same boot still answers
        expect(await bootId(bench, cp1)).toBe(before);
      },
    );
  },
);
