/**
 * Step 10 (after the restore) on the pure machine: every one of its state nodes is reached (@xstate/graph lists
 * them), with the recovery before it played by the in-memory cluster of test/components/fake-cluster.ts and the step's
 * own three effects scripted at the actor boundary. The runs also check what a user sees: the question asked once, a
 * node's failed restart named while the others go on, a declined restart journalled with the by-hand command, what is
 * still wrong kept as warnings while the outcome stays recovered, and a resume that neither asks again nor restarts
 * a kubelet twice. The SAFETY rule for the restart and the health check's sentences are attacked directly.
 */
import { describe, expect, it } from 'vitest';
import { createActor, fromPromise, waitFor } from 'xstate';
import { recoveryMachine, type RecoveryContext, type RecoveryEvent } from '../../machines/recovery.js';
import { fakeCluster, NODES } from '../components/fake-cluster.js';
import { failedRestarts, stillWrong } from '../../machines/after-restore/health.js';
import { kubeletRestartAllowed } from '../../machines/after-restore/rules.js';
import type { AfterRestoreListing, HealthReading } from '../../machines/after-restore/types.js';
import type { JournalEmit } from '../../machines/recovery-types.js';
import { stateVisits } from './scripted-cluster.js';

const WORKER = '127.0.0.9';
const visits = stateVisits();
const { visited } = visits;
const TIMING = { pollMs: 5, backoffMs: 2, maxAttempts: 2, verifyTimeoutMs: 150 };

const reading = (node: string, over: Partial<HealthReading> = {}): HealthReading => ({
  node,
  role: node === WORKER ? 'worker' : 'controlplane',
  apidError: null,
  kubelet: { state: 'Running', healthy: true, message: null },
  servicesError: null,
  etcd: node === WORKER ? null : { service: 'Running', healthy: true, members: ['a0', 'a1', 'a2'], error: null },
  ...over,
});

interface Script {
  listing: AfterRestoreListing | Error;
  /** per node: an error to throw, else the restart succeeds */
  restartFails?: Record<string, Error>;
  /** each health check takes the next entry (the last one repeats) */
  checks: (HealthReading[] | Error)[];
  /** answer to the kubelet question; 'abort-after-first' stops after the first restart, then resumes */
  answer: 'yes' | 'no' | 'abort-after-first';
}

const LISTED: AfterRestoreListing = {
  nodes: [
    ...NODES.map((node) => ({ node, machineType: 'controlplane', hostname: null })),
    { node: WORKER, machineType: 'worker', hostname: 'worker-1' },
  ],
  source: "The nodes come from the cluster's discovery members on 127.0.0.2 (talosctl get members).",
  workersListed: true,
};

async function drive(script: Script) {
  const cluster = fakeCluster();
  const restarts: string[] = [];
  const checks = [...script.checks];
  const machine = cluster.machine.provide({
    actors: {
      listAfterRestoreNodes: fromPromise<AfterRestoreListing, { controlPlane: string[] }>(async () => {
        if (script.listing instanceof Error) throw script.listing;
        return script.listing;
      }),
      restartKubelet: fromPromise<{ reply: string }, { node: string; opId: string }>(async ({ input }) => {
        restarts.push(input.node);
        const failure = script.restartFails?.[input.node];
        if (failure) throw failure;
        return { reply: `Service "kubelet" restarted` };
      }),
      checkAfterRestore: fromPromise<HealthReading[], { nodes: { node: string; machineType: string }[] }>(async () => {
        const next = (checks.length > 1 ? checks.shift() : checks[0]) as HealthReading[] | Error;
        if (next instanceof Error) throw next;
        return next;
      }),
    },
  });
  const journal: JournalEmit['entry'][] = [];
  const actor = createActor(machine, {
    input: { nodes: NODES, operator: 'tester', mode: 'drill', timing: TIMING },
    inspect: visits.inspect,
  });
  actor.on('journal', (e) => journal.push(e.entry));
  let answered = -1;
  let asked = 0;
  let stopped = false;
  actor.subscribe((s) => {
    const p = s.context.prompt;
    if (s.value === 'stoppedByUser' && !stopped) {
      stopped = true;
      setTimeout(() => actor.send({ type: 'resume' }), 1);
      return;
    }
    if (!p || s.context.promptSeq === answered) return;
    answered = s.context.promptSeq;
    setTimeout(() => {
      if (p.id !== 'after-restore:kubelets') return void actor.send(p.recommended as RecoveryEvent);
      asked += 1;
      actor.send({ type: script.answer === 'no' ? 'answer.no' : 'answer.yes' });
    }, 1);
    return;
  });
  if (script.answer === 'abort-after-first')
    actor.subscribe((s) => {
      if (!stopped && s.context.afterRestore?.nodes[0]?.status === 'done') actor.send({ type: 'abort' });
    });
  actor.start();
  const end = await waitFor(actor, (s) => s.status === 'done', { timeout: 10_000 });
  actor.stop();
  return { context: end.context as RecoveryContext, restarts, journal, asked };
}

