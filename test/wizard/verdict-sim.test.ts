/**
 * The assessment's verdict over the real wire: `talos-dr status` (the command itself, through the project's client)
 * against the simulator's gRPC server, one cluster per way a member breaks while quorum holds. Each broken member is
 * classified, and its member id is the one a *healthy* node lists for it (read here with a plain EtcdMemberList call
 * to that healthy node), never one the broken node says about itself.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import run, { blankProbe, gatherStatus, statusJson } from '../../src/commands/status.js';
import type { CommandContext } from '../../src/commands/types.js';
import { loadClientFromFlags } from '../../src/talos/client.js';
import { connectMaintenance } from '../../src/talos/maintenance.js';
import { createIncidentDir } from '../../src/journal/incident.js';
import { Journal } from '../../src/journal/journal.js';
import { observeNodes } from '../../src/wizard/observe.js';
import { computeVerdict } from '../../machines/decisions.js';
import { startBench, type Bench } from '../sim/helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'talos-dr-verdict-'));
const benches: Bench[] = [];
afterAll(async () => {
  for (const b of benches.splice(0)) await b.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A scenario file with these nodes (one line each, as scenarios/README.md writes them). */
function scenario(name: string, nodes: string[]): string {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(
    file,
    [
      `name: ${name}`,
      'description: a member broke while quorum holds',
      'expectedOutcome: stopped-quorum-intact',
      'rightAnswer: replace the broken member',
      'timeLimitSec: 900',
      'timing: { rebootSec: 45, resetSec: 15, joinSec: 8, restoreSec: 5, bootSec: 3 }',
      'data: { keys: 20, valueBytes: 100 }',
      'nodes:',
      ...nodes.map((n) => `  - ${n}`),
      '',
    ].join('\n'),
  );
  return file;
}

const healthyNode = (i: number) => `{ hostname: cp-${i}, type: controlplane, etcd: healthy }`;

async function start(scenarioFile: string, opts: Parameters<typeof startBench>[1] = {}): Promise<Bench> {
  const bench = await startBench(scenarioFile, opts);
  benches.push(bench);
  return bench;
}

/** `talos-dr status [--json]` against the simulated cluster: exit code and what it printed. */
async function status(bench: Bench, json: boolean): Promise<{ code: number; out: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  stdout.on('data', (d: Buffer) => (out += d.toString()));
  const ctx: CommandContext = {
    args: json ? ['--json'] : [],
    global: { talosconfig: bench.sim.talosconfigPath },
    io: { stdout, stderr, stdinIsTTY: false, env: { HOME: '/nonexistent' }, cwd: process.cwd() },
    signal: new AbortController().signal,
  };
  const code = await run(ctx);
  return { code, out };
}

/**
 * The same round with a shorter deadline (a crash-looping etcd keeps its calls waiting until it), printed as
 * `status --json` prints it.
 */
async function statusReport(bench: Bench): Promise<StatusJson> {
  const { client, config } = loadClientFromFlags({ talosconfig: bench.sim.talosconfigPath }, {});
  try {
    const signal = new AbortController().signal;
    const report = await gatherStatus(client, config.nodes, { timeoutMs: 1500, isBlank: blankProbe(config, signal) });
    return JSON.parse(statusJson(report)) as StatusJson;
  } finally {
    client.close();
  }
}

interface StatusJson {
  verdict: string;
  reason: string;
  broken: { node: string | null; memberId: string | null; name: string | null; kind: string; why: string }[];
  alarms: { memberId: string; node: string | null; alarm: string }[];
}

/** The member id a healthy node lists for a hostname: the one the verdict must name. */
async function listedId(bench: Bench, healthyNode: string, hostname: string): Promise<string> {
  const { client } = loadClientFromFlags({ talosconfig: bench.sim.talosconfigPath }, {});
  try {
    const [answer] = await client.etcdMemberList([healthyNode], true, { timeoutMs: 3000 });
    if (!answer?.ok) throw new Error(`${healthyNode} did not list its members`);
    const member = answer.value.find((m) => m.hostname === hostname);
    if (!member) throw new Error(`${healthyNode} does not list ${hostname}`);
    return member.id;
  } finally {
    client.close();
  }
}

