/**
 * Reachable-state coverage. @xstate/graph lists every state node of the recovery machine and of the per-node
 * preparation machine; the drives below reach each of them. The happy paths and the guards run against the real
 * simulator in test/drill and test/machines/guards.test.ts; the failure paths a simulator cannot produce on demand
 * (a connect that fails, a backup that fails, a restore that fails inside etcd, a lost Bootstrap answer, …) are
 * reached here by scripting the effects at the machine's actor boundary — the one place effects enter (STYLE §10).
 */
import { describe, expect, it } from 'vitest';
import { createActor, fromCallback, fromPromise, waitFor, type AnyActorRef } from 'xstate';
import { getStateNodes } from '@xstate/graph';
import { recoveryMachine, type NodeView, type RecoveryEvent, type SnapshotInfo } from '../../machines/recovery.js';
import { prepareNodeMachine } from '../../machines/prepare-node.js';
import { stateVisits } from './scripted-cluster.js';

const NODES = ['10.0.0.2', '10.0.0.3', '10.0.0.4'];
const visits = stateVisits();
const { visited } = visits;

type Phase = 'broken' | 'preparing' | 'running';
interface World {
  phase: Record<string, Phase>;
  verdict: 'lost' | 'healthy' | 'degraded' | 'unknown';
  machineType?: Record<string, 'init' | 'controlplane'>;
  maintenance?: string[];
  stuck?: string[];
  restoreFails?: boolean;
  neverHealthy?: boolean;
}

const members = NODES.map((n, i) => ({
  id: `00000000000000a${i}`,
  hostname: n,
  peerUrls: [`https://${n}:2380`],
  clientUrls: [],
  isLearner: false,
}));

function view(w: World, node: string): NodeView {
  const base = {
    node,
    hostname: node,
    reachable: true,
    machineType: w.machineType?.[node] ?? 'controlplane',
    membersError: null,
    statusError: null,
  } as const;
  if (w.maintenance?.includes(node) && w.phase[node] === 'broken')
    return {
      ...base,
      reachable: false,
      maintenance: true,
      machineType: 'unknown',
      etcdService: null,
      etcdHealthy: null,
      members: null,
      status: null,
    };
  const healthy = w.verdict === 'healthy' || (w.verdict === 'degraded' && node !== NODES[2]);
  if (w.phase[node] === 'broken') {
    if (w.verdict === 'unknown' && node !== NODES[0])
      return {
        ...base,
        reachable: false,
        machineType: 'unknown',
        etcdService: null,
        etcdHealthy: null,
        members: null,
        status: null,
      };
    return healthy
      ? {
          ...base,
          etcdService: 'Running',
          etcdHealthy: true,
          members,
          status: { memberId: 'a', leader: 'b', errors: [], raftAppliedIndex: '100' },
        }
      : {
          ...base,
          etcdService: 'Running',
          etcdHealthy: false,
          members: null,
          status: {
            memberId: 'a',
            leader: '0000000000000000',
            errors: ['etcdserver: no leader'],
            raftAppliedIndex: node === NODES[0] ? '120' : '90',
          },
        };
  }
  if (w.phase[node] === 'preparing' || w.stuck?.includes(node))
    return {
      ...base,
      etcdService: w.stuck?.includes(node) ? 'Waiting' : 'Preparing',
      etcdLastEvent: w.stuck?.includes(node) ? 'Waiting for time sync' : 'Running pre state',
      etcdHealthy: null,
      members: null,
      status: null,
    };
  if (w.restoreFails)
    return {
      ...base,
      etcdService: 'Failed',
      etcdEvents: ['Failed to run pre stage: error recovering from the snapshot'],
      etcdHealthy: false,
      members: null,
      status: null,
    };
  return {
    ...base,
    etcdService: 'Running',
    etcdHealthy: !w.neverHealthy,
    members,
    status: { memberId: 'a', leader: 'b', errors: [], raftAppliedIndex: '5' },
  };
}