describe('step 10: kubelets restarted everywhere, then a health check', () => {
  it('yes: one restart per listed node (worker too); a failure is named and the rest go on; healthy ends it', async () => {
    const notYet = [
      ...NODES.map((n) => reading(n)),
      reading(WORKER, { kubelet: { state: 'Starting', healthy: null, message: null } }),
    ];
    const r = await drive({
      listing: LISTED,
      restartFails: {
        [NODES[1] as string]: Object.assign(new Error('127.0.0.3 refused: connection reset'), { retryable: false }),
      },
      checks: [notYet, [...NODES.map((n) => reading(n)), reading(WORKER)]],
      answer: 'yes',
    });
    expect(r.context.outcome).toBe('recovered');
    expect(r.asked).toBe(1);
    expect(r.restarts).toEqual([...NODES, WORKER]);
    expect(r.context.afterRestore?.nodes.map((n) => n.status)).toEqual(['done', 'failed', 'done', 'done']);
    const failed = `${NODES[1]}: the kubelet restart failed (127.0.0.3 refused: connection reset); restart it by hand: \`talosctl -n ${NODES[1]} service kubelet restart\`.`;
    expect(r.context.afterRestore?.stillWrong).toEqual([failed]);
    expect(r.context.warnings).toContain(failed);
    const row = r.context.steps.find((s) => s.name === 'after restore');
    expect(row).toMatchObject({ n: 10, status: 'done' });
    expect(row?.result).toBe(`kubelet restarted on 3 of 4 nodes; 1 thing still wrong: ${failed}`);
    expect(row?.talosctl).toContain(`talosctl -n ${[...NODES, WORKER].join(',')} service kubelet restart`);
    expect(r.journal.some((j) => j.kind === 'confirmation' && j.what.startsWith('Restart kubelet on all 4'))).toBe(
      true,
    );
  });

  it('no: nothing restarted, the by-hand command journalled; a listing failure falls back to the given nodes', async () => {
    const r = await drive({
      listing: new Error('the node list could not be read'),
      checks: [new Error('bug')],
      answer: 'no',
    });
    expect(r.context.outcome).toBe('recovered');
    expect(r.restarts).toEqual([]);
    expect(r.context.afterRestore).toMatchObject({ decision: 'declined', workersListed: false });
    const byHand = r.context.warnings.find((w) => w.startsWith('Restart kubelet on every node by hand'));
    expect(byHand).toContain(`talosctl -n ${NODES.join(',')} service kubelet restart`);
    expect(r.context.warnings).toContain(
      'The health check could not run; run `talosctl health` to see the cluster as it is now.',
    );
    expect(r.journal.filter((j) => j.kind === 'warning').map((j) => j.what)).toContain(byHand);
  });

  it('what is still wrong when the wait ends is listed, and the outcome stays recovered', async () => {
    const broken = [
      reading(NODES[0] as string),
      reading(NODES[1] as string, { etcd: { service: 'Running', healthy: true, members: ['a0', 'a1'], error: null } }),
      reading(NODES[2] as string, { apidError: 'connection refused' }),
      reading(WORKER, { kubelet: { state: 'Failed', healthy: false, message: null } }),
    ];
    // the check polls while things are wrong, then lists them at its limit (5 s at the least)
    const r = await drive({ listing: LISTED, checks: [broken], answer: 'yes' });
    expect(r.context.outcome).toBe('recovered');
    expect(r.context.afterRestore?.stillWrong).toEqual([
      `${NODES[2]}: apid does not answer (connection refused); check that the node is up, then \`talosctl -n ${NODES[2]} version\`.`,
      `The control-plane nodes do not agree on the etcd members (${NODES[0]}: 3, ${NODES[1]}: 2); compare \`talosctl -n ${NODES.join(',')} etcd members\`.`,
      `${WORKER}: kubelet is Failed; see why with \`talosctl -n ${WORKER} service kubelet\`, then \`talosctl -n ${WORKER} service kubelet restart\`.`,
    ]);
    for (const s of r.context.afterRestore?.stillWrong ?? []) expect(r.context.warnings).toContain(s);
  }, 15_000);

  it('stopped after the first restart and resumed: not asked again, a restarted node never handed over again', async () => {
    const r = await drive({
      listing: LISTED,
      checks: [[...NODES.map((n) => reading(n)), reading(WORKER)]],
      answer: 'abort-after-first',
    });
    expect(r.context.outcome).toBe('recovered');
    expect(r.asked).toBe(1);
    // the node whose restart was in flight at the stop is handed to the effect again (its ledger checks the node);
    // the one that was done is not
    expect(r.restarts.filter((n) => n === NODES[0])).toHaveLength(1);
    expect(new Set(r.restarts)).toEqual(new Set([...NODES, WORKER]));
    expect(r.context.afterRestore?.nodes.every((n) => n.status === 'done')).toBe(true);
  });

  it('reaches every state of the step', () => {
    const mine = (id: string) =>
      id === 'recovery.procedure.afterRestore' || id.startsWith('recovery.procedure.afterRestore.');
    expect([...visited].filter(mine).length).toBeGreaterThan(5);
    expect(visits.missing(recoveryMachine, mine)).toEqual([]);
  });
});