describe('NOSPACE as the simulator raises it (every member over its quota)', () => {
  it('nospace: the verdict, each node its NOSPACE alarm, in the JSON and the ALARMS column; nothing to replace', async () => {
    const bench = await start('nospace');
    const [cp1, cp2, cp3] = bench.sim.nodes as [string, string, string];
    const report = await statusReport(bench);
    expect(report.verdict).toBe('nospace');
    expect(report.reason).toMatch(/read-only until it is defragmented and the alarm disarmed; quorum holds \(3 of 3/);
    expect(report.broken).toEqual([]);
    expect(report.alarms.map((a) => [a.node, a.alarm]).sort()).toEqual([
      [cp1, 'NOSPACE'],
      [cp2, 'NOSPACE'],
      [cp3, 'NOSPACE'],
    ]);
    const { out } = await status(bench, false);
    expect(out.split('\n').find((l) => l.startsWith(`${cp2} `))).toMatch(/\sNOSPACE\s+-$/);
    expect(out).toMatch(/Verdict: NOSPACE, the cluster is read-only\. etcd raised a NOSPACE alarm \(3 members\)/);
  });
});

describe('talos-dr status names the members to replace while quorum holds', () => {
  it('a powered-off node: degraded, unreachable, its id from a healthy member, waited for before any removal', async () => {
    const bench = await start('quorum-intact');
    const [cp1, , cp3] = bench.sim.nodes as [string, string, string];
    const { code, out } = await status(bench, true);
    expect(code).toBe(0);
    const report = JSON.parse(out) as StatusJson;
    expect(report.verdict).toBe('degraded');
    expect(report.broken).toEqual([
      {
        node: cp3,
        memberId: await listedId(bench, cp1, 'cp-3'),
        name: 'cp-3',
        kind: 'unreachable',
        why: expect.stringMatching(
          /does not answer .* waited for before anything is removed; its member \w{16} is read from /,
        ),
      },
    ]);
    expect(report.alarms).toEqual([]);
  });

  it('a crash-looping etcd: etcd-failing, in the table and the member list under it', async () => {
    const bench = await start(
      scenario('crashloop', [
        healthyNode(1),
        healthyNode(2),
        '{ hostname: cp-3, type: controlplane, etcd: crashloop }',
      ]),
    );
    const [cp1, , cp3] = bench.sim.nodes as [string, string, string];
    const id = await listedId(bench, cp1, 'cp-3');
    const report = await statusReport(bench);
    expect(report.verdict).toBe('degraded');
    expect(report.broken).toEqual([
      expect.objectContaining({ node: cp3, memberId: id, name: 'cp-3', kind: 'etcd-failing' }),
    ]);
    expect(report.broken[0]?.why).toMatch(/^cp-3 \([\d.]+\) answers, but its etcd keeps crashing and restarting;/);
    const { out } = await status(bench, false);
    const lines = out.split('\n');
    expect(lines[0]).toMatch(/^NODE\s+HOSTNAME\s+TYPE\s+ETCD\s+HEALTHY\s+MEMBERS\s+APPLIED INDEX\s+ALARMS\s+BROKEN$/);
    expect(lines.find((l) => l.startsWith(`${cp3} `))).toMatch(/\s-\s+etcd failing$/);
    expect(lines.find((l) => l.startsWith(`${cp1} `))).toMatch(/\s-\s+-$/);
    expect(out).toContain(`Member to replace:\n  ${cp3}  etcd failing  member ${id} (cp-3): cp-3 (${cp3}) answers`);
    expect(out).toMatch(/Verdict: degraded, members to replace\. Quorum holds \(2 of 3 voting members healthy/);
  });

  it('a blank machine in maintenance mode at the address (member-hardware): blank, the old member id from a healthy member', async () => {
    const bench = await start('member-hardware');
    const [cp1, , cp3] = bench.sim.nodes as [string, string, string];
    const report = await statusReport(bench);
    expect(report.verdict).toBe('degraded');
    expect(report.broken).toEqual([
      expect.objectContaining({ node: cp3, memberId: await listedId(bench, cp1, 'cp-3'), name: 'cp-3', kind: 'blank' }),
    ]);
    expect(report.broken[0]?.why).toMatch(
      /^[\d.]+ answers as a blank machine in maintenance mode, so the old member's data is gone; its member \w{16} is read from /,
    );
    const { out } = await status(bench, false);
    expect(out.split('\n').find((l) => l.startsWith(`${cp3} `))).toMatch(/^\S+\s+-\s+maintenance\s.*\sblank machine$/);
  });

  it("member-hardware as the wizard's assessment reads it (observeNodes, then the verdict): blank", async () => {
    const bench = await start('member-hardware');
    const [cp1, , cp3] = bench.sim.nodes as [string, string, string];
    const { client } = loadClientFromFlags({ talosconfig: bench.sim.talosconfigPath }, {});
    const incident = createIncidentDir(join(dir, 'incident-hardware'));
    const journal = new Journal(incident.dir);
    try {
      const views = await observeNodes(
        {
          client,
          connectMaintenance: (node) => connectMaintenance(`${node}:${bench.sim.port}`, { connectTimeoutMs: 2000 }),
          incident,
          journal,
          operator: 'tester',
          statusTimeoutMs: 1500,
        },
        bench.sim.nodes,
      );
      const verdict = computeVerdict(views);
      expect(verdict.verdict).toBe('degraded');
      expect(verdict.broken).toEqual([
        expect.objectContaining({
          node: cp3,
          memberId: await listedId(bench, cp1, 'cp-3'),
          name: 'cp-3',
          kind: 'blank',
        }),
      ]);
    } finally {
      journal.close();
      client.close();
    }
  });

  it('member-crashloop-5: the one crash-looping member of five is named, the four others are healthy', async () => {
    const bench = await start('member-crashloop-5');
    const [cp1, , , cp4] = bench.sim.nodes as [string, string, string, string];
    const report = await statusReport(bench);
    expect(report.verdict).toBe('degraded');
    expect(report.reason).toMatch(/^Quorum holds \(4 of 5 voting members healthy, quorum needs 3\)/);
    expect(report.broken.map((b) => [b.node, b.memberId, b.kind])).toEqual([
      [cp4, await listedId(bench, cp1, 'cp-4'), 'etcd-failing'],
    ]);
  });

  it('member-unreachable: the powered-off member is unreachable (to be waited for), nothing else', async () => {
    // at the benches' usual 1000× the node's two simulated minutes off would be over before the first call
    const bench = await start('member-unreachable', { speed: 1 });
    const [cp1, , cp3] = bench.sim.nodes as [string, string, string];
    const report = await statusReport(bench);
    expect(report.verdict).toBe('degraded');
    expect(report.broken).toEqual([
      expect.objectContaining({ node: cp3, memberId: await listedId(bench, cp1, 'cp-3'), kind: 'unreachable' }),
    ]);
  });

  it('five nodes, one crash-looping and one powered off: both named, each with its own id', async () => {
    const bench = await start(
      scenario('five', [
        healthyNode(1),
        healthyNode(2),
        healthyNode(3),
        '{ hostname: cp-4, type: controlplane, etcd: crashloop }',
        '{ hostname: cp-5, type: controlplane, state: down }',
      ]),
    );
    const [cp1, , , cp4, cp5] = bench.sim.nodes as [string, string, string, string, string];
    const report = await statusReport(bench);
    expect(report.verdict).toBe('degraded');
    expect(report.broken.map((b) => [b.node, b.memberId, b.kind])).toEqual([
      [cp4, await listedId(bench, cp1, 'cp-4'), 'etcd-failing'],
      [cp5, await listedId(bench, cp1, 'cp-5'), 'unreachable'],
    ]);
    expect(report.reason).toMatch(
      /^Quorum holds \(3 of 5 voting members healthy, quorum needs 3\): replace the broken members/,
    );
  });
});
