/**
 * State configs the steps share: a call to the cluster with its failure handling, a wait's entry and its live
 * re-read, and the actions that end the procedure as failed at a step.
 */
import { assign } from 'xstate';
import type { NodeView, RecoveryContext, WaitStatus } from '../recovery-types.js';
import { backoffDelay } from '../errors.js';
import { errorOf, targetNodes } from './context.js';
import { now, recoverySetup } from './setup.js';
import type { StepName } from './steps.js';

export type StateConfig = Parameters<typeof recoverySetup.createStateConfig>[0];
type InvokeConfig = Exclude<NonNullable<StateConfig['invoke']>, readonly unknown[]>;
/** An invoke of one named actor (its src, input and onDone, typed by the actor); callStep supplies its onError. */
type CallInvoke = InvokeConfig extends infer I ? (I extends unknown ? Omit<I, 'onError'> : never) : never;
/** Transitions taken on a failed call (the same for every actor). */
type OnError = NonNullable<Extract<InvokeConfig, { src: 'connect' }>['onError']>;

/**
 * A pause, then `target`: the poll interval, or the backoff before a failed call is tried again (from the attempts
 * noted so far). It sleeps on the actor's clock; restored from state.json mid-pause, it sleeps again and goes on.
 */
export function pauseThen(pause: 'poll' | 'backoff', target: string): StateConfig {
  return recoverySetup.createStateConfig({
    invoke: {
      src: 'sleep',
      input: ({ context }) => ({
        ms: pause === 'poll' ? context.timing.pollMs : backoffDelay(context.timing, context.attempt?.count ?? 1),
      }),
    },
    on: { wake: target },
  });
}

/** What a failed call is noted as: the attempt on screen, and the action its retry prompt names. */
interface AttemptParams {
  action: string;
  node: string | null;
}

interface CallStepOptions<TCall extends string, TRetry extends string> {
  /** the state that makes the call (a name persisted in state.json: never renamed) */
  call: TCall;
  /** the pause before a transient failure is tried again on its own; without it, every failure goes to `onFailure` */
  retry?: TRetry;
  invoke: CallInvoke;
  /** what a failure is noted as (context.attempt: shown on screen, named by the retry prompt) */
  attempt: AttemptParams | ((context: RecoveryContext) => AttemptParams);
  /** where a failure goes that is not tried again on its own; default: note the attempt, then the step's `failed` */
  onFailure?: OnError;
}

/**
 * One call to the cluster with its failure handling, the sub-states every step writes the same way: `call` invokes the
 * actor; a transient failure (retryable, attempts left) notes the attempt and waits in `retry` (backoff) to call
 * again; any other failure notes the attempt and goes to the step's `failed` state (a `retryPromptState`), unless
 * `onFailure` says otherwise. Each step says only what is its own: the actor, its input, what success does, and what
 * its failure is called.
 */
export function callStep<const TCall extends string, const TRetry extends string = never>({
  call,
  retry,
  invoke,
  attempt,
  onFailure,
}: CallStepOptions<TCall, TRetry>): Record<TCall | TRetry, StateConfig> {
  const noteAttempt = {
    type: 'noteAttempt' as const,
    params: typeof attempt === 'function' ? ({ context }: { context: RecoveryContext }) => attempt(context) : attempt,
  };
  const failure: OnError = onFailure ?? { target: 'failed', actions: noteAttempt };
  const onError: OnError = retry
    ? [{ guard: 'canRetry', target: retry, actions: noteAttempt }, ...(Array.isArray(failure) ? failure : [failure])]
    : failure;
  const states: Record<string, StateConfig> = {
    [call]: recoverySetup.createStateConfig({ invoke: { ...invoke, onError } }),
  };
  if (retry) states[retry] = pauseThen('backoff', call);
  return states as Record<TCall | TRetry, StateConfig>;
}

/** A waiting step's entry (steps 7 and 9): the step starts, and its wait runs from now until its timing's limit. */
export function startWait(
  step: StepName,
  what: WaitStatus['what'],
  limit: 'preparingTimeoutMs' | 'verifyTimeoutMs',
  message: string,
) {
  return [
    { type: 'startStep' as const, params: { step } },
    recoverySetup.assign({
      wait: ({ context, system }) => ({
        what,
        since: now(system),
        deadline: now(system) + context.timing[limit],
        message,
        pending: [],
      }),
    }),
  ];
}

/**
 * A wait's live re-read (steps 7 and 9): `polling` reads the target nodes, folds their views in and lets `wait`
 * update the wait's message from them, then the step's `check` decides; a read that fails is shown as a notice and
 * tried again after the poll interval (`pause`), like an answer that has not come yet.
 */
export function pollStates(wait: (context: RecoveryContext, views: NodeView[]) => WaitStatus | null) {
  return {
    polling: recoverySetup.createStateConfig({
      invoke: {
        src: 'observe',
        input: ({ context }) => ({ nodes: targetNodes(context) }),
        onDone: {
          target: 'check',
          actions: [
            { type: 'storeObservations', params: ({ event }) => ({ views: event.output }) },
            assign({
              wait: ({ context, event, system }) => {
                const next = wait(context, event.output);
                return next && { ...next, checkedAt: now(system) };
              },
            }),
          ],
        },
        onError: { target: 'pause', actions: assign({ notice: ({ event }) => errorOf(event).message }) },
      },
    }),
    pause: pauseThen('poll', 'polling'),
  };
}

/** Every target node shows etcd Preparing: step 7 ends (its row says `result`) and the bootstrap begins. */
export function allPreparingThen(result: (context: RecoveryContext) => string) {
  return {
    guard: 'allTargetsPreparing' as const,
    target: '#recovery.procedure.bootstrap',
    actions: {
      type: 'endStep' as const,
      params: ({ context }: { context: RecoveryContext }) => ({
        step: 'wait for Preparing' as const,
        status: 'done' as const,
        result: result(context),
      }),
    },
  };
}

export interface SaidArgs {
  context: RecoveryContext;
  event: unknown;
}
/** What a failure says: a fixed sentence, or one read from the context and the event that ended the step. */
type Said = string | ((args: SaidArgs) => string);
const say = (said: Said, args: SaidArgs): string => (typeof said === 'string' ? said : said(args));

/** The action that ends `step` as done, its row saying `result`. */
export function stepDone(step: StepName, result: Said) {
  return {
    type: 'endStep' as const,
    params: (a: SaidArgs) => ({ step, status: 'done' as const, result: say(result, a) }),
  };
}

/** The actions that end the procedure as failed at `step`: its row says `result`, the outcome `failed: <why>`. */
export function failedAt(step: StepName, result: Said, why: Said) {
  return [
    {
      type: 'endStep' as const,
      params: (a: SaidArgs) => ({ step, status: 'failed' as const, result: say(result, a) }),
    },
    { type: 'setOutcome' as const, params: (a: SaidArgs) => ({ outcome: `failed: ${say(why, a)}` as const }) },
  ];
}
