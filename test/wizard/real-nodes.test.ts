/**
 * The wizard's runtime against nodes that behave as real Talos does where our simulator did not (issue 12, items
 * 2–4), over the real wire: the project's Talos client talking mTLS gRPC to test/talos/fake-talos.ts on loopback.
 *
 * - After a quorum loss real EtcdMemberList answers `etcdserver: no leader` even with query_local (facts §2), while
 *   EtcdStatus still answers: the verdict, the freshest member and the node table stand on EtcdStatus.
 * - Reset returns before the node does anything (facts §3): a node that was Preparing keeps saying so for a while.
 * - Bootstrap replaces the etcd runner and drops "Bootstrap requested" from the history (facts §4).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createActor, setup, toPromise, waitFor } from 'xstate';
import { createTalosClient } from '../../src/talos/client.js';
import { loadTalosconfig } from '../../src/talos/talosconfig.js';
import type { TalosClient } from '../../src/talos/types.js';
import { createIncidentDir } from '../../src/journal/incident.js';
import { Journal, readJournal } from '../../src/journal/journal.js';
import { gatherStatus, observeNodes } from '../../src/wizard/observe.js';
import { recoveryActors } from '../../src/wizard/actors.js';
import type { EffectDeps } from '../../src/wizard/deps.js';
import { timingFor } from '../../src/wizard/run.js';
import { prepareNodeMachine } from '../../machines/prepare-node.js';
import { makePki, NodeFailure, startFakeTalos, writeTalosconfig, type FakeTalos } from '../talos/fake-talos.js';

const NODES = ['10.5.0.2', '10.5.0.3', '10.5.0.4'];
const ids: Record<string, string> = { '10.5.0.2': '11', '10.5.0.3': '12', '10.5.0.4': '13' };
const HOUR = 3600_000;

type Phase = 'healthy' | 'no-leader' | 'preparing' | 'away' | 'restarted' | 'failed';
interface NodeState {
  phase: Phase;
  /** ms of the etcd service's first event (its runner's history start) */
  historyStart: number;
  /** what the Reset and Bootstrap handlers did */
  resets: number;
  bootstraps: number;
  /** service list answers still to give in the pre-reset state after a Reset was answered */
  staleAnswers: number;
  /** version answers still to fail while rebooting */
  awayAnswers: number;
  /** what Bootstrap answers instead of accepting it */
  bootstrapRefusal?: NodeFailure;
}

const nodes = new Map<string, NodeState>();
const state = (node: string): NodeState => nodes.get(node) as NodeState;
function reset(phase: Phase, historyStart = Date.now() - HOUR): void {
  for (const n of NODES)
    nodes.set(n, { phase, historyStart, resets: 0, bootstraps: 0, staleAnswers: 0, awayAnswers: 0 });
}

