/**
 * Reachable-state coverage of the NOSPACE playbook (machines/nospace/states.ts): @xstate/graph lists every state node
 * under `procedure.nospace` (and the assessment's `databaseFull`, which leads there); the drives below reach each of
 * them with the effects scripted at the machine's actor boundary — a small world of three members over their quota,
 * cp-1 leading, which a defragment shrinks and a disarm clears. The real thing over the wire is test/drill/nospace.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { fromPromise, type StateValue } from 'xstate';
import { recoveryMachine } from '../../machines/recovery/machine.js';
import { initialContext } from '../../machines/recovery/context.js';
import type { NodeView, Prompt, RecoveryContext, RecoveryEvent, SnapshotInfo } from '../../machines/recovery.js';
import type { DefragOutput, DisarmOutput, MemberSpace, NospaceState } from '../../machines/nospace/types.js';
import type { VerdictResult } from '../../machines/decisions.js';
import { onEachPrompt, settle, startAt, stateVisits } from './scripted-cluster.js';

const visits = stateVisits();
const NODES = ['10.0.0.1', '10.0.0.2', '10.0.0.3'];
const [CP1, CP2, CP3] = NODES as [string, string, string];
const id = (node: string) => `a00000000000000${NODES.indexOf(node) + 1}`;
const QUOTA = 1_000_000;

interface World {
  size: Record<string, number>;
  inUse: number;
  alarms: string[];
  /** no member names a leader (from this many reads on; Infinity: never) */
  leaderLostAfter: number;
  /** thrown by the next readSpace calls, in order (null: answer) */
  readErrors: (Error | null)[];
  defragFails: number;
  disarmFails: number;
  /** the alarm comes back after the disarm (the data itself is over the quota) */
  alarmBack: boolean;
  /** reads in the check step whose alarm lists fail */
  alarmsUnlisted: number;
  reads: number;
  log: string[];
}

const world = (w: Partial<World> = {}): World => ({
  size: { [CP1]: 1_200_000, [CP2]: 1_150_000, [CP3]: 1_180_000 },
  inUse: 400_000,
  alarms: [...NODES],
  leaderLostAfter: Infinity,
  readErrors: [],
  defragFails: 0,
  disarmFails: 0,
  alarmBack: false,
  alarmsUnlisted: 0,
  reads: 0,
  log: [],
  ...w,
});

const err = (message: string, retryable = false) => Object.assign(new Error(message), { retryable });

function readSpace(w: World, quota: boolean): MemberSpace[] {
  w.reads++;
  const error = w.readErrors.shift();
  if (error) throw error;
  const unlisted = quota && w.alarmsUnlisted-- > 0;
  return NODES.map((node) => ({
    node,
    answered: true,
    memberId: id(node),
    leader: w.reads >= w.leaderLostAfter ? '0000000000000000' : id(CP1),
    dbSize: w.size[node]!,
    dbSizeInUse: w.inUse,
    alarms: unlisted ? null : w.alarms.map((n) => ({ memberId: id(n), alarm: 'NOSPACE' as const })),
    quotaBytes: quota ? QUOTA : null,
    error: null,
  }));
}

function effects(w: World) {
  return {
    readSpace: fromPromise<MemberSpace[], { nodes: string[]; quota: boolean }>(async ({ input }) =>
      readSpace(w, input.quota),
    ),
    defragmentMember: fromPromise<DefragOutput, { node: string; opId: string }>(async ({ input }) => {
      if (w.defragFails-- > 0) throw err(`${input.node}: etcd defragment failed: context deadline exceeded`);
      w.log.push(`defrag ${input.node}`);
      const before = w.size[input.node]!;
      w.size[input.node] = w.inUse;
      return {
        node: input.node,
        before: { dbSize: before, dbSizeInUse: w.inUse },
        after: { dbSize: w.inUse, dbSizeInUse: w.inUse },
        alreadyDone: false,
      };
    }),
    disarmAlarms: fromPromise<DisarmOutput, { node: string; opId: string }>(async ({ input }) => {
      if (w.disarmFails-- > 0) throw err('etcdserver: request timed out');
      w.log.push(`disarm via ${input.node}`);
      const disarmed = w.alarms.map((n) => ({ memberId: id(n), alarm: 'NOSPACE' as const }));
      w.alarms = w.alarmBack ? [CP2] : [];
      return { node: input.node, disarmed, alreadyDone: false };
    }),
    acquireSnapshot: fromPromise<SnapshotInfo>(async () => SNAPSHOT),
  };
}

const SNAPSHOT: SnapshotInfo = {
  file: '/x/snapshots/etcd.snapshot',
  sha256: 'ab',
  method: 'api',
  node: CP1,
  raftAppliedIndex: '100',
  revision: 50,
  totalKeys: 10,
  totalSize: 1000,
  hash: '1',
  integrity: 'verified',
  kind: 'bbolt',
  structure: 'ok',
  usable: true,
  needsSkipHashCheck: false,
  problems: [],
  bytes: 1000,
  takenAt: 0,
};

