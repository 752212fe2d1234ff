import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { listScenarios, loadScenario, ScenarioError, SimStartError, startSimulator } from '../../src/sim/index.js';
import { MAX_NODES, nodeAddress } from '../../src/sim/scenario.js';
import { etcdState, randomAddressBase, startBench, tcpConnect, unary } from './helpers.js';

const work = mkdtempSync(join(tmpdir(), 'talos-dr-scenarios-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const ALL = [
  'etcd-down-raw-copy',
  'flaky-network',
  'hardware-failure',
  'init-node',
  'lost-quorum',
  'lost-quorum-5',
  'lost-quorum-no-discovery',
  'member-crashloop',
  'member-crashloop-5',
  'member-hardware',
  'member-unreachable',
  'nospace',
  'planned-swap',
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
  it('lists every shipped scenario with a time limit, an expected outcome and the right procedure', () => {
    const list = listScenarios();
    expect(list.map((s) => s.name)).toEqual(ALL);
    for (const s of list) {
      expect(s.timeLimitSec).toBeGreaterThan(0);
      expect(s.description.length).toBeGreaterThan(20);
    }
    expect(list.find((s) => s.name === 'quorum-intact')?.expectedOutcome).toBe('member-replaced');
    const procedures = Object.fromEntries(list.map((s) => [s.name, s.procedure]));
    expect(procedures).toMatchObject({
      'lost-quorum': 'full-recovery',
      'lost-quorum-5': 'full-recovery',
      'member-crashloop': 'replace-member',
      'member-crashloop-5': 'replace-member',
      'member-hardware': 'replace-member',
      'member-unreachable': 'wait',
      nospace: 'nospace',
      'planned-swap': 'replace-member',
      'quorum-intact': 'replace-member',
    });
    // a planned swap names the machine to take out; no other scenario does
    expect(list.filter((s) => s.retire !== undefined).map((s) => [s.name, s.retire])).toEqual([
      ['planned-swap', 'cp-3'],
    ]);
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
      // Powered off from the start: nothing listens on its address, as on a real machine that is off, so a client
      // that dials it gets no apid status at all (before, its listener answered every call with an in-band error).
      expect(await tcpConnect(cp3, bench.sim.port)).toBe('ECONNREFUSED');
      expect(await tcpConnect(cp1, bench.sim.port)).toBe('connected');
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
    ['no nodes', `${base}nodes: []\n`, /between 1 and 256 nodes, not 0/],
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
    [
      'members that all restarted without quorum yet are a majority',
      `${base}nodes:\n  - { hostname: a, type: controlplane, etcd: not-serving }\n  - { hostname: b, type: controlplane, etcd: not-serving }\n  - { hostname: c, type: controlplane, etcd: not-serving }\n`,
      /a is "not-serving" but 3 of 3 etcd members run, which is a quorum; mark it healthy or stop more members/,
    ],
    [
      'a healthy member without a majority',
      `${base}nodes:\n  - { hostname: a, type: controlplane, etcd: healthy }\n  - { hostname: b, type: controlplane, etcd: crashloop }\n  - { hostname: c, type: controlplane, etcd: stopped }\n`,
      /a is "healthy" but only 1 of 3 etcd members run, which is no quorum; mark it no-quorum or run more members/,
    ],
    [
      'an alarm on a worker',
      `${base}nodes:\n  - { hostname: a, type: controlplane }\n  - { hostname: w, type: worker }\nalarms:\n  - { node: w, alarm: NOSPACE }\n`,
      /alarms\[0\]\.node "w" is a worker, which runs no etcd/,
    ],
    [
      'an unknown alarm',
      `${base}nodes:\n  - { hostname: a, type: controlplane }\nalarms:\n  - { node: a, alarm: FULL }\n`,
      /alarms\[0\]\.alarm must be one of NOSPACE, CORRUPT/,
    ],
    [
      'a worker to retire',
      `${base}retire: w\nnodes:\n  - { hostname: a, type: controlplane }\n  - { hostname: w, type: worker }\n`,
      /retire "w" is not the hostname of a control-plane node/,
    ],
    [
      'an unknown machine to retire',
      `${base}retire: cp-9\nnodes:\n  - { hostname: a, type: controlplane }\n`,
      /retire "cp-9" is not the hostname of a control-plane node/,
    ],
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

  it('refuses a quota or alarms on real etcd processes, before anything starts', async () => {
    const dir = join(work, `real-${Math.random()}`);
    const error = await startSimulator({
      scenario: 'nospace',
      dir,
      port: 0,
      addressBase: randomAddressBase(),
      etcd: 'real',
    }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(SimStartError);
    expect((error as Error).message).toBe(
      'Scenario nospace sets an etcd quota or alarms, which only the built-in etcd model plays; start it without --etcd real.',
    );
  });

  it('names an unknown shipped scenario', () => {
    expect(() => loadScenario('lost-quorom')).toThrow(
      `There is no scenario "lost-quorom"; run "talos-dr drill --list" to see the ${listScenarios().length} scenarios.`,
    );
  });
});

describe('large clusters (bench/fanout.mjs runs 200 nodes)', () => {
  const healthy = (n: number): string =>
    [
      'name: big',
      'description: Many healthy control-plane nodes.',
      'expectedOutcome: nothing-to-do',
      'rightAnswer: Nothing to do.',
      'nodes:',
      ...Array.from({ length: n }, (_, i) => `  - { hostname: cp-${i + 1}, type: controlplane }`),
      '',
    ].join('\n');

  it('gives every node its own address, counting on past .255 into the next block', () => {
    expect(nodeAddress('127.0.0.2', 0)).toBe('127.0.0.2');
    expect(nodeAddress('127.0.0.2', 253)).toBe('127.0.0.255');
    expect(nodeAddress('127.0.0.2', 254)).toBe('127.0.1.0');
    expect(nodeAddress('127.3.255.250', 10)).toBe('127.4.0.4');
    const addresses = Array.from({ length: MAX_NODES }, (_, i) => nodeAddress('127.0.0.2', i));
    expect(new Set(addresses).size).toBe(MAX_NODES);
  });

  it(`accepts ${MAX_NODES} nodes and refuses one more`, () => {
    expect(loadScenario(writeScenario(work, 'max.yaml', healthy(MAX_NODES))).nodes).toHaveLength(MAX_NODES);
    expect(() => loadScenario(writeScenario(work, 'over.yaml', healthy(MAX_NODES + 1)))).toThrow(
      `between 1 and ${MAX_NODES} nodes, not ${MAX_NODES + 1}`,
    );
  });

  it('refuses an address base that leaves no room for the nodes, before it listens anywhere', async () => {
    const error = await startSimulator({
      scenario: writeScenario(work, 'five.yaml', healthy(5)),
      dir: join(work, 'no-room'),
      port: 0,
      addressBase: '127.255.255.252',
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SimStartError);
    expect((error as SimStartError).kind).toBe('usage');
    expect((error as Error).message).toBe(
      '--address-base 127.255.255.252 leaves no room for 5 nodes; pick a lower address, e.g. 127.0.0.2.',
    );
  });

  it('serves 70 nodes across a /24 boundary: one fan-out reaches all of them, each with the same leader', async () => {
    const [a, b] = randomAddressBase().split('.').slice(1, 3).map(Number) as [number, number];
    const base = `127.${a}.${Math.min(b, 250)}.220`;
    const bench = await startBench(writeScenario(work, 'seventy.yaml', healthy(70)), { addressBase: base });
    try {
      const nodes = bench.sim.nodes;
      expect(nodes).toHaveLength(70);
      expect(new Set(nodes).size).toBe(70);
      expect(nodes.at(-1)).toBe(nodeAddress(base, 69));
      const res = await unary<StatusReply>(
        bench.machine(nodes[0] as string),
        'EtcdStatus',
        {},
        { nodes, timeoutMs: 30000 },
      );
      expect(res.messages.map((m) => m.metadata.hostname)).toEqual(nodes);
      expect(res.messages.every((m) => m.memberStatus?.errors.length === 0)).toBe(true);
      expect(new Set(res.messages.map((m) => m.memberStatus?.leader)).size).toBe(1);
      // the last node answers on its own address too (it is not only reached through the first)
      const last = await unary<StatusReply>(bench.machine(nodes.at(-1) as string), 'EtcdStatus', {});
      expect(last.messages[0]?.memberStatus?.leader).toBe(res.messages[0]?.memberStatus?.leader);
    } finally {
      await bench.close();
    }
  });
});

describe('given files', () => {
  it('dates the given snapshot when the routine backup took it (ageMinutes), so the wizard shows its real age', async () => {
    const bench = await startBench('lost-quorum');
    const incident = mkdtempSync(join(work, 'incident-'));
    try {
      const before = Date.now();
      const written = await bench.sim.writeGiven(incident);
      const after = Date.now();
      const snapshot = written.find((p) => p.endsWith('etcd-nightly.snapshot'));
      expect(snapshot).toBeDefined();
      const mtime = statSync(snapshot!).mtimeMs;
      // 540 minutes before "now", with the second resolution some file systems keep
      expect(mtime).toBeGreaterThanOrEqual(before - 540 * 60_000 - 1000);
      expect(mtime).toBeLessThanOrEqual(after - 540 * 60_000 + 1000);
      expect(bench.sim.scenario.given.find((g) => g.kind === 'snapshot')?.description).toContain(
        'taken 9 h before the drill started',
      );
      // machine-config backups are dated now; a second call (a resumed drill) rewrites nothing, dates included
      const config = written.find((p) => p.endsWith('.yaml'));
      expect(statSync(config!).mtimeMs).toBeGreaterThanOrEqual(before - 1000);
      expect(await bench.sim.writeGiven(incident)).toEqual([]);
      expect(statSync(snapshot!).mtimeMs).toBe(mtime);
    } finally {
      await bench.close();
    }
  });

  it('refuses a negative age and dates a snapshot without one now', async () => {
    const body = (age: string): string =>
      `name: x\ndescription: A test.\nexpectedOutcome: recovered\nrightAnswer: Recover.\nnodes:\n  - { hostname: a, type: controlplane, etcd: wiped }\ngiven:\n  snapshot: { name: old.snapshot, revisionsBehind: 3${age} }\n`;
    expect(() => loadScenario(writeScenario(work, 'neg-age.yaml', body(', ageMinutes: -5')))).toThrow(
      'given.snapshot.ageMinutes must be a number from 0 to 527040',
    );
    const bench = await startBench(writeScenario(work, 'no-age.yaml', body('')));
    const incident = mkdtempSync(join(work, 'incident-'));
    try {
      const before = Date.now();
      const [file] = await bench.sim.writeGiven(incident);
      expect(statSync(file!).mtimeMs).toBeGreaterThanOrEqual(before - 1000);
    } finally {
      await bench.close();
    }
  });
});

function writeScenario(dir: string, name: string, body: string): string {
  const path = join(dir, name);
  writeFileSync(path, body);
  return path;
}