describe('SAFETY: a kubelet is restarted only after a verified restore and a yes, on a listed node, once', () => {
  const base = (over: Partial<RecoveryContext['afterRestore'] & object> = {}, verify = 'done') =>
    ({
      steps: [{ name: 'verify', status: verify }],
      afterRestore: {
        nodes: [
          { node: 'a', machineType: 'controlplane', status: 'done', detail: null },
          { node: 'b', machineType: 'worker', status: 'pending', detail: null },
        ],
        decision: 'restart',
        stillWrong: [],
        ...over,
      },
    }) as unknown as RecoveryContext;
  const yes = { type: 'answer.yes' } as const;

  it('allows the next pending node after a yes and a verified restore', () => {
    expect(kubeletRestartAllowed(base(), yes, null)).toBeNull();
  });
  it('refuses before the restore is verified', () => {
    expect(kubeletRestartAllowed(base({}, 'active'), yes, null)).toMatch(/only after the restore is verified/);
  });
  it('refuses without a yes: not answered, or declined', () => {
    expect(kubeletRestartAllowed(base({ decision: null }), yes, null)).toMatch(/only after you answered yes/);
    expect(kubeletRestartAllowed(base({ decision: 'declined' }), yes, null)).toMatch(/only after you answered yes/);
  });
  it('refuses a node that is not on the list, and one already restarted', () => {
    expect(kubeletRestartAllowed(base(), yes, '10.9.9.9')).toMatch(/not on this cluster's node list/);
    expect(kubeletRestartAllowed(base(), yes, 'a')).toMatch(/already sent; it is not sent twice/);
  });
});

describe('the health check says what is wrong, one sentence each with what to do', () => {
  it('nothing when every kubelet runs healthy and the members agree', () => {
    expect(stillWrong([reading('a'), reading('b'), reading('c'), reading(WORKER)])).toEqual([]);
  });
  it('an etcd not healthy, too few members, a kubelet not yet healthy, services unreadable', () => {
    const three = { service: 'Running', healthy: true, members: ['a0', 'a1'], error: null };
    expect(
      stillWrong([
        reading('a', { etcd: three }),
        reading('b', { etcd: { ...three, healthy: false, error: 'no leader' } }),
        reading('c', { etcd: three, kubelet: { state: 'Running', healthy: null, message: null } }),
        reading(WORKER, { servicesError: 'deadline exceeded', kubelet: null }),
      ]),
    ).toEqual([
      'b: etcd runs but is not healthy (no leader); see `talosctl -n b etcd status`.',
      'etcd lists 2 members for 3 control-plane nodes; see `talosctl -n a,b,c etcd members`.',
      'c: kubelet runs but has not passed a health check yet; check `talosctl -n c service kubelet` again in a minute.',
      `${WORKER}: its services could not be read (deadline exceeded); check \`talosctl -n ${WORKER} services\`.`,
    ]);
  });
  it('a failed restart names the node and the command to run', () => {
    expect(failedRestarts([{ node: 'b', machineType: 'worker', status: 'failed', detail: 'refused' }])).toEqual([
      'b: the kubelet restart failed (refused); restart it by hand: `talosctl -n b service kubelet restart`.',
    ]);
  });
});