const VERDICT: VerdictResult = {
  verdict: 'nospace',
  reason: 'etcd raised a NOSPACE alarm',
  freshest: CP1,
  alarms: NODES.map((n) => ({ memberId: id(n), node: n, alarm: 'NOSPACE' })),
};

const observation = (node: string): NodeView => ({
  node,
  hostname: node,
  reachable: true,
  machineType: 'controlplane',
  etcdService: 'Running',
  etcdHealthy: true,
  members: null,
  membersError: null,
  status: { memberId: id(node), leader: id(CP1), errors: [], raftAppliedIndex: '100' },
  statusError: null,
});

type Answer = (p: Prompt, count: number) => RecoveryEvent | null;
interface Start {
  /** the state to start in (default: the playbook's entry) */
  value?: StateValue;
  nospace?: NospaceState | null;
  verdict?: VerdictResult;
}

/** Runs the playbook from `start`, answering prompts with `answer` (else recommended; retry once at a failure). */
async function drive(w: World, start: Start = {}, answer: Answer = () => null) {
  const ctx0 = initialContext(
    {
      nodes: NODES,
      operator: 'tester',
      mode: 'drill',
      timing: { pollMs: 1, backoffMs: 1, maxAttempts: 2 },
    },
    0,
  );
  const context: RecoveryContext = {
    ...ctx0,
    procedure: start.value ? 'recovery' : 'nospace',
    verdict: start.verdict ?? VERDICT,
    observations: NODES.map(observation),
    snapshot: start.value ? null : SNAPSHOT,
    snapshotOptions: [],
    nospace: start.nospace ?? null,
  };
  const machine = recoveryMachine.provide({ actors: effects(w) as never });
  const value = start.value ?? { procedure: { nospace: 'route' } };
  const actor = startAt(machine, value, context, visits.inspect, (a) =>
    onEachPrompt(a, (p, count) => {
      const reply = (n: number) => {
        const mine = answer(p, n);
        if (mine) {
          const seq = (a.getSnapshot() as { context: RecoveryContext }).context.promptSeq;
          a.send(mine);
          // refused (the same question still open): answered again, as a person would after reading the refusal
          const after = (a.getSnapshot() as { context: RecoveryContext }).context;
          if (after.promptSeq === seq && after.prompt?.id === p.id && n < 3) setTimeout(() => reply(n + 1), 1);
          return;
        }
        if (!p.recommended) return void a.send(count > 3 ? { type: 'give-up' } : { type: 'retry' });
        a.send(count > 3 ? { type: 'give-up' } : p.recommended);
      };
      reply(count);
    }),
  );
  return { context: await settle(actor), log: w.log };
}

const doneMember = (node: string) => ({
  node,
  memberId: id(node),
  dbSizeBefore: 1_200_000,
  dbSizeAfter: 400_000,
  inUseBefore: 400_000,
  inUseAfter: 400_000,
  status: 'done' as const,
});
const allDone: NospaceState = {
  order: [CP2, CP3, CP1],
  members: NODES.map(doneMember),
  disarmed: false,
  leader: CP1,
  skipped: [],
};