const ts = (ms: number) => ({ seconds: String(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1_000_000 });
const members = () =>
  NODES.map((node, i) => ({ id: ids[node], hostname: `cp-${i + 1}`, peerUrls: [`https://${node}:2380`] }));
const unavailable = () => new NodeFailure(14, 'connection error: desc = "transport: connect: connection refused"');

let talos: FakeTalos;
let client: TalosClient;

beforeAll(async () => {
  const pki = await makePki();
  talos = await startFakeTalos(pki, {
    unary: {
      Version: (node) => {
        const s = state(node);
        if (s.phase === 'away') {
          if (s.awayAnswers-- <= 0) s.phase = 'restarted';
          throw unavailable();
        }
        return { version: { tag: 'v1.12.12' } };
      },
      ServiceList: (node) => {
        const s = state(node);
        if (s.phase === 'away') throw unavailable();
        if (s.staleAnswers > 0 && --s.staleAnswers === 0) {
          // the reset sequence finally stops the services and reboots: the node goes away for a while
          s.phase = 'away';
          s.awayAnswers = 2;
        }
        const running = s.phase === 'healthy' || s.phase === 'no-leader';
        if (s.phase === 'restarted') s.historyStart = Math.max(s.historyStart, Date.now());
        const events = running
          ? [{ msg: 'Health check successful', state: 'Running', ts: ts(s.historyStart) }]
          : [
              { msg: 'Starting service', state: 'Starting', ts: ts(s.historyStart) },
              { msg: 'Waiting for volume "/var/lib" to be mounted', state: 'Waiting', ts: ts(s.historyStart + 1) },
              { msg: 'Running pre state', state: 'Preparing', ts: ts(s.historyStart + 2) },
            ];
        return {
          services: [
            {
              id: 'etcd',
              state: running ? 'Running' : s.phase === 'failed' ? 'Failed' : 'Preparing',
              events: { events },
              health: { unknown: !running, healthy: s.phase === 'healthy' },
            },
          ],
        };
      },
      EtcdMemberList: (node) => {
        const s = state(node);
        if (s.phase !== 'healthy') throw new NodeFailure(2, 'etcdserver: no leader');
        return { members: members() };
      },
      EtcdStatus: (node) => {
        const s = state(node);
        if (s.phase !== 'healthy' && s.phase !== 'no-leader') throw new NodeFailure(4, 'context deadline exceeded');
        return {
          memberStatus: {
            memberId: ids[node],
            leader: s.phase === 'healthy' ? '11' : '0',
            raftAppliedIndex: node === '10.5.0.3' ? '250' : node === '10.5.0.4' ? '180' : '100',
            errors: s.phase === 'healthy' ? [] : ['etcdserver: no leader'],
          },
        };
      },
      Reset: (node) => {
        const s = state(node);
        s.resets++;
        // answered at once; the node keeps showing its old state for a few more reads (facts §3)
        s.staleAnswers = 3;
        return {};
      },
      Bootstrap: (node) => {
        const s = state(node);
        if (s.bootstrapRefusal) throw s.bootstrapRefusal;
        s.bootstraps++;
        return {};
      },
    },
    cosiGet: () => ({ spec: { yamlSpec: 'controlplane\n' } }),
  });
  client = createTalosClient(loadTalosconfig({ talosconfig: writeTalosconfig(pki, [talos.address], NODES) }, {}), {
    defaultTimeoutMs: 3000,
    connectTimeoutMs: 2000,
  });
});

afterAll(async () => {
  client?.close();
  await talos?.stop();
});

const journals: Journal[] = [];
afterEach(() => {
  for (const j of journals.splice(0)) j.close();
});

function depsFor(): EffectDeps {
  const incident = createIncidentDir(join(mkdtempSync(join(tmpdir(), 'talos-dr-wizard-')), 'incident'));
  const journal = new Journal(incident.dir);
  journals.push(journal);
  return { client, connectMaintenance: null, incident, journal, operator: 'tester', statusTimeoutMs: 2000 };
}

describe('the quorum verdict stands on EtcdStatus (issue 12 item 2)', () => {
  it('every member list answers "no leader": verdict lost, freshest right, no node shown as faulty', async () => {
    reset('no-leader');
    const report = await gatherStatus(client, NODES, { timeoutMs: 2000 });
    expect(report.verdict).toBe('lost');
    expect(report.freshest).toBe('10.5.0.3');
    expect(report.nodes.map((n) => n.raftAppliedIndex)).toEqual([100n, 250n, 180n]);
    // the member list's failure without a leader is what it always does then: explained once, not a node fault
    expect(report.nodes.map((n) => n.error)).toEqual([null, null, null]);
    expect(report.reason).toMatch(/member lists could not be read \(etcd answers them only with a leader\)/);
  });

  it('the wizard names each node by its hostname, and keeps the name once the member list stops answering', async () => {
    const deps = depsFor();
    reset('healthy');
    expect((await observeNodes(deps, NODES)).map((v) => v.hostname)).toEqual(['cp-1', 'cp-2', 'cp-3']);
    reset('no-leader');
    const views = await observeNodes(deps, NODES);
    expect(views.map((v) => v.hostname)).toEqual(['cp-1', 'cp-2', 'cp-3']);
    expect(views.map((v) => v.error)).toEqual([null, null, null]);
  });
});

describe('a wiped node counts as back only after it was seen to reset (issue 12 item 3)', () => {
  it('a node that was Preparing before its Reset is not back while it still shows its old state', async () => {
    reset('preparing');
    const deps = depsFor();
    const timing = { ...timingFor(100), pollMs: 20, nodeBackTimeoutMs: 30_000 };
    const actors = recoveryActors(deps, timing);
    let phaseWhenBack: Phase | null = null;
    const parent = setup({
      actors: {
        prep: prepareNodeMachine.provide({
          actors: { resetNode: actors.resetNode, applyConfig: actors.applyConfig, observe: actors.observe },
        }),
      },
    }).createMachine({
      initial: 'running',
      states: {
        running: {
          invoke: {
            src: 'prep',
            input: { node: '10.5.0.2', preparation: 'wipe', labels: ['EPHEMERAL'], configFile: null, timing },
          },
          on: {
            'prep.done': { target: 'done', actions: () => (phaseWhenBack = state('10.5.0.2').phase) },
            'prep.failed': 'failed',
          },
        },
        done: { type: 'final' },
        failed: { type: 'final' },
      },
    });
    const actor = createActor(parent).start();
    const end = await waitFor(actor, (s) => s.status === 'done', { timeout: 30_000 });
    expect(end.value).toBe('done');
    expect(state('10.5.0.2').resets).toBe(1);
    // back means back from the reset: rebooted with a new etcd history, not the old Preparing answered before it
    expect(phaseWhenBack).toBe('restarted');
  });
});

describe('resume decides "Bootstrap already sent" from what a real node shows (issue 12 item 4)', () => {
  const input = { node: '10.5.0.2', skipHashCheck: false, opId: 'bootstrap:10.5.0.2:0', wiped: true, uploadSent: true };

  function interruptedBootstrap(deps: EffectDeps, sentAt: number): void {
    deps.journal.append({
      kind: 'action',
      phase: 'before',
      opId: input.opId,
      node: input.node,
      what: 'bootstrap (recover_etcd)',
      by: 'tester',
      data: { sentAt },
    });
  }

  it('a new etcd runner that began after the send (no "Bootstrap requested" text) means it landed: not sent again', async () => {
    const sentAt = Date.now() - 60_000;
    reset('preparing', sentAt + 1000);
    const deps = depsFor();
    interruptedBootstrap(deps, sentAt);
    const actor = createActor(recoveryActors(deps, timingFor(100)).bootstrapNode, { input }).start();
    expect(await toPromise(actor)).toEqual({ alreadyDone: true });
    expect(state('10.5.0.2').bootstraps).toBe(0);
    expect(readJournal(deps.incident.dir).at(-1)).toMatchObject({
      opId: input.opId,
      phase: 'after',
      ok: true,
      result: 'the node shows it happened: not sent again',
    });
  });

  it('an etcd history from before the send means it never arrived: sent once', async () => {
    const sentAt = Date.now() - 60_000;
    reset('preparing', sentAt - HOUR);
    const deps = depsFor();
    interruptedBootstrap(deps, sentAt);
    const actor = createActor(recoveryActors(deps, timingFor(100)).bootstrapNode, { input }).start();
    expect(await toPromise(actor)).toEqual({ alreadyDone: false });
    expect(state('10.5.0.2').bootstraps).toBe(1);
  });

  it('AlreadyExists on a node this incident wiped and bootstrapped, etcd not starting: a new wipe and upload', async () => {
    const sentAt = Date.now() - 60_000;
    reset('failed', sentAt - HOUR);
    state('10.5.0.2').bootstrapRefusal = new NodeFailure(6, 'etcd data directory is not empty');
    const deps = depsFor();
    interruptedBootstrap(deps, sentAt);
    const actor = createActor(recoveryActors(deps, timingFor(100)).bootstrapNode, { input }).start();
    const failure = toPromise(actor);
    await expect(failure).rejects.toThrow(
      /^10\.5\.0\.2's etcd data directory is not empty after a restore that did not finish \(etcd Failed\): it needs a new wipe and a new upload/,
    );
    // marked as a failed restore, so step 8 offers exactly that: a new wipe and upload of this node
    await expect(failure).rejects.toMatchObject({ restoreFailed: true, retryable: false });
    expect(state('10.5.0.2').bootstraps).toBe(0);
  });
});