const snapshot = (over: Partial<SnapshotInfo> = {}): SnapshotInfo => ({
  file: '/x/etcd.snapshot',
  sha256: 'aa',
  method: 'api',
  node: NODES[0] as string,
  raftAppliedIndex: '120',
  revision: 10,
  totalKeys: 20,
  totalSize: 4096,
  hash: '01234567',
  integrity: 'verified',
  kind: 'bbolt',
  structure: 'ok',
  usable: true,
  needsSkipHashCheck: false,
  problems: [],
  bytes: 4096,
  takenAt: Date.now(),
  ...over,
});

/** Failures to script, by actor name: each call takes the next entry (an error to throw, or 'ok'). */
type Script = Partial<Record<string, (Error | 'ok' | { output: unknown })[]>>;
const err = (message: string, retryable = false, mayHaveLanded = false) =>
  Object.assign(new Error(message), { retryable, mayHaveLanded });

/** Fails the live view once while the machine is in a given step's first read (set per drive). */
let failReadIn: string | null = null;
let currentValue: () => unknown = () => null;

function effects(w: World, script: Script) {
  const next = (name: string): Error | 'ok' | { output: unknown } => script[name]?.shift() ?? 'ok';
  const step = async <T>(name: string, ok: () => T): Promise<T> => {
    await new Promise((r) => setTimeout(r, 1));
    const s = next(name);
    if (s instanceof Error) throw s;
    if (s !== 'ok') return s.output as T;
    return ok();
  };
  const observe = fromPromise<NodeView[], { nodes: string[] }>(async ({ input }) => {
    await new Promise((r) => setTimeout(r, 1));
    if (failReadIn && JSON.stringify(currentValue()).includes(failReadIn)) {
      failReadIn = null;
      throw err('unreachable for a moment', true);
    }
    return step('observe', () => input.nodes.map((n) => view(w, n)));
  });
  const actors = {
    connect: fromPromise(({ input }: { input: { nodes: string[] } }) =>
      step('connect', () => ({
        nodes: input.nodes.map((n) => ({ node: n, ok: true, version: 'v1.11.6', error: null })),
      })),
    ),
    assess: fromPromise(({ input }: { input: { nodes: string[] } }) =>
      step('assess', () => ({ observations: input.nodes.map((n) => view(w, n)), volumes: {} })),
    ),
    observe,
    acquireSnapshot: fromPromise(({ input }: { input: { option: { method: string } } }) =>
      step('acquireSnapshot', () =>
        snapshot(input.option.method === 'raw' ? { method: 'raw', integrity: 'absent', needsSkipHashCheck: true } : {}),
      ),
    ),
    backupConfigs: fromPromise(({ input }: { input: { nodes: string[]; blank: string[] } }) =>
      step('backupConfigs', () => ({
        configs: [...input.nodes, ...input.blank].map((n) => ({
          node: n,
          file: `/x/${n}.yaml`,
          source: 'live' as const,
          error: null,
        })),
      })),
    ),
    convertInitNode: fromPromise(({ input }: { input: { node: string } }) =>
      step('convertInitNode', () => {
        if (w.machineType) w.machineType[input.node] = 'controlplane';
      }),
    ),
    verifySnapshotFile: fromPromise(() => step('verifySnapshotFile', () => ({ sha256: 'aa' }))),
    uploadSnapshot: fromCallback<RecoveryEvent, { node: string }>(({ sendBack }) => {
      const s = next('uploadSnapshot');
      const t = setTimeout(() => {
        sendBack({ type: 'upload.progress', bytes: 2048, total: 4096, restarts: 0 });
        if (s instanceof Error)
          sendBack({
            type: 'upload.failed',
            error: s.message,
            retryable: (s as { retryable?: boolean }).retryable === true,
          });
        else sendBack({ type: 'upload.done' });
      }, 1);
      return () => clearTimeout(t);
    }),
    bootstrapNode: fromPromise(() =>
      step('bootstrapNode', () => {
        for (const n of NODES) w.phase[n] = 'running';
        return { alreadyDone: false };
      }),
    ),
  };
  const prep = prepareNodeMachine.provide({
    actors: {
      resetNode: fromPromise<void, { node: string; labels: string[]; opId: string }>(({ input }) =>
        step('resetNode', () => void (w.phase[input.node] = 'preparing')),
      ),
      applyConfig: fromPromise<void, { node: string; file: string; opId: string }>(({ input }) =>
        step('applyConfig', () => void (w.phase[input.node] = 'preparing')),
      ),
      observe,
    },
  });
  return { ...actors, prepareNode: prep };
}

