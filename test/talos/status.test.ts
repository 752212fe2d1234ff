import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import run, { gatherStatus } from '../../src/commands/status.js';
import type { CommandContext } from '../../src/commands/types.js';
import { createTalosClient } from '../../src/talos/client.js';
import { loadTalosconfig } from '../../src/talos/talosconfig.js';
import { makePki, NodeFailure, startFakeTalos, writeTalosconfig, type FakeTalos, type TestPki } from './fake-talos.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const NODES = ['10.5.0.2', '10.5.0.3', '10.5.0.4'];
const ids: Record<string, string> = { '10.5.0.2': '11', '10.5.0.3': '12', '10.5.0.4': '13' };
const hex = (decimal: string) => BigInt(decimal).toString(16).padStart(16, '0');
/** beyond 2^53: must reach the JSON output digit for digit */
const BIG_INDEX = '9007199254740993';

/** the cluster as the fake nodes describe it; tests switch it */
let cluster: 'healthy' | 'lost' = 'healthy';
let pki: TestPki;
let talos: FakeTalos;
let talosconfig: string;

const members = () =>
  NODES.map((node, i) => ({ id: ids[node], hostname: `cp-${i + 1}`, peerUrls: [`https://${node}:2380`] }));

/** In the lost cluster the third node is off: apid answers for it with Unavailable. */
function down(node: string) {
  if (cluster === 'lost' && node === '10.5.0.4') {
    throw new NodeFailure(
      14,
      'connection error: desc = "transport: Error while dialing: dial tcp 10.5.0.4:50000: connect: connection refused"',
    );
  }
}

beforeAll(async () => {
  pki = await makePki();
  talos = await startFakeTalos(pki, {
    unary: {
      Version: (node) => {
        down(node);
        return { version: { tag: 'v1.11.6' } };
      },
      ServiceList: (node) => {
        down(node);
        const lost = cluster === 'lost' && node !== '10.5.0.2';
        return {
          services: [
            {
              id: 'etcd',
              state: lost ? 'Preparing' : 'Running',
              events: { events: [{ msg: lost ? 'Running pre state' : 'Health check successful', state: 'Running' }] },
              health: { unknown: lost, healthy: cluster === 'healthy' },
            },
          ],
        };
      },
      EtcdMemberList: async (node) => {
        down(node);
        if (cluster === 'lost' && node !== '10.5.0.2') await sleep(10_000);
        if (cluster === 'lost') throw new NodeFailure(2, 'etcdserver: no leader');
        return { members: members() };
      },
      EtcdStatus: async (node) => {
        down(node);
        if (cluster === 'lost' && node !== '10.5.0.2') await sleep(10_000);
        return {
          memberStatus: {
            memberId: ids[node],
            leader: cluster === 'healthy' ? '11' : '0',
            raftAppliedIndex: node === '10.5.0.3' ? BIG_INDEX : '100',
            errors: cluster === 'lost' ? ['etcdserver: no leader'] : [],
          },
        };
      },
    },
    cosiGet: () => ({ spec: { yamlSpec: 'controlplane\n' } }),
  });
  talosconfig = writeTalosconfig(pki, [talos.address], NODES);
});

afterAll(() => talos?.stop());

function context(args: string[], signal = new AbortController().signal) {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d: Buffer) => (out += d.toString()));
  stderr.on('data', (d: Buffer) => (err += d.toString()));
  const ctx: CommandContext = {
    args,
    global: { talosconfig },
    io: { stdout, stderr, stdinIsTTY: false, env: { HOME: '/nonexistent' }, cwd: process.cwd() },
    signal,
  };
  return { ctx, out: () => out, err: () => err };
}

describe('talos-dr status', () => {
  it('prints the JSON of PRODUCT.md §2 for a healthy cluster, raft indices as exact JSON numbers', async () => {
    cluster = 'healthy';
    const { ctx, out, err } = context(['--json']);
    expect(await run(ctx)).toBe(0);
    expect(err()).toBe('');
    const line = out().trim();
    expect(line).toContain(`"raftAppliedIndex":${BIG_INDEX}`);
    const parsed = JSON.parse(line);
    expect(parsed).toMatchObject({ verdict: 'healthy', freshest: '10.5.0.3' });
    expect(parsed.nodes[0]).toEqual({
      node: '10.5.0.2',
      hostname: 'cp-1',
      reachable: true,
      machineType: 'controlplane',
      etcdService: 'Running',
      healthy: true,
      members: members().map((m) => ({
        id: hex(m.id as string),
        name: m.hostname,
        peerUrls: m.peerUrls,
        isLearner: false,
      })),
      raftAppliedIndex: 100,
      error: null,
    });
    // one call per node, each with its own `nodes` entry
    expect(
      talos.seen
        .filter((s) => s.method === 'EtcdMemberList')
        .slice(-3)
        .map((s) => s.nodes),
    ).toEqual(NODES.map((n) => [n]));
  });

  it('shows a table and the verdict sentence for people', async () => {
    cluster = 'healthy';
    const { ctx, out } = context([]);
    expect(await run(ctx)).toBe(0);
    const lines = out().split('\n');
    expect(lines[0]).toMatch(/^NODE\s+HOSTNAME\s+TYPE\s+ETCD\s+HEALTHY\s+MEMBERS\s+APPLIED INDEX$/);
    expect(lines[1]).toMatch(/^10\.5\.0\.2\s+cp-1\s+controlplane\s+Running\s+yes\s+3\s+100$/);
    expect(out()).toMatch(/Verdict: healthy\. etcd is healthy/);
  });

  it('judges a lost cluster quickly: etcd calls that hang end at the short deadline', async () => {
    cluster = 'lost';
    const client = createTalosClient(loadTalosconfig({ talosconfig }, {}));
    try {
      const started = Date.now();
      const report = await gatherStatus(client, NODES, { timeoutMs: 500 });
      expect(Date.now() - started).toBeLessThan(3000);
      expect(report.verdict).toBe('lost');
      expect(report.nodes.map((n) => [n.reachable, n.etcdService])).toEqual([
        [true, 'Running'],
        [true, 'Preparing'],
        [false, null],
      ]);
      expect(report.nodes[1]?.error).toMatch(
        /did not answer the etcd member list in time: its etcd may not be serving/,
      );
      // the node that answered is not hidden by the ones that hang
      expect(report.nodes[0]?.raftAppliedIndex).toBe(100n);
      expect(report.nodes[2]?.error).toMatch(/^Nothing answers on 10\.5\.0\.4's Talos API port \(connection refused\)/);
    } finally {
      client.close();
    }
  });

  it('repeats with --watch --json, one object per line, until stopped', async () => {
    cluster = 'healthy';
    const controller = new AbortController();
    const { ctx, out } = context(['--watch', '--json'], controller.signal);
    const done = run(ctx);
    while (out().split('\n').filter(Boolean).length < 2) await sleep(50);
    controller.abort();
    expect(await done).toBe(0);
    const lines = out().split('\n').filter(Boolean);
    expect(lines.length).toBeGreaterThanOrEqual(2);
    for (const line of lines) expect(JSON.parse(line).verdict).toBe('healthy');
  });

  it('refuses unknown flags and a context without nodes with a usage sentence', async () => {
    await expect(run(context(['--yaml']).ctx)).rejects.toMatchObject({ exitCode: 2 });
    const noNodes = context([]);
    noNodes.ctx.global = { talosconfig: writeTalosconfig(pki, [talos.address]) };
    await expect(run(noNodes.ctx)).rejects.toThrow(/^No nodes to ask: pass the control-plane nodes with -n/);
  });
});
