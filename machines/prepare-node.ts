/**
 * One node's preparation for bootstrap (PRODUCT.md §1 step 6), as a child actor so that every node runs side by side
 * with its own progress and errors: wipe (Reset EPHEMERAL [+ ETCD], reboot) or re-create (ApplyConfiguration over the
 * maintenance API), then wait until the node is back with etcd Preparing or Waiting. It reports every change to its
 * parent as `prep.*` events. The parent spawns it only after the user typed the node's address.
 */
import { assign, fromPromise, sendParent, setup } from 'xstate';
import { DEFAULT_TIMING, type NodeView, type PrepStatus, type Timing } from './recovery-types.js';
import { errorInfo, backoffDelay } from './errors.js';
import { now, sleep } from './recovery/clock.js';

export interface PrepareNodeInput {
  node: string;
  preparation: 'wipe' | 'recreate';
  labels: string[];
  /** the machine configuration to apply to a blank node (re-create only) */
  configFile: string | null;
  timing: Timing;
}

interface PrepareNodeContext extends PrepareNodeInput {
  attempts: number;
  /** which send this is: part of the operation id, so a retry after a failure is a new operation */
  round: number;
  lastError: string | null;
  backSince: number | null;
  /** when the node was last read while coming back (the actor's clock) */
  checkedAt?: number | null;
  lastSeen: string | null;
  /** failed sends where the node did not answer at all (rebooting): not counted against maxAttempts */
  silentFailures?: number;
  /** when the node was first found silent in this run of failures, and when last (the actor's clock), or null */
  silentSince?: number | null;
  silentLastAt?: number | null;
}

/** A node is back from a wipe or re-creation when its mTLS API answers and etcd waits for bootstrap. */
export function nodeIsBack(view: NodeView): boolean {
  return view.reachable && !view.maintenance && (view.etcdService === 'Preparing' || view.etcdService === 'Waiting');
}

const describeView = (v: NodeView): string =>
  v.maintenance
    ? 'in maintenance mode'
    : !v.reachable
      ? 'not answering (rebooting)'
      : `etcd ${v.etcdService ?? 'not reported'}`;

/**
 * A Reset or ApplyConfiguration that failed: sent again after a pause while that may help, else the node failed. A
 * node that did not answer at all (a reboot refuses connections) is tried again until it has been silent for
 * nodeAnswerTimeoutMs (minutes on real hardware), not just maxAttempts quick tries.
 */
const SEND_FAILED = [
  { guard: 'canRetry', target: '#prepareNode.retrying', actions: 'noteError' },
  { target: '#prepareNode.failed', actions: 'noteError' },
] as const;

/** How long a silent node is tried again (a child saved before the timing existed gets today's default). */
const nodeAnswerTimeout = (timing: Timing): number => timing.nodeAnswerTimeoutMs ?? DEFAULT_TIMING.nodeAnswerTimeoutMs;

