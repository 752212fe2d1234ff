/**
 * What the one reader of node state (src/wizard/observe.ts) makes of answers a real node, or something posing as one,
 * can give — over the real wire: the project's client talking mTLS gRPC to a loopback server whose answers are bytes
 * chosen by the test (encoded with the project's protos, or not protobuf at all).
 *
 * - After a quorum loss no member list answers (it needs a leader, facts §2), yet the HOST column shows every node's
 *   own hostname: Talos keeps it as COSI HostnameStatuses network/hostname, answered without etcd.
 * - A member list longer than any real cluster's is cut by the client: it is unknown, never 1,000 voters.
 * - An EtcdStatus that cannot be decoded is a protocol mismatch: the node counts as unknown, not broken.
 * - A broken member's id comes from a healthy node's member list, never from what the broken node says of itself.
 * - Alarms as Talos and etcd report them: EtcdAlarmList while quorum holds, and in EtcdStatus's errors always.
 */
import * as grpc from '@grpc/grpc-js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTalosClient, type GrpcTalosClient } from '../../src/talos/client.js';
import { issueServerCert } from '../../src/talos/pki.js';
import { cosiStateService, machineService } from '../../src/talos/proto.js';
import { loadTalosconfig } from '../../src/talos/talosconfig.js';
import { createIncidentDir } from '../../src/journal/incident.js';
import { Journal } from '../../src/journal/journal.js';
import { gatherStatus, observeNodes } from '../../src/wizard/observe.js';
import type { EffectDeps } from '../../src/wizard/deps.js';
import { makePki, writeTalosconfig } from '../talos/fake-talos.js';

const NODES = ['10.5.0.2', '10.5.0.3', '10.5.0.4'];
const ids: Record<string, string> = { '10.5.0.2': '11', '10.5.0.3': '12', '10.5.0.4': '13' };
const names: Record<string, string> = { '10.5.0.2': 'cp-1', '10.5.0.3': 'cp-2', '10.5.0.4': 'cp-3' };

type Obj = Record<string, unknown>;
/** An answer that never comes: what etcd does with a raft read (the alarm list) while there is no leader. */
const NEVER = { never: true } as const;
type Answer = Obj | Buffer | { fail: number; message: string } | typeof NEVER;

/** What each node answers this test: per method, an object (encoded as apid would), raw bytes, or a failure. */
let scene: (method: string, node: string) => Answer;

const isFailure = (a: Answer): a is { fail: number; message: string } =>
  !Buffer.isBuffer(a) && typeof (a as { fail?: unknown }).fail === 'number';

const MACHINE_METHODS = ['Version', 'ServiceList', 'EtcdMemberList', 'EtcdStatus', 'EtcdAlarmList'] as const;

function machineAnswer(method: string, node: string): Buffer {
  const answer = scene(method, node);
  if (Buffer.isBuffer(answer)) return answer;
  const serialize = (machineService()[method] as { responseSerialize: (o: object) => Buffer }).responseSerialize;
  if (isFailure(answer)) {
    // apid's in-band failure for one node: metadata{hostname, error, status}
    const metadata = { hostname: node, error: answer.message, status: { code: answer.fail, message: answer.message } };
    return serialize({ messages: [{ metadata }] });
  }
  return serialize({ messages: [{ metadata: { hostname: node }, ...answer }] });
}

const identity = (b: Buffer) => b;
const raw = (path: string) => ({
  path,
  requestStream: false,
  responseStream: false,
  requestSerialize: identity,
  requestDeserialize: identity,
  responseSerialize: identity,
  responseDeserialize: identity,
});

let server: grpc.Server;
let client: GrpcTalosClient;

