/**
 * Step 10 when the cluster's discovery names no workers (discovery disabled: Talos then lists no members at all), on
 * the pure machine: the recovery before it played by the in-memory cluster of test/components/fake-cluster.ts, the
 * step's effects scripted. The step must not restart the control plane only without a word: it says the workers could
 * not be found and takes their typed addresses (each checked, journalled, kept across a resume) or the control-plane
 * nodes only as an explicit choice, which autopilot (the recommended answer) takes.
 */
import { describe, expect, it } from 'vitest';
import { createActor, fromPromise, waitFor } from 'xstate';
import type { RecoveryContext, RecoveryEvent } from '../../machines/recovery.js';
import { fakeCluster, NODES } from '../components/fake-cluster.js';
import type { AfterRestoreListing, HealthReading } from '../../machines/after-restore/types.js';
import type { JournalEmit } from '../../machines/recovery-types.js';
import { isNodeAddress, parseWorkers } from '../../machines/after-restore/workers.js';
import { WORKERS_BY_HAND } from '../../machines/after-restore/health.js';

const TIMING = { pollMs: 5, backoffMs: 2, maxAttempts: 2, verifyTimeoutMs: 150 };

/** What src/wizard/after-restore.ts gives when the discovery list is empty. */
const NO_DISCOVERY: AfterRestoreListing = {
  nodes: NODES.map((node) => ({ node, machineType: 'controlplane', hostname: null })),
  source: `The workers could not be listed (${NODES[0]} lists no discovery members (is cluster discovery disabled?)).`,
  workersListed: false,
};

const healthy = (node: string, worker: boolean): HealthReading => ({
  node,
  role: worker ? 'worker' : 'controlplane',
  apidError: null,
  kubelet: { state: 'Running', healthy: true, message: null },
  servicesError: null,
  etcd: worker ? null : { service: 'Running', healthy: true, members: ['a0', 'a1', 'a2'], error: null },
});

/**
 * Plays the recovery to step 10 with the recommended answers; at the workers question `answers` are sent in turn
 * (then the recommended one). `stopAfterFirstRestart` stops the run once one kubelet is restarted, then resumes it.
 */
async function drive(answers: RecoveryEvent[], opts: { stopAfterFirstRestart?: boolean } = {}) {
  const cluster = fakeCluster();
  const restarts: string[] = [];
  let listings = 0;
  const machine = cluster.machine.provide({
    actors: {
      listAfterRestoreNodes: fromPromise<AfterRestoreListing, { controlPlane: string[] }>(async () => {
        listings += 1;
        return NO_DISCOVERY;
      }),
      restartKubelet: fromPromise<{ reply: string }, { node: string; opId: string }>(async ({ input }) => {
        restarts.push(input.node);
        return { reply: 'restarted' };
      }),
      checkAfterRestore: fromPromise<HealthReading[], { nodes: { node: string; machineType: string }[] }>(
        async ({ input }) => input.nodes.map((n) => healthy(n.node, n.machineType === 'worker')),
      ),
    },
  });
  const journal: JournalEmit['entry'][] = [];
  const notices: string[] = [];
  const actor = createActor(machine, {
    input: { nodes: NODES, operator: 'tester', mode: 'drill', timing: TIMING },
  });
  actor.on('journal', (e) => journal.push(e.entry));
  const queue = [...answers];
  let answered = -1;
  let asked = 0;
  let stopped = false;
  actor.subscribe((s) => {
    // what the workers question says back to an answer it refuses
    const atWorkers = s.context.prompt?.id === 'after-restore:workers';
    if (atWorkers && s.context.notice && notices.at(-1) !== s.context.notice) notices.push(s.context.notice);
    if (s.value === 'stoppedByUser' && !stopped) {
      stopped = true;
      setTimeout(() => actor.send({ type: 'resume' }), 1);
      return;
    }
    const p = s.context.prompt;
    if (!p || s.context.promptSeq === answered) return;
    answered = s.context.promptSeq;
    setTimeout(() => {
      if (p.id !== 'after-restore:workers') return void actor.send(p.recommended as RecoveryEvent);
      asked += 1;
      // a refused answer leaves the same question: send the next one
      const send = () => {
        const next = queue.shift() ?? (p.recommended as RecoveryEvent);
        actor.send(next);
        if (actor.getSnapshot().context.prompt?.id === 'after-restore:workers') setTimeout(send, 1);
      };
      send();
    }, 1);
  });
  if (opts.stopAfterFirstRestart)
    actor.subscribe((s) => {
      if (!stopped && s.context.afterRestore?.nodes.some((n) => n.status === 'done')) actor.send({ type: 'abort' });
    });
  actor.start();
  const end = await waitFor(actor, (s) => s.status === 'done', { timeout: 10_000 });
  actor.stop();
  return { context: end.context as RecoveryContext, restarts, journal, notices, asked, listings };
}

const WORKERS = ['127.0.0.9', '127.0.0.10'];
const typed = (path: string): RecoveryEvent => ({ type: 'choose', option: 'type', path });