const TIMING = {
  pollMs: 5,
  nodeBackTimeoutMs: 200,
  preparingTimeoutMs: 60,
  verifyTimeoutMs: 150,
  backoffMs: 2,
  maxAttempts: 2,
};

function record(ref: AnyActorRef) {
  const snap = ref.getSnapshot() as { _nodes?: { id: string }[]; children?: Record<string, AnyActorRef> };
  for (const n of snap._nodes ?? []) visited.add(n.id);
  for (const child of Object.values(snap.children ?? {}))
    if ((child.getSnapshot() as { _nodes?: unknown })._nodes) record(child);
}

type Answer = (p: NonNullable<ReturnType<typeof promptOf>>, send: (e: RecoveryEvent) => void) => boolean | void;
const promptOf = (a: { getSnapshot(): { context: { prompt: unknown } } }) =>
  a.getSnapshot().context.prompt as { id: string; recommended: RecoveryEvent | null } | null;

/** Runs the machine with scripted effects; answers prompts with `answer` first, else the recommended answer. */
async function drive(
  w: World,
  script: Script = {},
  answer: Answer = () => false,
  until = (s: { status: string; value: unknown }) => s.status === 'done',
) {
  const actor = createActor(recoveryMachine.provide({ actors: effects(w, script) as never }), {
    input: { nodes: NODES, operator: 'tester', mode: 'drill', timing: TIMING, givenSnapshots: ['/x/given.snapshot'] },
    // every microstep, so states passed through by eventless transitions count too, in children as well
    inspect: visits.inspect,
  });
  currentValue = () => actor.getSnapshot().value;
  let answered = '';
  const retried = new Set<string>();
  const asked = new Map<string, number>();
  actor.subscribe(() => {
    record(actor);
    const p = promptOf(actor);
    const key = p ? String(actor.getSnapshot().context.promptSeq) : '';
    if (!p || key === answered) return;
    answered = key;
    setTimeout(() => {
      if (promptOf(actor)?.id !== p.id) return;
      if (answer(p, (e) => actor.send(e))) return;
      // a question that keeps coming back (assess again, keep waiting) is given up the third time
      asked.set(p.id, (asked.get(p.id) ?? 0) + 1);
      if ((asked.get(p.id) ?? 0) > 2) return void actor.send({ type: 'give-up' });
      // a failure prompt (its recommended answer is to try again) is answered "try again" once, then given up, as
      // autopilot does
      const failure = !p.recommended || p.recommended.type === 'retry';
      if (failure && !retried.has(p.id)) {
        retried.add(p.id);
        actor.send({ type: 'retry' });
        return;
      }
      actor.send(failure ? { type: 'give-up' } : (p.recommended ?? { type: 'give-up' }));
    }, 1);
  });
  const kids = setInterval(() => record(actor), 2);
  actor.start();
  const end = await waitFor(actor, until, { timeout: 5000 }).catch(() => {
    const now = actor.getSnapshot();
    throw new Error(
      `stuck in ${JSON.stringify(now.value)}: ${JSON.stringify({ prompt: now.context.prompt?.id, attempt: now.context.attempt, notice: now.context.notice, wait: now.context.wait?.message, rows: Object.values(now.context.rows).map((r) => r.prep) })}`,
    );
  });
  clearInterval(kids);
  actor.stop();
  return end.context;
}

const lost = (): World => ({
  phase: Object.fromEntries(NODES.map((n) => [n, 'broken'])) as Record<string, Phase>,
  verdict: 'lost',
});

