/**
 * One running recovery: the machine with its effects supplied, its persistence and its journal. state.json is
 * written and fsync'd after every transition of the machine, synchronously; the persist barrier given to every effect
 * (EffectDeps.barrier) writes the state once more when a child (a node's preparation) changed since, so an action
 * leaves the process only after the state that started it is on disk. Shared by `recover`, `drill` and `resume`.
 */
import { createActor, type InspectionEvent, type Snapshot } from 'xstate';
import {
  recoveryMachine,
  type RecoveryActor,
  type RecoveryContext,
  type RecoveryInput,
} from '../../machines/recovery.js';
import { prepareNodeMachine } from '../../machines/prepare-node.js';
import { writeState, type StateEnvelope } from '../journal/state.js';
import type { EffectDeps } from './deps.js';
import { recoveryActors } from './actors.js';

export interface SessionOptions {
  deps: EffectDeps;
  input: RecoveryInput;
  /** the envelope fields besides the snapshot (mode, scenario, nodes, …) */
  envelope: Omit<StateEnvelope, 'v' | 'kind' | 'savedAt' | 'snapshot'>;
  /** a persisted snapshot to continue from (resume) */
  restore?: Snapshot<unknown>;
  /** called after each persisted transition that ended a step (a drill saves the simulated cluster then) */
  onStepEnd?: (context: RecoveryContext) => void;
}

export interface Session {
  actor: RecoveryActor;
  /** the effects' dependencies as this session gave them (with its persist barrier) */
  deps: EffectDeps;
  /** resolves when the machine reaches a final state or stops by the user */
  settled: Promise<RecoveryContext>;
  stop(): void;
}

/** The machine reached its end, or waits stopped by the user (resumable). */
export const finished = (s: { status: string; value: unknown }): boolean =>
  s.status === 'done' || s.value === 'stoppedByUser' || s.status === 'error';

export function startSession(opts: SessionOptions): Session {
  const timing = { ...(opts.input.timing ?? {}) };
  let actor: RecoveryActor | null = null;
  // the snapshot last written, and whether any actor of the system (a child) changed since
  let written: unknown = null;
  let childChanged = false;
  const persist = () => {
    if (!actor) return;
    writeState(opts.deps.incident.dir, { ...opts.envelope, snapshot: actor.getPersistedSnapshot() });
    written = actor.getSnapshot();
    childChanged = false;
  };
  const deps: EffectDeps = {
    ...opts.deps,
    // Awaited by every effect before it acts. An effect starts inside the transition that invoked it, before the
    // subscriber below has written that transition; one microtask later the transition (a synchronous xstate step)
    // and its write are done, and whatever is still unwritten is written here.
    barrier: async () => {
      await null;
      if (actor && (childChanged || actor.getSnapshot() !== written)) persist();
    },
    notice: (text) => actor?.send({ type: 'effect.notice', text }),
  };
  const actors = recoveryActors(deps, {
    pollMs: timing.pollMs ?? 2000,
    nodeBackTimeoutMs: timing.nodeBackTimeoutMs ?? 10 * 60_000,
  });
  const machine = recoveryMachine.provide({
    actors: {
      ...actors,
      prepareNode: prepareNodeMachine.provide({
        actors: { resetNode: actors.resetNode, applyConfig: actors.applyConfig, observe: actors.observe },
      }),
    },
  });
  const inspect = (e: InspectionEvent) => {
    if (e.type === '@xstate.snapshot' && actor && e.actorRef !== actor) childChanged = true;
  };
  const created = (
    opts.restore
      ? createActor(machine, { input: opts.input, snapshot: opts.restore as never, inspect })
      : createActor(machine, { input: opts.input, inspect })
  ) as RecoveryActor;
  actor = created;

  const journal = opts.deps.journal;
  // The prompt on screen before the transition being journalled (the subscriber below updates it after each one):
  // a confirmation is recorded with the words of the option chosen, not the machine's event name.
  let shown = created.getSnapshot().context.prompt;
  // When the question on screen was asked (a resumed one: when this session showed it again), so each answer is
  // journalled with how long it waited for a person: report.md splits a step's time into the machine's and the wait.
  let asked = { seq: created.getSnapshot().context.promptSeq, at: Date.now() };
  created.on('journal', (e) => {
    const entry =
      e.entry.kind === 'confirmation'
        ? {
            ...e.entry,
            what: e.entry.what === 'abort' ? 'stop' : e.entry.what,
            result: answerText(e.entry.result, shown),
          }
        : e.entry;
    const answered = (entry.kind === 'confirmation' || entry.kind === 'override') && shown !== null;
    journal.append({
      ...entry,
      kind: entry.kind,
      ...(answered ? { data: { ...entry.data, waitedMs: Math.max(0, Date.now() - asked.at) } } : {}),
    });
  });

  let resolveSettled!: (c: RecoveryContext) => void;
  let rejectSettled!: (e: unknown) => void;
  const settled = new Promise<RecoveryContext>((resolve, reject) => {
    resolveSettled = resolve;
    rejectSettled = reject;
  });
  let stepsDone = -1;
  // A restored machine that was stopped by the user continues where it stopped: the stopped snapshot it starts from
  // is not its end (taking it for one made the first `resume` after a stop exit at once; issue 18 item 3).
  let awaitingResume = created.getSnapshot().value === 'stoppedByUser';
  created.subscribe({
    next: (snap) => {
      shown = snap.context.prompt;
      if (snap.context.promptSeq !== asked.seq) asked = { seq: snap.context.promptSeq, at: Date.now() };
      // Written synchronously, after every transition and before any action leaves (actions wait for the barrier).
      persist();
      const ended = snap.context.steps.filter((s) => s.status !== 'pending' && s.status !== 'active').length;
      if (ended !== stepsDone) {
        stepsDone = ended;
        opts.onStepEnd?.(snap.context);
      }
      if (!awaitingResume && finished(snap)) resolveSettled(snap.context);
    },
    error: (error) => {
      journal.append({ kind: 'outcome', what: 'outcome', result: `failed: internal error (${String(error)})` });
      rejectSettled(error);
    },
  });
  created.start();
  if (awaitingResume) {
    awaitingResume = false;
    created.send({ type: 'resume' });
    const now = created.getSnapshot();
    if (finished(now)) resolveSettled(now.context);
  }
  return { actor: created, deps, settled, stop: () => created.stop() };
}

/** What a person answered, in the screen's words: "yes", the chosen option's label, "stopped (q)". */
export function answerText(
  result: string | undefined,
  prompt: { options?: { id: string; label: string }[] } | null | undefined,
): string | undefined {
  if (result === undefined) return result;
  if (result === 'answer.yes') return 'answered yes';
  if (result === 'answer.no') return 'answered no';
  if (result === 'abort') return 'stopped (q): the recovery can be resumed';
  if (result === 'retry') return 'chose to try again';
  const chose = /^chose (\S+)(.*)$/s.exec(result);
  if (chose) {
    const label = prompt?.options?.find((o) => o.id === chose[1])?.label;
    return `chose "${label ?? chose[1]}"${chose[2] ?? ''}`;
  }
  return result;
}