describe('step 10 without discovery: the workers are asked for', () => {
  it('says the workers could not be found; typed addresses are checked, journalled, and their kubelets restarted', async () => {
    const r = await drive([
      typed('127.0.0.9 kube-worker:50000'),
      typed(`${NODES[1]}, 127.0.0.9`),
      typed(''),
      typed('127.0.0.9, 127.0.0.10 127.0.0.9'),
    ]);
    expect(r.context.outcome).toBe('recovered');
    expect(r.asked).toBe(1);
    // each wrong answer refused with one sentence saying what to type; nothing restarted meanwhile
    expect(r.notices).toEqual([
      '"kube-worker:50000" is not an IP address: type each worker\'s address as `kubectl get nodes -o wide` shows it (INTERNAL-IP, no port), separated by commas or spaces.',
      `${NODES[1]} is a control-plane node, already on the list: type only the workers' addresses.`,
      "No address was typed: type each worker's IP address, separated by commas or spaces, or choose the control-plane nodes only.",
    ]);
    expect(r.journal.filter((j) => j.kind === 'refusal' && j.what === 'workers typed')).toHaveLength(3);
    // the typed workers (a repeat counted once) joined the list and were restarted after the control plane
    expect(r.restarts).toEqual([...NODES, ...WORKERS]);
    expect(r.context.afterRestore).toMatchObject({ workersAnswer: 'typed', typedWorkers: WORKERS });
    expect(r.journal).toContainEqual(
      expect.objectContaining({ kind: 'decision', what: `workers typed: ${WORKERS.join(', ')}` }),
    );
    expect(r.journal).toContainEqual(
      expect.objectContaining({ kind: 'confirmation', result: 'chose type (127.0.0.9, 127.0.0.10 127.0.0.9)' }),
    );
    // the restart question counts them, and no by-hand warning is left for workers that were restarted
    expect(
      r.journal.some(
        (j) =>
          j.kind === 'confirmation' &&
          j.what.startsWith('Restart kubelet on all 5 nodes (3 control-plane nodes and 2 workers)'),
      ),
    ).toBe(true);
    expect(r.context.warnings).not.toContain(WORKERS_BY_HAND);
    const row = r.context.steps.find((s) => s.name === 'after restore');
    expect(row?.result).toMatch(/^kubelet restarted on 5 of 5 nodes \(workers typed by you\); /);
    expect(row?.talosctl).toContain(`talosctl -n ${[...NODES, ...WORKERS].join(',')} service kubelet restart`);
  });

  it('the control-plane nodes only is an explicit, journalled choice (autopilot takes it), with the by-hand warning', async () => {
    const r = await drive([]);
    expect(r.context.outcome).toBe('recovered');
    expect(r.asked).toBe(1);
    expect(r.restarts).toEqual(NODES);
    expect(r.context.afterRestore?.workersAnswer).toBe('control-plane-only');
    expect(r.journal).toContainEqual(
      expect.objectContaining({ kind: 'confirmation', result: 'chose control-plane-only' }),
    );
    expect(r.context.warnings).toContain(WORKERS_BY_HAND);
    expect(r.context.steps.find((s) => s.name === 'after restore')?.result).toMatch(
      /^kubelet restarted on 3 of 3 nodes \(workers could not be listed\); /,
    );
  });

  it('stopped after a restart and resumed: the typed workers are kept, the question is not asked again', async () => {
    const r = await drive([typed(WORKERS.join(','))], { stopAfterFirstRestart: true });
    expect(r.context.outcome).toBe('recovered');
    expect(r.listings).toBe(2);
    expect(r.asked).toBe(1);
    expect(new Set(r.restarts)).toEqual(new Set([...NODES, ...WORKERS]));
    expect(r.context.afterRestore?.nodes.map((n) => `${n.node} ${n.machineType} ${n.status}`)).toEqual([
      ...NODES.map((n) => `${n} controlplane done`),
      ...WORKERS.map((n) => `${n} worker done`),
    ]);
  });
});

describe('typed worker addresses', () => {
  it('takes IPv4 and IPv6 addresses, refuses names, ports and out-of-range numbers', () => {
    for (const ok of [
      '10.0.0.5',
      '127.0.0.1',
      '255.255.255.255',
      '::1',
      'fd00::5',
      '2001:db8::1:0:0:1',
      '::ffff:10.0.0.1',
    ])
      expect(isNodeAddress(ok), ok).toBe(true);
    for (const bad of [
      '10.0.0.256',
      '10.0.0',
      '10.0.0.5:50000',
      '[fd00::5]',
      'worker-1',
      '01.2.3.4x',
      'fd00::g',
      ':::',
    ])
      expect(isNodeAddress(bad), bad).toBe(false);
    expect(parseWorkers(' 10.0.0.5,,10.0.0.6\t10.0.0.5 ', ['10.0.0.2'])).toEqual({
      ok: true,
      workers: ['10.0.0.5', '10.0.0.6'],
    });
  });
});