describe('every state of the recovery machine is reached', () => {
  it('happy path with retries on every action', async () => {
    const c = await drive(lost(), {
      connect: [err('refused', true)],
      assess: [err('deadline', true)],
      acquireSnapshot: [err('stream cut', true)],
      backupConfigs: [err('busy', true)],
      observe: [err('unreachable', true)],
      uploadSnapshot: [err('stream cut', true)],
      bootstrapNode: [err('bootstrap is not available yet', true)],
      resetNode: [err('unavailable', true)],
    });
    expect(c.outcome).toBe('recovered');
  });

  it('outcomes straight from the verdict, and every failure prompt', async () => {
    expect((await drive({ ...lost(), verdict: 'healthy' })).outcome).toBe('nothing-to-do');
    // the guided replacement (recommended now) has its own coverage: test/machines/replace-member-coverage.test.ts
    const stop = await drive({ ...lost(), verdict: 'degraded' }, {}, (p, send) =>
      p.id === 'quorum-holds' ? (send({ type: 'choose', option: 'stop' }), true) : false,
    );
    expect(stop.outcome).toBe('stopped-quorum-intact');
    const over = await drive({ ...lost(), verdict: 'degraded' }, {}, (p, send) =>
      p.id === 'quorum-holds' ? (send({ type: 'override', reason: 'testing the override' }), true) : false,
    );
    expect(over.outcome).toBe('recovered');
    expect((await drive({ ...lost(), verdict: 'unknown' })).outcome).toMatch(/^failed: /);
    expect((await drive(lost(), { connect: [err('bad cert')] })).outcome).toBe('recovered');
    expect((await drive(lost(), { assess: [err('bad')] })).outcome).toBe('recovered');
    expect((await drive(lost(), { connect: [err('bad cert'), err('bad cert')] })).outcome).toMatch(/^failed: bad cert/);
    expect((await drive(lost(), { backupConfigs: [err('disk full')] })).outcome).toBe('recovered');
    expect((await drive(lost(), { assess: ['ok', err('deadline', true)] })).outcome).toBe('recovered');
    failReadIn = '"bootstrap":"reading"';
    expect((await drive(lost())).outcome).toBe('recovered');
    expect((await drive(lost(), { observe: [err('x', true), err('x', true), err('x', true)] })).outcome).toBeTruthy();
  });

  it('snapshot: unusable file, raw copy with acknowledgement, skip refused', async () => {
    const raw = { output: snapshot({ method: 'raw', integrity: 'absent', needsSkipHashCheck: true }) };
    const acked = await drive(lost(), { acquireSnapshot: [raw] });
    expect(acked.outcome).toBe('recovered');
    expect(acked.skipHashCheckAcknowledged).toBe(true);
    const c = await drive(
      lost(),
      {
        acquireSnapshot: [
          { output: snapshot({ usable: false, kind: 'gzip', problems: ['gzip'] }) },
          err('no etcd'),
          { output: snapshot({ method: 'raw', integrity: 'absent', needsSkipHashCheck: true }) },
          'ok',
        ],
      },
      (p, send) => {
        if (p.id === 'skip-hash-check') return (send({ type: 'answer.no' }), true);
        return false;
      },
    );
    expect(c.outcome).toBeTruthy();
  });

  it('init node conversion with a failure, blank machines re-created, a blank node without backup', async () => {
    const w = { ...lost(), machineType: { [NODES[0] as string]: 'init' as const }, maintenance: [NODES[2] as string] };
    expect((await drive(w, { convertInitNode: [err('x', true), err('x')] })).outcome).toBe('recovered');
    const noBackup = await drive(
      { ...lost(), maintenance: [NODES[2] as string] },
      {
        backupConfigs: [{ output: { configs: [{ node: NODES[2], file: null, source: null, error: 'none' }] } }],
      },
    );
    expect(noBackup.outcome).toMatch(/no configuration backup/);
  });

  it('preparation failures, stuck nodes, overrides, and the waits that time out', async () => {
    expect((await drive(lost(), { resetNode: [err('refused')] })).outcome).toBe('recovered');
    expect((await drive(lost(), { resetNode: [1, 2, 3, 4, 5, 6].map(() => err('refused')) })).outcome).toMatch(
      /^failed: /,
    );
    const stuck = await drive({ ...lost(), stuck: [NODES[2] as string] }, {}, (p, send) =>
      p.id === 'preparing-timeout' ? (send({ type: 'override', reason: 'node 3 clock is broken' }), true) : false,
    );
    expect(stuck.excluded).toEqual([NODES[2]]);
    const back = await drive({ ...lost(), stuck: [NODES[1] as string] }, { resetNode: ['ok', { output: undefined }] });
    expect(back.outcome).toBeTruthy();
  });

  it('bootstrap: changed file, lost answer, refused upload; verify: restore failure and timeout; abort and resume', async () => {
    // the file changed before the first wipe: asked, checked again once (still changed), then stopped
    let asked = 0;
    const changedBeforeWipe = await drive(
      lost(),
      { verifySnapshotFile: [{ output: { sha256: 'bb' } }, { output: { sha256: 'bb' } }] },
      (p, send) =>
        p.id === 'snapshot-changed'
          ? (send({ type: 'choose', option: asked++ === 0 ? 'again' : 'stop' }), true)
          : false,
      (s) => s.value === 'stoppedByUser' || s.status === 'done',
    );
    expect(changedBeforeWipe.outcome).toBe('stopped-by-user');
    expect(
      (await drive(lost(), { verifySnapshotFile: ['ok', 'ok', 'ok', { output: { sha256: 'bb' } }] })).outcome,
    ).toMatch(/changed since/);
    expect((await drive(lost(), { bootstrapNode: [err('connection reset', false, true)] })).outcome).toMatch(/^failed/);
    expect((await drive(lost(), { uploadSnapshot: [err('disk full')] })).outcome).toBe('recovered');
    // the bootstrap node's restore fails inside etcd with no other member serving: step 8's new wipe is offered
    // (test/machines/restore-failed-verify.test.ts walks it); No stops there
    const restoreFailed = await drive(
      { ...lost(), restoreFails: true },
      {},
      (p, send) => (p.id.startsWith('rewipe:') ? (send({ type: 'answer.no' }), true) : false),
      (s) => s.value === 'stoppedByUser' || s.status === 'done',
    );
    expect(restoreFailed.outcome).toBe('stopped-by-user');
    expect(restoreFailed.steps.find((x) => x.name === 'verify')?.result).toMatch(/restore failed/);
    expect((await drive({ ...lost(), neverHealthy: true })).outcome).toMatch(/^failed: etcd not healthy/);
    const stopped = await drive(
      lost(),
      {},
      (p, send) => (p.id === 'snapshot-source' ? (send({ type: 'abort' }), true) : false),
      (s) => s.value === 'stoppedByUser',
    );
    expect(stopped.outcome).toBe('stopped-by-user');
  });

  it('covers every state node of both machines', () => {
    const all = [...getStateNodes(recoveryMachine.root), ...getStateNodes(prepareNodeMachine.root)]
      .filter((n) => n.type !== 'history')
      .map((n) => n.id);
    // each procedure the assessment can choose besides the full recovery has its own coverage test beside its states
    const ownCoverage = [
      'recovery.procedure.replaceMember',
      'recovery.procedure.nospace',
      'recovery.procedure.afterRestore',
      'recovery.procedure.assess.databaseFull',
      // step 4's read again when a node missed it: test/machines/backup-unread.test.ts
      'recovery.procedure.backup.unread',
      // step 3's question before restoring data older than a member's: test/wizard/older-snapshot.test.ts
      'recovery.procedure.snapshot.acknowledgeOlder',
      // step 1's wait for a silent node and the gate before a full recovery: test/machines/unreachable-at-start.test.ts
      'recovery.procedure.connect.probing',
      'recovery.procedure.connect.waiting',
      'recovery.procedure.connect.unanswered',
      'recovery.procedure.connect.leaveOut',
      'recovery.procedure.connect.gate',
      'recovery.procedure.connect.gateProbing',
      'recovery.procedure.connect.gateDeciding',
      'recovery.procedure.connect.gateWaiting',
      'recovery.procedure.connect.gateUnanswered',
      'recovery.procedure.connect.gateLeaveOut',
      // step 8's wait for a node that reboots during the upload: test/machines/upload-reboot.test.ts
      'recovery.procedure.bootstrap.awaitingNode',
      // step 8's new wipe, upload and Bootstrap after a failed restore: test/machines/restore-failed-rewipe.test.ts
      'recovery.procedure.bootstrap.restoreFailed',
      'recovery.procedure.bootstrap.rewiping',
      'recovery.procedure.bootstrap.rewipeBack',
      'recovery.memberReplaced',
      'recovery.nospaceCleared',
    ];
    const missing = all.filter(
      (id) => !visited.has(id) && !ownCoverage.some((p) => id === p || id.startsWith(`${p}.`)),
    );
    expect(missing).toEqual([]);
  });
});