beforeAll(async () => {
  const pki = await makePki();
  const cert = await issueServerCert(pki.ca, { ips: ['127.0.0.1'] });
  server = new grpc.Server();
  server.addService(
    Object.fromEntries(MACHINE_METHODS.map((m) => [m, raw(`/machine.MachineService/${m}`)])),
    Object.fromEntries(
      MACHINE_METHODS.map((m) => [
        m,
        (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
          const node = String(call.metadata.get('nodes')[0]);
          if (scene(m, node) === NEVER) return; // left open until the client gives up on it
          callback(null, machineAnswer(m, node));
        },
      ]),
    ),
  );
  const get = cosiStateService().Get as unknown as {
    requestDeserialize: (b: Buffer) => { type?: string };
    responseSerialize: (o: object) => Buffer;
  };
  server.addService(
    { Get: raw('/cosi.resource.State/Get') },
    {
      Get: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
        const type = get.requestDeserialize(call.request).type ?? '';
        const answer = scene(type, String(call.metadata.get('node')[0]));
        // a COSI call is proxied one-to-one: its failures are plain statuses
        if (isFailure(answer)) return callback({ code: answer.fail, details: answer.message });
        callback(null, Buffer.isBuffer(answer) ? answer : get.responseSerialize({ resource: answer }));
      },
    },
  );
  const credentials = grpc.ServerCredentials.createSsl(
    Buffer.from(pki.ca.certPem),
    [{ cert_chain: Buffer.from(cert.certPem), private_key: Buffer.from(cert.keyPem) }],
    true,
  );
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', credentials, (error, bound) => (error ? reject(error) : resolve(bound))),
  );
  const talosconfig = writeTalosconfig(pki, [`127.0.0.1:${port}`], NODES);
  client = createTalosClient(loadTalosconfig({ talosconfig }, {}), { defaultTimeoutMs: 3000, connectTimeoutMs: 2000 });
});

afterAll(() => {
  client?.close();
  server?.forceShutdown();
});

const journals: Journal[] = [];
afterEach(() => {
  for (const j of journals.splice(0)) j.close();
});

function depsFor(): EffectDeps {
  const incident = createIncidentDir(join(mkdtempSync(join(tmpdir(), 'talos-dr-observe-')), 'incident'));
  const journal = new Journal(incident.dir);
  journals.push(journal);
  return { client, connectMaintenance: null, incident, journal, operator: 'tester', statusTimeoutMs: 2000 };
}

const members = (extra = 0) => [
  ...NODES.map((node) => ({ id: ids[node], hostname: names[node], peerUrls: [`https://${node}:2380`] })),
  ...Array.from({ length: extra }, (_, i) => ({ id: String(1000 + i), hostname: `ghost-${i}` })),
];

/** A node of a healthy cluster; `overrides` change single answers. */
function healthy(overrides: Record<string, (node: string) => Answer | undefined> = {}) {
  return (method: string, node: string): Answer => {
    const override = overrides[method]?.(node);
    if (override !== undefined) return override;
    switch (method) {
      case 'Version':
        return { version: { tag: 'v1.14.7' } };
      case 'ServiceList':
        return {
          services: [{ id: 'etcd', state: 'Running', events: { events: [] }, health: { healthy: true } }],
        };
      case 'EtcdMemberList':
        return { members: members() };
      case 'EtcdStatus':
        return { memberStatus: { memberId: ids[node], leader: '11', raftAppliedIndex: '100', errors: [] } };
      case 'EtcdAlarmList':
        return { memberAlarms: [] };
      case 'MachineTypes.config.talos.dev':
        return { spec: { yamlSpec: 'controlplane\n' } };
      case 'HostnameStatuses.net.talos.dev':
        return { spec: { yamlSpec: `hostname: ${names[node]}\ndomainname: ""\n` } };
      default:
        return { fail: grpc.status.UNIMPLEMENTED, message: `${method} not implemented` };
    }
  };
}

describe('the HOST column after a quorum loss (no member list ever answers)', () => {
  const noLeader = {
    EtcdMemberList: () => ({ fail: 2, message: 'etcdserver: no leader' }),
    EtcdStatus: (node: string) => ({
      memberStatus: { memberId: ids[node], leader: '0', raftAppliedIndex: '100', errors: ['etcdserver: no leader'] },
    }),
  };

  it("shows each machine's own hostname, read from HostnameStatuses, on the wizard's first look and in status", async () => {
    scene = healthy(noLeader);
    const views = await observeNodes(depsFor(), NODES);
    expect(views.map((v) => v.hostname)).toEqual(['cp-1', 'cp-2', 'cp-3']);
    expect(views.map((v) => v.members)).toEqual([null, null, null]);
    const report = await gatherStatus(client, NODES, { timeoutMs: 2000 });
    expect(report.verdict).toBe('lost');
    expect(report.nodes.map((n) => n.hostname)).toEqual(['cp-1', 'cp-2', 'cp-3']);
  });

  it('reads the hostname from proto_spec when the node sends no yaml', async () => {
    // HostnameStatusSpec { hostname = 1 }: 0a 04 "cp-9"
    const protoSpec = Buffer.concat([Buffer.from([0x0a, 0x04]), Buffer.from('cp-9')]);
    scene = healthy({ ...noLeader, 'HostnameStatuses.net.talos.dev': () => ({ spec: { protoSpec } }) });
    const views = await observeNodes(depsFor(), NODES);
    expect(views.map((v) => v.hostname)).toEqual(['cp-9', 'cp-9', 'cp-9']);
  });

  it('a node that cannot say its hostname keeps the name its member list gave (and a missing one stays empty)', async () => {
    const noHostname = { 'HostnameStatuses.net.talos.dev': () => ({ fail: grpc.status.NOT_FOUND, message: 'nope' }) };
    scene = healthy(noHostname);
    const deps = depsFor();
    expect((await observeNodes(deps, NODES)).map((v) => v.hostname)).toEqual(['cp-1', 'cp-2', 'cp-3']);
    scene = healthy({ ...noHostname, ...noLeader });
    expect((await observeNodes(deps, NODES)).map((v) => v.hostname)).toEqual(['cp-1', 'cp-2', 'cp-3']);
    expect((await observeNodes(depsFor(), NODES)).map((v) => v.hostname)).toEqual([null, null, null]);
  });
});