describe('every state of the NOSPACE playbook is reached', () => {
  it('from the assessment: databaseFull, the snapshot, then followers, the leader last, disarm, cleared', async () => {
    const r = await drive(world(), { value: { procedure: { assess: 'deciding' } } });
    expect(r.context.outcome).toBe('nospace-cleared');
    expect(r.log).toEqual([`defrag ${CP2}`, `defrag ${CP3}`, `defrag ${CP1}`, `disarm via ${CP2}`]);
    // (started at the assessment's decision: steps 1 and 2 never ran here)
    expect(r.context.steps.map((s) => `${s.n} ${s.name} ${s.status}`)).toEqual([
      '1 connect pending',
      '2 assess pending',
      '3 snapshot done',
      '4 defragment done',
      '5 disarm alarm done',
      '6 check space done',
    ]);
  });

  it('read failures (retried on their own, then asked), a failed defragment and a failed disarm tried again', async () => {
    const w = world({
      readErrors: [err('timeout', true), err('connection refused')],
      defragFails: 1,
      disarmFails: 1,
      alarmsUnlisted: 1,
    });
    const r = await drive(w);
    expect(r.context.outcome).toBe('nospace-cleared');
    expect(r.log).toEqual([`defrag ${CP2}`, `defrag ${CP3}`, `defrag ${CP1}`, `disarm via ${CP2}`]);
    // 2.2 MiB reclaimed in all; 40% of the quota in use: no need to raise it
    const check = r.context.steps.find((s) => s.name === 'check space');
    expect(check?.result).toMatch(
      /no alarm after the disarm; 2\.2 MiB reclaimed; The largest member now uses 390\.6 KiB of its 976\.6 KiB quota \(40%/,
    );
    expect(r.context.followUp.join('\n')).not.toMatch(/quota-backend-bytes/);
  });

  it('a read failure at the disarm and at the check is asked about and tried again', async () => {
    const w = world({
      readErrors: [
        null,
        null,
        null,
        null,
        err('timeout', true),
        err('refused'),
        null,
        err('timeout', true),
        err('refused'),
      ],
    });
    expect((await drive(w)).context.outcome).toBe('nospace-cleared');
  });

  it('the alarm back after the disarm: failed, saying the database is over its quota, with the YAML to add', async () => {
    const r = await drive(world({ alarmBack: true, inUse: 900_000 }));
    expect(r.context.outcome).toMatch(
      /^failed: the NOSPACE alarm came back on 10\.0\.0\.2 after the disarm: the database is still over its quota \(976\.6 KiB\); raise quota-backend-bytes in cluster\.etcd\.extraArgs/,
    );
    expect(r.context.followUp.join('\n')).toContain('quota-backend-bytes: "1073741824"');
  });

  it('no leader: nothing defragmented; a leader lost before the disarm: nothing disarmed', async () => {
    const none = await drive(world({ leaderLostAfter: 1 }));
    expect(none.context.outcome).toMatch(/^failed: No member names a leader/);
    expect(none.log).toEqual([]);
    const later = await drive(world({ leaderLostAfter: 5 }));
    expect(later.context.outcome).toMatch(/^failed: No member names a leader/);
    expect(later.log).toEqual([`defrag ${CP2}`, `defrag ${CP3}`, `defrag ${CP1}`]);
  });

  it('a failed member left out by an override with a reason (an empty reason refused); the disarm says so', async () => {
    let disarmDetail = '';
    const r = await drive(world({ defragFails: 1 }), {}, (p, count) => {
      if (p.id.startsWith('defragment-blocked'))
        return { type: 'override', reason: count === 1 ? ' ' : 'disk failing' };
      if (p.id.startsWith('disarm:')) disarmDetail = p.detail;
      return null;
    });
    expect(r.context.outcome).toBe('nospace-cleared');
    expect(r.log).toEqual([`defrag ${CP3}`, `defrag ${CP1}`, `disarm via ${CP2}`]);
    expect(r.context.nospace?.skipped).toEqual([CP2]);
    expect(r.context.overrides).toMatchObject([{ what: `go on without defragmenting ${CP2}`, reason: 'disk failing' }]);
    expect(r.context.guardStops.map((g) => g.rule)).toEqual(['reasonGiven']);
    expect(disarmDetail).toContain('10.0.0.2 was left out of the defragmentation by your override');
  });

  it('Esc at a defragment, then stop; no at the disarm: stopped, resumable', async () => {
    const stop = await drive(world(), {}, (p) =>
      p.id.startsWith('defragment:')
        ? { type: 'answer.no' }
        : p.id.startsWith('defragment-blocked')
          ? { type: 'choose', option: 'stop' }
          : null,
    );
    expect(stop.context.outcome).toBe('stopped-by-user');
    expect(stop.log).toEqual([]);
    const no = await drive(world(), { nospace: allDone }, (p) =>
      p.id.startsWith('disarm:') ? { type: 'answer.no' } : null,
    );
    expect(no.context.outcome).toBe('stopped-by-user');
    expect(no.log).toEqual([]);
  });

  it('resumed: a confirmed defragment goes on without asking; after every defragment, the disarm; after it, the check', async () => {
    const midway: NospaceState = {
      ...allDone,
      members: [
        { ...doneMember(CP1), status: 'pending' },
        { ...doneMember(CP2), status: 'defragmenting' },
        doneMember(CP3),
      ],
    };
    const asked: string[] = [];
    const r = await drive(world(), { nospace: midway }, (p) => (asked.push(p.id), null));
    expect(r.context.outcome).toBe('nospace-cleared');
    expect(r.log).toEqual([`defrag ${CP2}`, `defrag ${CP1}`, `disarm via ${CP2}`]);
    expect(asked).toEqual([`defragment:${CP1}`, `disarm:${CP2}`]);
    // the disarm landed before the stop: no alarm is listed, nothing is sent
    const landed = await drive(world({ alarms: [] }), { nospace: allDone });
    expect(landed.context.outcome).toBe('nospace-cleared');
    expect(landed.log).toEqual([]);
    expect(landed.context.steps.find((s) => s.name === 'disarm alarm')?.result).toBe(
      'no alarm is active: nothing to disarm',
    );
    const checked = await drive(world({ alarms: [] }), { nospace: { ...allDone, disarmed: true } });
    expect(checked.context.outcome).toBe('nospace-cleared');
    expect(checked.log).toEqual([]);
  });

  it('covers every state node of the playbook', () => {
    const mine = (id: string) =>
      id.startsWith('recovery.procedure.nospace') ||
      id === 'recovery.nospaceCleared' ||
      id === 'recovery.procedure.assess.databaseFull';
    expect(visits.missing(recoveryMachine, mine)).toEqual([]);
  });
});
