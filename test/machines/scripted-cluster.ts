/**
 * Variations of the in-memory cluster (test/components/fake-cluster.ts) for the recovery machine's failure and risk
 * paths, shared by the machine tests and the App tests: a raw database copy as the snapshot (skip-hash-check), and a
 * cluster whose connect fails once and whose first Reset fails once (the "Try again?" prompts). Also what the
 * coverage tests (test/machines/*coverage.test.ts) share to run the machine over scripted actors: the states it passed
 * through, a start in the middle of a procedure, one answer per question, and the wait for the end.
 */
import {
  createActor,
  fromPromise,
  waitFor,
  type AnyActorRef,
  type AnyStateMachine,
  type InspectionEvent,
  type StateValue,
} from 'xstate';
import { getStateNodes } from '@xstate/graph';
import type { Prompt, RecoveryContext } from '../../machines/recovery.js';
import { apiSnapshot, type FakeCluster } from '../components/fake-cluster.js';
import { prepareNodeMachine } from '../../machines/prepare-node.js';
import type { ConnectOutput, NodeView, SnapshotInfo } from '../../machines/recovery.js';

/** A raw copy of 127.0.0.2's database: bbolt structure fine, no sha256 trailer, so it needs skip-hash-check. */
export const rawCopy = (): SnapshotInfo => ({
  ...apiSnapshot(),
  file: '/tmp/incident/snapshots/127.0.0.2.raw.db',
  sha256: 'cd'.repeat(32),
  method: 'raw',
  integrity: 'absent',
  needsSkipHashCheck: true,
  bytes: 3_276_800,
});

/** The cluster's machine, its snapshot a raw copy. */
export const withRawCopy = (cluster: FakeCluster) =>
  cluster.machine.provide({ actors: { acquireSnapshot: fromPromise(async () => rawCopy()) } });

const failure = (message: string) => Object.assign(new Error(message), { retryable: false });

/** The cluster's machine, its connect failing once (a wrong CA) and its first Reset failing once (refused). */
export function failingOnce(cluster: FakeCluster) {
  let connectFailures = 1;
  let resetFailures = 1;
  return cluster.machine.provide({
    actors: {
      connect: fromPromise<ConnectOutput, { nodes: string[] }>(async ({ input }) => {
        if (connectFailures-- > 0) throw failure('the talosconfig CA does not match');
        return { nodes: input.nodes.map((node) => ({ node, ok: true, version: 'v1.11.2', error: null })) };
      }),
      prepareNode: prepareNodeMachine.provide({
        actors: {
          observe: fromPromise(async ({ input }: { input: { nodes: string[] } }) => cluster.refresh(input.nodes)),
          resetNode: fromPromise<void, { node: string; labels: string[]; opId: string }>(async ({ input }) => {
            if (resetFailures-- > 0) throw failure('connection refused');
            cluster.calls.push(`reset ${input.node}`);
            cluster.views.set(input.node, {
              ...(cluster.views.get(input.node) as NodeView),
              etcdService: 'Preparing',
              etcdHealthy: null,
              members: null,
              status: null,
            });
          }),
        },
      }),
    },
  });
}

// ---- the coverage tests' scripted runs -------------------------------------------------------------------------------

/** The state nodes a test file's runs passed through: every microstep, so eventless passes count too. */
export function stateVisits() {
  const visited = new Set<string>();
  return {
    visited,
    /** give to createActor's `inspect` */
    inspect: (ev: InspectionEvent) => {
      if (ev.type !== '@xstate.microstep') return;
      for (const n of (ev.snapshot as { _nodes?: { id: string }[] })._nodes ?? []) visited.add(n.id);
    },
    /** the ids of `machine`'s state nodes (history nodes aside) that `mine` selects and no run reached */
    missing: (machine: AnyStateMachine, mine: (id: string) => boolean): string[] =>
      getStateNodes(machine.root)
        .filter((n) => n.type !== 'history')
        .map((n) => n.id)
        .filter((id) => mine(id) && !visited.has(id)),
  };
}

/**
 * `machine` started in the middle of a procedure, at `value` with `context` (as a resumed state.json would be): a
 * resolved snapshot takes its eventless transitions on its next event, so it is woken once started. `beforeStart`
 * subscribes (answers) before anything runs.
 */
export function startAt(
  machine: AnyStateMachine,
  value: StateValue,
  context: RecoveryContext,
  inspect: (ev: InspectionEvent) => void,
  beforeStart: (actor: AnyActorRef) => void,
): AnyActorRef {
  const actor = createActor(machine, {
    snapshot: machine.resolveState({ value, context }),
    input: undefined as never,
    inspect,
  }) as AnyActorRef;
  beforeStart(actor);
  actor.start();
  actor.send({ type: 'wake' });
  return actor;
}

/**
 * Calls `reply` once per question the machine asks (each new promptSeq), a tick later and only if that question is
 * still open, with how many times a question of that id has been asked so far (1 the first time).
 */
export function onEachPrompt(actor: AnyActorRef, reply: (p: Prompt, count: number) => void): void {
  const asked = new Map<string, number>();
  let answered = -1;
  actor.subscribe((snap: { status: string; context: RecoveryContext }) => {
    const p = snap.context.prompt;
    if (!p || snap.context.promptSeq === answered || snap.status === 'done') return;
    answered = snap.context.promptSeq;
    const count = (asked.get(p.id) ?? 0) + 1;
    asked.set(p.id, count);
    setTimeout(() => {
      if ((actor.getSnapshot() as { context: RecoveryContext }).context.prompt?.id === p.id) reply(p, count);
    }, 1);
  });
}

/** The run's end (done, or stopped by the user), then the actor stopped; a run that hangs says where it stands. */
export async function settle(actor: AnyActorRef, timeout = 5000): Promise<RecoveryContext> {
  const end = await waitFor(
    actor,
    (s: { status: string; value: unknown }) => s.status === 'done' || s.value === 'stoppedByUser',
    {
      timeout,
    },
  ).catch(() => {
    const now = actor.getSnapshot() as { value: unknown; context: RecoveryContext };
    throw new Error(
      `stuck in ${JSON.stringify(now.value)}: ${now.context.prompt?.id ?? ''} ${now.context.wait?.message ?? ''}`,
    );
  });
  actor.stop();
  return (end as { context: RecoveryContext }).context;
}