describe('answers that cannot be trusted are unknown, not evidence', () => {
  it('a member list cut at 1,000 members is not counted as 1,000 voters: the note says it was cut', async () => {
    // 998 members nobody else knows: counted, the verdict would need 501 healthy members of 1,001
    scene = healthy({ EtcdMemberList: (node) => (node === '10.5.0.2' ? { members: members(998) } : undefined) });
    const report = await gatherStatus(client, NODES, { timeoutMs: 2000 });
    expect(report.verdict).toBe('healthy');
    expect(report.reason).toMatch(/3 of 3 voting members healthy/);
    expect(report.nodes[0]?.members).toBeNull();
    expect(report.nodes[0]?.error).toBe(
      "10.5.0.2's etcd member list was longer than any real cluster's, so 1 members were left out; the answer is damaged or not from a Talos node, so do not trust it.",
    );
    expect(report.nodes[1]?.members).toHaveLength(3);
    const [view] = await observeNodes(depsFor(), NODES);
    expect(view?.members).toBeNull();
    expect(view?.error).toMatch(/^10\.5\.0\.2's etcd member list was longer than any real cluster's/);
  });

  it('an EtcdStatus that cannot be decoded counts as unknown: the verdict is undecided, not lost', async () => {
    // a member whose length runs past the end of its message: not protobuf
    const garbled = Buffer.from([0x0a, 0x06, 0x12, 0x09, 0x08, 0x01]);
    scene = healthy({
      EtcdStatus: (node) => (node === '10.5.0.3' ? garbled : undefined),
      ServiceList: (node) =>
        node === '10.5.0.4'
          ? { services: [{ id: 'etcd', state: 'Failed', events: { events: [] }, health: { healthy: false } }] }
          : undefined,
    });
    const report = await gatherStatus(client, NODES, { timeoutMs: 2000 });
    // one healthy, one unknown, one broken of three: a majority is still possible, so nothing is decided
    expect(report.verdict).toBe('unknown');
    expect(report.reason).toMatch(/^Quorum cannot be decided: 1 of 3 voting members healthy/);
    expect(report.nodes[1]?.error).toMatch(
      /^10\.5\.0\.3 sent for etcd status an answer that could not be decoded \(.+\); this is a protocol mismatch, not an etcd verdict/,
    );
  });
});

describe('a slow answer is not a broken member', () => {
  it('a Running, healthy etcd whose EtcdStatus passes its deadline is read again, not named for replacement', async () => {
    // cp-2's etcd runs and passes Talos's quorum health check; only its status read is slower than the deadline
    scene = healthy({ EtcdStatus: (node) => (node === '10.5.0.3' ? NEVER : undefined) });
    const report = await gatherStatus(client, NODES, { timeoutMs: 500 });
    expect(report.verdict).toBe('unknown');
    expect(report.reason).toBe(
      'Quorum holds (2 of 3 voting members healthy, quorum needs 2), but the etcd state of cp-2 (10.5.0.3) could not be read; assess again before deciding.',
    );
    const views = await observeNodes({ ...depsFor(), statusTimeoutMs: 500 }, NODES);
    expect(views[1]).toMatchObject({ etcdService: 'Running', etcdHealthy: true, status: null, statusTimedOut: true });
  });
});