export const prepareNodeMachine = setup({
  types: {} as {
    context: PrepareNodeContext;
    input: PrepareNodeInput;
  },
  actors: {
    resetNode: fromPromise<void, { node: string; labels: string[]; opId: string }>(async () => {
      throw new Error('resetNode was not provided');
    }),
    applyConfig: fromPromise<void, { node: string; file: string; opId: string }>(async () => {
      throw new Error('applyConfig was not provided');
    }),
    observe: fromPromise<NodeView[], { nodes: string[] }>(async () => {
      throw new Error('observe was not provided');
    }),
    sleep,
  },
  guards: {
    isWipe: ({ context }) => context.preparation === 'wipe',
    canRetry: ({ context, event }) => {
      const error = errorInfo((event as { error?: unknown }).error);
      if (!error.retryable) return false;
      // the guard sees no clock: the time noted at the previous silent failure (at most one backoff late)
      if (error.unanswered)
        return (
          context.silentSince == null ||
          (context.silentLastAt ?? context.silentSince) - context.silentSince <= nodeAnswerTimeout(context.timing)
        );
      return context.attempts - (context.silentFailures ?? 0) < context.timing.maxAttempts;
    },
    backTimedOut: ({ context }) =>
      context.backSince !== null && (context.checkedAt ?? 0) - context.backSince > context.timing.nodeBackTimeoutMs,
  },
  actions: {
    noteError: assign(({ context, event, system }) => {
      const error = errorInfo((event as { error?: unknown }).error);
      const at = now(system);
      return {
        lastError: error.message,
        silentFailures: (context.silentFailures ?? 0) + (error.unanswered ? 1 : 0),
        silentSince: error.unanswered ? (context.silentSince ?? at) : null,
        silentLastAt: error.unanswered ? at : null,
      };
    }),
    noteTimeout: assign({
      lastError: ({ context }) =>
        `${context.node} did not come back within ${Math.round(context.timing.nodeBackTimeoutMs / 1000)} s (${context.lastSeen ?? 'no answer'})`,
    }),
    report: sendParent(({ context }, params: { status: PrepStatus; detail: string }) => ({
      type: 'prep.update' as const,
      node: context.node,
      status: params.status,
      detail: params.detail,
      attempts: context.attempts,
    })),
  },
}).createMachine({
  id: 'prepareNode',
  context: ({ input }) => ({ ...input, attempts: 0, round: 0, lastError: null, backSince: null, lastSeen: null }),
  initial: 'sending',
  states: {
    sending: {
      entry: [
        assign({ attempts: ({ context }) => context.attempts + 1 }),
        {
          type: 'report',
          params: ({ context }) => ({
            status: 'sending',
            detail:
              context.preparation === 'wipe'
                ? `resetting ${context.labels.join(' + ')} (attempt ${context.attempts})`
                : `applying the backed-up configuration (attempt ${context.attempts})`,
          }),
        },
      ],
      initial: 'choose',
      states: {
        choose: { always: [{ guard: 'isWipe', target: 'wipe' }, { target: 'recreate' }] },
        wipe: {
          invoke: {
            src: 'resetNode',
            input: ({ context }) => ({
              node: context.node,
              labels: context.labels,
              opId: `reset:${context.node}:${context.round}`,
            }),
            onDone: '#prepareNode.back',
            onError: SEND_FAILED,
          },
        },
        recreate: {
          invoke: {
            src: 'applyConfig',
            input: ({ context }) => ({
              node: context.node,
              file: context.configFile ?? '',
              opId: `apply:${context.node}:${context.round}`,
            }),
            onDone: '#prepareNode.back',
            onError: SEND_FAILED,
          },
        },
      },
    },
    retrying: {
      entry: {
        type: 'report',
        params: ({ context }) => ({
          status: 'retrying',
          detail:
            context.silentSince != null
              ? `waiting for ${context.node} to answer again — attempt ${context.attempts}, silent for ${Math.round(((context.silentLastAt ?? context.silentSince) - context.silentSince) / 1000)} s`
              : `${context.lastError ?? 'failed'}; trying again`,
        }),
      },
      invoke: { src: 'sleep', input: ({ context }) => ({ ms: backoffDelay(context.timing, context.attempts) }) },
      on: { wake: 'sending' },
    },
    back: {
      entry: [
        assign({ backSince: ({ context, system }) => context.backSince ?? now(system) }),
        { type: 'report', params: { status: 'rebooting', detail: 'waiting for the node to come back' } },
      ],
      initial: 'observing',
      states: {
        observing: {
          invoke: {
            src: 'observe',
            input: ({ context }) => ({ nodes: [context.node] }),
            onDone: [
              {
                guard: ({ event }) => event.output[0] !== undefined && nodeIsBack(event.output[0]),
                target: '#prepareNode.done',
              },
              {
                target: 'pause',
                actions: assign({
                  lastSeen: ({ event }) => (event.output[0] ? describeView(event.output[0]) : null),
                  checkedAt: ({ system }) => now(system),
                }),
              },
            ],
            onError: {
              target: 'pause',
              actions: assign({ lastSeen: 'not answering (rebooting)', checkedAt: ({ system }) => now(system) }),
            },
          },
        },
        pause: {
          entry: {
            type: 'report',
            params: ({ context }) => ({
              status: 'rebooting',
              detail: `waiting to come back: ${context.lastSeen ?? 'no answer yet'}`,
            }),
          },
          always: { guard: 'backTimedOut', target: '#prepareNode.failed', actions: 'noteTimeout' },
          invoke: { src: 'sleep', input: ({ context }) => ({ ms: context.timing.pollMs }) },
          on: { wake: 'observing' },
        },
      },
    },
    done: {
      type: 'final',
      entry: sendParent(({ context }) => ({
        type: 'prep.done' as const,
        node: context.node,
        wiped: context.preparation === 'wipe',
      })),
    },
    failed: {
      entry: sendParent(({ context }) => ({
        type: 'prep.failed' as const,
        node: context.node,
        error: context.lastError ?? 'preparation failed',
      })),
      on: {
        retry: {
          target: 'sending',
          actions: assign({
            attempts: 0,
            round: ({ context }) => context.round + 1,
            backSince: null,
            silentFailures: 0,
            silentSince: null,
            silentLastAt: null,
          }),
        },
      },
    },
  },
});
