import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { listScenarios, loadScenario, ScenarioError } from '../../src/sim/index.js';
import { etcdState, startBench, unary } from './helpers.js';

const work = mkdtempSync(join(tmpdir(), 'talos-dr-scenarios-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const ALL = [
  'etcd-down-raw-copy',
  'flaky-network',
  'hardware-failure',
  'init-node',
  'lost-quorum',
  'quorum-intact',
  'single-node',
  'stuck-waiting',
];

type StatusReply = {
  messages: {
    metadata: { hostname: string; error: string };
    memberStatus: { leader: string; errors: string[] } | null;
  }[];
};

describe('shipped scenarios', () => {
  it('lists all eight rows of PRODUCT.md §4 with a time limit and an expected outcome', () => {
    const list = listScenarios();
    expect(list.map((s) => s.name)).toEqual(ALL);
    for (const s of list) {
      expect(s.timeLimitSec).toBeGreaterThan(0);
      expect(s.description.length).toBeGreaterThan(20);
    }
    expect(list.find((s) => s.name === 'quorum-intact')?.expectedOutcome).toBe('stopped-quorum-intact');
    expect(list.find((s) => s.name === 'single-node')?.given.map((g) => g.kind)).toEqual([
      'machine-config',
      'snapshot',
    ]);
  });

  it('quorum-intact: two healthy members with a leader, the third powered off', async () => {
    const bench = await startBench('quorum-intact');
    try {
      const [cp1, cp2, cp3] = bench.sim.nodes as [string, string, string];
      const res = await unary<StatusReply>(
        bench.machine(cp1),
        'EtcdStatus',
        {},
        { nodes: [cp1, cp2, cp3], timeoutMs: 3000 },
      );
      expect(res.messages[0]?.memberStatus?.errors).toEqual([]);
      expect(res.messages[0]?.memberStatus?.leader).not.toBe('0');
      expect(res.messages[0]?.memberStatus?.leader).toBe(res.messages[1]?.memberStatus?.leader);
      expect(res.messages[2]?.metadata.error).toMatch(/code = Unavailable/);
      const members = await unary<{ messages: { members: unknown[] }[] }>(bench.machine(cp1), 'EtcdMemberList', {
        queryLocal: true,
      });
      expect(members.messages[0]?.members).toHaveLength(3);
    } finally {
      await bench.close();
    }
  });

  it('init-node: the first node is of type init', async () => {
    const bench = await startBench('init-node');
    try {
      const cp1 = bench.sim.nodes[0]!;
      const mt = await unary<{ resource: { spec: { yamlSpec: string; protoSpec: Buffer } } }>(bench.cosi(cp1), 'Get', {
        namespace: 'config',
        type: 'MachineTypes.config.talos.dev',
        id: 'machine-type',
      });
      expect(mt.resource.spec.yamlSpec.trim()).toBe('init');
      expect([...mt.resource.spec.protoSpec]).toEqual([0x08, 0x01]);
    } finally {
      await bench.close();
    }
  });

  it("etcd-down-raw-copy: every etcd crash-loops with Talos's restart text", async () => {
    const bench = await startBench('etcd-down-raw-copy');
    try {
      for (const address of bench.sim.nodes) {
        const res = await unary<{
          messages: { services: { id: string; state: string; events: { events: { msg: string }[] } }[] }[];
        }>(bench.machine(address), 'ServiceList', {});
        const etcd = res.messages[0]?.services.find((s) => s.id === 'etcd');
        expect(etcd?.state).toBe('Waiting');
        expect(etcd?.events.events.at(-1)?.msg).toBe(
          'Error running Containerd(etcd), going to restart forever: task "etcd" failed: exit code 2',
        );
      }
    } finally {
      await bench.close();
    }
  });

  it('stuck-waiting: cp-3 waits for time sync; Bootstrap there says time is not in sync', async () => {
    const bench = await startBench('stuck-waiting');
    try {
      const cp3 = bench.sim.nodes[2]!;
      expect(await etcdState(bench, cp3)).toBe('Waiting');
      const res = await unary<{ messages: { services: { id: string; events: { events: { msg: string }[] } }[] }[] }>(
        bench.machine(cp3),
        'ServiceList',
        {},
      );
      expect(res.messages[0]?.services.find((s) => s.id === 'etcd')?.events.events.at(-1)?.msg).toBe(
        'Waiting for time sync',
      );
      await expect(unary(bench.machine(cp3), 'Bootstrap', { recoverEtcd: true })).rejects.toMatchObject({
        code: 9,
        details: 'time is not in sync yet',
      });
    } finally {
      await bench.close();
    }
  });

  it('single-node: etcd waits in Preparing with no data; the given snapshot is older than the lost data', async () => {
    const bench = await startBench('single-node');
    try {
      const solo = bench.sim.nodes[0]!;
      expect(await etcdState(bench, solo)).toBe('Preparing');
      const written = await bench.sim.writeGiven(join(bench.dir, 'incident'));
      expect(written.some((p) => p.endsWith('given/snapshots/etcd-nightly.snapshot'))).toBe(true);
      expect(bench.sim.view()[0]?.etcdRevision).toBeNull();
    } finally {
      await bench.close();
    }
  });
});

describe('user-written scenarios are checked with one clear sentence', () => {
  const write = (name: string, body: string): string => {
    const path = join(work, name);
    writeFileSync(path, body);
    return path;
  };
  const base = 'name: x\ndescription: A test.\nexpectedOutcome: recovered\nrightAnswer: Recover.\n';

  it.each([
    [
      'an unknown key',
      `${base}nodes:\n  - { hostname: a, type: controlplane, colour: red }\n`,
      /unknown key "colour" in nodes\[0\]/,
    ],
    ['no nodes', `${base}nodes: []\n`, /between 1 and 64 nodes, not 0/],
    ['only workers', `${base}nodes:\n  - { hostname: a, type: worker }\n`, /at least one control-plane/],
    [
      'a bad type',
      `${base}nodes:\n  - { hostname: a, type: master }\n`,
      /nodes\[0\]\.type must be one of init, controlplane, worker/,
    ],
    [
      'a fault on a missing node',
      `${base}nodes:\n  - { hostname: a, type: controlplane }\nfaults:\n  - { kind: latency, node: b, ms: 5 }\n`,
      /faults\[0\]\.node "b" is not the hostname of any node/,
    ],
    ['broken YAML', 'name: [\n', /is not valid YAML/],
  ])('refuses %s', (_what, body, message) => {
    const path = write(`bad-${Math.random()}.yaml`, body);
    let error: unknown;
    try {
      loadScenario(path);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ScenarioError);
    expect((error as Error).message).toMatch(message);
    expect((error as Error).message.split('\n')).toHaveLength(1);
  });

  it('names an unknown shipped scenario', () => {
    expect(() => loadScenario('lost-quorom')).toThrow(
      'There is no scenario "lost-quorom"; run "talos-dr drill --list" to see the 8 scenarios.',
    );
  });
});