describe("a broken member's id comes from a healthy node, never from the broken node's own view", () => {
  /** 10.5.0.4's etcd crash-loops: Waiting between restarts, its etcd calls fail */
  const crashLoop = {
    ServiceList: (node: string) =>
      node === '10.5.0.4'
        ? {
            services: [
              {
                id: 'etcd',
                state: 'Waiting',
                events: {
                  events: [
                    {
                      msg: 'Error running Containerd(etcd), going to restart forever: task "etcd" failed: exit code 2',
                    },
                  ],
                },
                health: { healthy: false },
              },
            ],
          }
        : undefined,
    EtcdStatus: (node: string) => (node === '10.5.0.4' ? { fail: 4, message: 'context deadline exceeded' } : undefined),
  };

  it("the healthy nodes' id wins over the one the broken node claims (a healthy member's id)", async () => {
    scene = healthy({
      ...crashLoop,
      // between two crashes 10.5.0.4 answers that it is member 11 — cp-1's id — and lists only that
      EtcdStatus: (node) =>
        node === '10.5.0.4'
          ? { memberStatus: { memberId: '11', leader: '0', raftAppliedIndex: '1', errors: ['etcdserver: no leader'] } }
          : undefined,
      EtcdMemberList: (node) =>
        node === '10.5.0.4'
          ? { members: [{ id: '11', hostname: 'cp-3', peerUrls: ['https://10.5.0.4:2380'] }] }
          : undefined,
    });
    const report = await gatherStatus(client, NODES, { timeoutMs: 2000 });
    expect(report.verdict).toBe('degraded');
    expect(report.broken).toEqual([
      {
        node: '10.5.0.4',
        memberId: '000000000000000d',
        name: 'cp-3',
        kind: 'etcd-failing',
        why: "cp-3 (10.5.0.4) answers, but its etcd keeps crashing and restarting; its member 000000000000000d is read from 10.5.0.2's member list.",
      },
    ]);
  });

  it('an unreachable node whose etcd answers through apid that it is a healthy member gets no say in its id', async () => {
    // Version fails for 10.5.0.4 (the node counts as not answering), yet its etcd calls answer: it claims member 11
    // (cp-1's) with a leader, and lists itself as 11
    scene = healthy({
      Version: (node) => (node === '10.5.0.4' ? { fail: 14, message: 'connection refused' } : undefined),
      EtcdStatus: (node) =>
        node === '10.5.0.4'
          ? { memberStatus: { memberId: '11', leader: '11', raftAppliedIndex: '999', errors: [] } }
          : undefined,
      EtcdMemberList: (node) =>
        node === '10.5.0.4'
          ? { members: [{ id: '11', hostname: 'cp-3', peerUrls: ['https://10.5.0.4:2380'] }] }
          : undefined,
    });
    const report = await gatherStatus(client, NODES, { timeoutMs: 2000 });
    expect(report.verdict).toBe('degraded');
    expect(report.broken).toEqual([
      expect.objectContaining({ node: '10.5.0.4', memberId: '000000000000000d', kind: 'unreachable' }),
    ]);
    // nor is it the freshest member, whatever index it claims
    expect(report.freshest).not.toBe('10.5.0.4');
  });

  it('a member the healthy nodes no longer list is not removable, whatever the node says of itself', async () => {
    const withoutCp3 = members().slice(0, 2);
    // powered off, and its member already removed through a healthy node: nothing left to remove
    scene = healthy({
      Version: (node) => (node === '10.5.0.4' ? { fail: 14, message: 'connection refused' } : undefined),
      EtcdMemberList: (node) => (node === '10.5.0.4' ? undefined : { members: withoutCp3 }),
    });
    const off = await gatherStatus(client, NODES, { timeoutMs: 2000 });
    expect(off.broken).toEqual([expect.objectContaining({ node: '10.5.0.4', memberId: null, kind: 'unreachable' })]);
    // crash-looping, and between two crashes it lists itself as member 13: the healthy nodes do not, so no id
    scene = healthy({
      ...crashLoop,
      EtcdMemberList: (node) => (node === '10.5.0.4' ? { members: members() } : { members: withoutCp3 }),
    });
    const crashing = await gatherStatus(client, NODES, { timeoutMs: 2000 });
    expect(crashing.broken).toEqual([
      expect.objectContaining({ node: '10.5.0.4', memberId: null, kind: 'etcd-failing' }),
    ]);
    expect(crashing.broken?.[0]?.why).toMatch(
      /no healthy member lists a member for it \(already removed, or never joined\)\.$/,
    );
  });
});

