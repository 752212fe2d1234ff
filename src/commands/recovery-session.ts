/**
 * One running recovery: the machine with its effects supplied, its persistence (state.json written and fsync'd after
 * every transition, synchronously, so it is on disk before the next action leaves the process), its journal, and —
 * for `drill --autopilot` — the driver that gives every prompt its recommended answer and prints one line per step.
 * Shared by `recover`, `drill` and `resume`.
 */
import { createActor, type Snapshot } from 'xstate';
import {
  recoveryMachine,
  type RecoveryActor,
  type RecoveryContext,
  type RecoveryEvent,
  type RecoveryInput,
} from '../../machines/recovery.js';
import { prepareNodeMachine } from '../../machines/prepare-node.js';
import { writeState, type StateEnvelope } from '../journal/state.js';
import type { Journal } from '../journal/journal.js';
import { recoveryActors, type EffectDeps } from './recovery-actors.js';
import { EXIT } from '../errors.js';

export interface SessionOptions {
  deps: EffectDeps;
  input: RecoveryInput;
  /** the envelope fields besides the snapshot (mode, scenario, nodes, …) */
  envelope: Omit<StateEnvelope, 'v' | 'kind' | 'savedAt' | 'snapshot'>;
  /** a persisted snapshot to continue from (resume) */
  restore?: Snapshot<unknown>;
  /** called after each persisted transition (a drill saves the simulated cluster when a step ends) */
  onStepEnd?: (context: RecoveryContext) => void;
}

export interface Session {
  actor: RecoveryActor;
  /** resolves when the machine reaches a final state or stops by the user */
  settled: Promise<RecoveryContext>;
  stop(): void;
}

const finished = (s: { status: string; value: unknown }): boolean =>
  s.status === 'done' || s.value === 'stoppedByUser' || s.status === 'error';

export function startSession(opts: SessionOptions): Session {
  const timing = { ...(opts.input.timing ?? {}) };
  const actors = recoveryActors(opts.deps, {
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
  const actor = (
    opts.restore
      ? createActor(machine, { input: opts.input, snapshot: opts.restore as never })
      : createActor(machine, { input: opts.input })
  ) as RecoveryActor;

  const journal: Journal = opts.deps.journal;
  actor.on('journal', (e) => {
    journal.append({ ...e.entry, kind: e.entry.kind });
  });

  let resolveSettled!: (c: RecoveryContext) => void;
  let rejectSettled!: (e: unknown) => void;
  const settled = new Promise<RecoveryContext>((resolve, reject) => {
    resolveSettled = resolve;
    rejectSettled = reject;
  });
  let stepsDone = -1;
  actor.subscribe({
    next: (snap) => {
      // Written synchronously, after every transition and before any action leaves (actions wait a macrotask).
      writeState(opts.deps.incident.dir, { ...opts.envelope, snapshot: actor.getPersistedSnapshot() });
      const ended = snap.context.steps.filter((s) => s.status !== 'pending' && s.status !== 'active').length;
      if (ended !== stepsDone) {
        stepsDone = ended;
        opts.onStepEnd?.(snap.context);
      }
      if (finished(snap)) resolveSettled(snap.context);
    },
    error: (error) => {
      journal.append({ kind: 'outcome', what: 'outcome', result: `failed: internal error (${String(error)})` });
      rejectSettled(error);
    },
  });
  actor.start();
  // A restored machine that was stopped by the user continues where it stopped.
  if (actor.getSnapshot().value === 'stoppedByUser') actor.send({ type: 'resume' });
  return { actor, settled, stop: () => actor.stop() };
}

/** Exit code for an outcome (PRODUCT.md §2). */
export function exitCodeForOutcome(outcome: string | null): number {
  if (outcome === 'recovered' || outcome === 'stopped-quorum-intact' || outcome === 'nothing-to-do') return EXIT.ok;
  if (outcome === 'stopped-by-user' || outcome === null) return EXIT.stoppedByUser;
  return EXIT.failure;
}

export interface AutopilotOptions {
  /** one plain line per step, then the score and the outcome (stdout) */
  print: (line: string) => void;
  /** the scenario's time limit: a wait that cannot finish ends here as failed */
  timeLimitMs: number;
  /** pause before answering a prompt that repeats (e.g. "assess again") */
  repeatPauseMs: number;
}

/**
 * Gives every prompt its recommended answer (never an override: no prompt recommends one), journals each answer as
 * given by autopilot, prints `step <n>/<m> <name>: <result>` as steps end, and gives up at the time limit.
 */
export function driveAutopilot(session: Session, journal: Journal, opts: AutopilotOptions): () => void {
  const { actor } = session;
  const printed = new Set<string>();
  let lastPrompt: string | null = null;
  let lastAnsweredAt = 0;
  let pending: NodeJS.Timeout | null = null;

  const printSteps = (context: RecoveryContext) => {
    const total = context.steps.length;
    for (const s of context.steps) {
      if (s.status !== 'done' && s.status !== 'skipped' && s.status !== 'failed') continue;
      const line = `step ${s.n}/${total} ${s.name}: ${s.status === 'done' ? '' : `${s.status}: `}${s.result ?? ''}`;
      const key = `${s.n}:${s.endedAt ?? ''}`;
      if (printed.has(key)) continue;
      printed.add(key);
      opts.print(line);
    }
  };

  const answer = (event: RecoveryEvent, promptId: string, question: string) => {
    journal.append({
      kind: 'confirmation',
      what: `autopilot answered: ${question}`,
      by: 'autopilot',
      result:
        event.type === 'confirm'
          ? `typed ${event.address}`
          : event.type === 'choose'
            ? `chose ${event.option}`
            : event.type,
      data: { prompt: promptId },
    });
    actor.send(event);
  };

  const onSnapshot = (snap: ReturnType<typeof actor.getSnapshot>) => {
    printSteps(snap.context);
    const prompt = snap.context.prompt;
    if (!prompt || finished(snap)) return;
    const key = `${snap.context.promptSeq}`;
    if (key === lastPrompt && pending) return;
    lastPrompt = key;
    if (pending) clearTimeout(pending);
    const delay = Date.now() - lastAnsweredAt < opts.repeatPauseMs ? opts.repeatPauseMs : 0;
    pending = setTimeout(() => {
      pending = null;
      const now = actor.getSnapshot();
      if (now.context.prompt?.id !== prompt.id || finished(now)) return;
      lastAnsweredAt = Date.now();
      if (prompt.recommended) answer(prompt.recommended, prompt.id, prompt.question);
      // no recommended answer (a failure that needs a person): autopilot does not guess
      else actor.send({ type: 'give-up' });
    }, delay);
  };
  const sub = actor.subscribe(onSnapshot);
  const limit = setTimeout(() => {
    if (!finished(actor.getSnapshot())) actor.send({ type: 'give-up' });
  }, opts.timeLimitMs);
  // A subscription only hears later transitions: a resumed session may already wait at a prompt (e.g. killed right
  // after the snapshot step asked for its source), and nothing would ever change to make the autopilot answer it.
  onSnapshot(actor.getSnapshot());
  return () => {
    sub.unsubscribe();
    clearTimeout(limit);
    if (pending) clearTimeout(pending);
  };
}