describe('learners as etcd lists them', () => {
  it('a learner that has not started (empty name) is matched by its peer URL; a leftover learner has no node', async () => {
    const learner = { id: '13', hostname: '', peerUrls: ['https://10.5.0.4:2380'], isLearner: true };
    const leftover = { id: '99', hostname: 'cp-old', peerUrls: ['https://10.5.0.9:2380'], isLearner: true };
    scene = healthy({
      EtcdMemberList: () => ({ members: [...members().slice(0, 2), learner, leftover] }),
      // a learner refuses the linearizable read of the health check until promoted
      ServiceList: (node) =>
        node === '10.5.0.4'
          ? { services: [{ id: 'etcd', state: 'Running', events: { events: [] }, health: { healthy: false } }] }
          : undefined,
    });
    const report = await gatherStatus(client, NODES, { timeoutMs: 2000 });
    expect(report.verdict).toBe('degraded');
    expect(report.reason).toMatch(/^Quorum holds \(2 of 3 voting members healthy, quorum needs 2\)/);
    expect(report.broken).toEqual([
      expect.objectContaining({ node: '10.5.0.4', memberId: '000000000000000d', name: 'cp-3', kind: 'learner' }),
      expect.objectContaining({ node: null, memberId: '0000000000000063', name: 'cp-old', kind: 'learner' }),
    ]);
  });
});

describe('alarms as Talos reports them', () => {
  /** etcd's text of an alarm in EtcdStatus errors: the AlarmMember's compact text (maintenance.go) */
  const alarmText = (decimalId: string, alarm: string) => `memberID:${decimalId} alarm:${alarm} `;
  const statusWith =
    (errors: (node: string) => string[], leader = '11') =>
    (node: string) => ({
      memberStatus: { memberId: ids[node], leader, raftAppliedIndex: '100', errors: errors(node) },
    });

  it('NOSPACE on every member while quorum holds: nospace, read-only, each node its alarm (not lost quorum)', async () => {
    const all = NODES.map((n) => ({ memberId: ids[n], alarm: 'NOSPACE' }));
    scene = healthy({
      EtcdAlarmList: () => ({ memberAlarms: all }),
      EtcdStatus: statusWith(() => NODES.map((n) => alarmText(ids[n] as string, 'NOSPACE'))),
    });
    const report = await gatherStatus(client, NODES, { timeoutMs: 2000 });
    expect(report.verdict).toBe('nospace');
    expect(report.reason).toMatch(/the cluster is read-only until it is defragmented and the alarm disarmed/);
    expect(report.alarms).toEqual(
      NODES.map((node) => ({
        memberId: BigInt(ids[node] as string)
          .toString(16)
          .padStart(16, '0'),
        node,
        alarm: 'NOSPACE',
      })),
    );
    const [view] = await observeNodes(depsFor(), NODES);
    expect(view?.alarms).toHaveLength(3);
  });

  it('the alarm list needs quorum; without it the status errors still name the alarm, and lost stays lost', async () => {
    scene = healthy({
      // etcd reads alarms through raft: without a leader the call stays open until its deadline, which here is far
      // beyond the test's own time limit; the round does not wait for it
      EtcdAlarmList: () => NEVER,
      EtcdMemberList: () => ({ fail: 2, message: 'etcdserver: no leader' }),
      EtcdStatus: statusWith(() => ['etcdserver: no leader', alarmText('11', 'NOSPACE')], '0'),
    });
    const report = await gatherStatus(client, NODES, { timeoutMs: 600_000 });
    expect(report.verdict).toBe('lost');
    expect(report.alarms).toEqual([{ memberId: '000000000000000b', node: '10.5.0.2', alarm: 'NOSPACE' }]);
    // no node shows the failed alarm list as its fault
    expect(report.nodes.map((n) => n.error)).toEqual([null, null, null]);
  });

  it('CORRUPT on one member: that member is to be replaced, though its etcd answers', async () => {
    scene = healthy({
      EtcdAlarmList: () => ({ memberAlarms: [{ memberId: '13', alarm: 'CORRUPT' }] }),
      EtcdStatus: statusWith(() => [alarmText('13', 'CORRUPT')]),
    });
    const report = await gatherStatus(client, NODES, { timeoutMs: 2000 });
    expect(report.verdict).toBe('degraded');
    expect(report.broken).toEqual([
      expect.objectContaining({ node: '10.5.0.4', memberId: '000000000000000d', kind: 'etcd-failing' }),
    ]);
    expect(report.broken?.[0]?.why).toMatch(/^etcd raised a CORRUPT alarm for cp-3 \(10\.5\.0\.4\)/);
  });
});
