/**
 * Step 10, after the restore (issue 15): once verify has seen etcd Running and healthy everywhere, every node's kubelet
 * (workers included) is restarted one node at a time if the user agrees, then the control plane is checked until it is
 * healthy or the wait's limit. The restore itself is done: whatever is still wrong is listed (one sentence each, on
 * screen, in the journal and the report) and the outcome stays `recovered`.
 *
 * Why kubelets: a restore takes etcd's revisions back in time, and a kubelet's watch cache still holds the newer ones
 * (restore guides list kubelets first among the watchers that see "a conflicting, parallel history", e.g. OKD's
 * "Restoring to a previous cluster state"); issue 15 asks for the restart on every node, workers included, the nodes
 * the recovery never touched. A restarted kubelet lists from etcd again; running pods are not stopped.
 */
import { assign, enqueueActions } from 'xstate';
import type { Prompt, RecoveryContext } from '../recovery-types.js';
import { errorOf } from '../recovery/context.js';
import { promptState } from '../recovery/prompts.js';
import { now, recoverySetup } from '../recovery/setup.js';
import { pauseThen } from '../recovery/states.js';
import { failedRestarts, restartByHand, stillWrong, WORKERS_BY_HAND } from './health.js';
import { controlPlaneListed, G } from './guards.js';
import { nextKubeletNode } from './rules.js';
import { afterRestoreLines } from './steps.js';
import type { AfterRestoreListing, AfterRestoreNode, AfterRestoreState } from './types.js';
import { parseWorkers } from './workers.js';

const STEP = 'after restore' as const;

/** The nodes the recovery worked on (the -n / talosconfig nodes), less any left out by an explicit override. */
export const givenNodes = (context: RecoveryContext): string[] =>
  context.nodes.filter((n) => !context.excluded.includes(n));

const stateOf = (context: RecoveryContext): AfterRestoreState =>
  context.afterRestore ?? { nodes: [], stillWrong: [], decision: null };

const isWorker = (n: AfterRestoreNode): boolean => n.machineType === 'worker';

/** "3 control-plane nodes and 1 worker" */
export function nodesInWords(nodes: readonly AfterRestoreNode[]): string {
  const workers = nodes.filter(isWorker).length;
  const cp = nodes.length - workers;
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
  return `${plural(cp, 'control-plane node')}${workers ? ` and ${plural(workers, 'worker')}` : ''}`;
}

/** The listing folded into the step's state: a resumed step keeps each node's progress and the answers given. */
export function withListing(previous: AfterRestoreState | null, listing: AfterRestoreListing): AfterRestoreState {
  const before = new Map((previous?.nodes ?? []).map((n) => [n.node, n]));
  const typed = previous?.typedWorkers ?? [];
  const listed = listing.nodes.map((n) => n.node);
  const typedRows = typed
    .filter((node) => !listed.includes(node))
    .map((node) => ({ node, machineType: 'worker', hostname: null }));
  return {
    nodes: [...listing.nodes, ...typedRows].map(
      (n) =>
        before.get(n.node) ?? {
          node: n.node,
          machineType: n.machineType,
          hostname: n.hostname,
          status: 'pending',
          detail: null,
        },
    ),
    source: typed.length ? typedSource(listing.source, typed) : listing.source,
    workersListed: listing.workersListed,
    workersAnswer: previous?.workersAnswer ?? null,
    typedWorkers: typed,
    decision: previous?.decision ?? null,
    stillWrong: [],
  };
}

/** Where the list came from once the user typed the workers. */
const typedSource = (listingSource: string, workers: readonly string[]) =>
  `${listingSource} The workers are the ${workers.length === 1 ? 'address' : `${workers.length} addresses`} you typed: ${workers.join(', ')}.`;

/** The typed workers added to the list (pending), with where they came from. */
function withTypedWorkers(state: AfterRestoreState, workers: readonly string[]): AfterRestoreState {
  const listed = new Set(state.nodes.map((n) => n.node));
  const added: AfterRestoreNode[] = workers
    .filter((node) => !listed.has(node))
    .map((node) => ({ node, machineType: 'worker', hostname: null, status: 'pending', detail: null }));
  return {
    ...state,
    nodes: [...state.nodes, ...added],
    source: typedSource(state.source ?? '', workers),
    workersAnswer: 'typed',
    typedWorkers: [...workers],
  };
}

/** Discovery named no workers: type their addresses, or go on with the control-plane nodes only (explicitly). */
function workersPrompt(context: RecoveryContext): Prompt {
  const state = stateOf(context);
  // the text field's label, for the screen: the option takes a line of text (the addresses) before it is chosen
  const typeOption: NonNullable<Prompt['options']>[number] & { ask: string } = {
    id: 'type',
    label: "type the workers' addresses",
    ask: "Workers' addresses (commas or spaces)",
  };
  return {
    id: 'after-restore:workers',
    kind: 'choose',
    question: `The workers could not be found: only the ${nodesInWords(state.nodes)} are known. Type the workers' addresses?`,
    detail:
      `${state.source ?? ''} Every worker's kubelet also caches revisions the restore took back. Their addresses: \`kubectl get nodes -o wide\` (INTERNAL-IP), or your inventory.`.trim(),
    options: [
      typeOption,
      {
        id: 'control-plane-only',
        label: "the control-plane nodes only (restart the workers' kubelets yourself)",
      },
    ],
    recommended: { type: 'choose', option: 'control-plane-only' },
  };
}

/** One node's restart progress changed. */
const withNode = (state: AfterRestoreState, node: string, change: Partial<AfterRestoreNode>): AfterRestoreState => ({
  ...state,
  nodes: state.nodes.map((n) => (n.node === node ? { ...n, ...change } : n)),
});

/** The step's talosctl lines, once every node is known. */
/** The kubelet restart in hand ended (`done` with the node's reply, or `failed` with why). */
const restartEnded = (context: RecoveryContext, status: 'done' | 'failed', detail: string): AfterRestoreState =>
  withNode(stateOf(context), nextKubeletNode(context) ?? '', { status, detail });

const withLines = (context: RecoveryContext, state: AfterRestoreState) =>
  context.steps.map((s) =>
    s.name === STEP
      ? {
          ...s,
          talosctl: afterRestoreLines(
            state.nodes.filter((n) => !isWorker(n)).map((n) => n.node),
            state.nodes.map((n) => n.node),
          ),
        }
      : s,
  );

function restartPrompt(context: RecoveryContext): Prompt {
  const state = stateOf(context);
  const all = state.nodes.map((n) => n.node);
  return {
    id: 'after-restore:kubelets',
    kind: 'yes-no',
    question: `Restart kubelet on ${all.length === 1 ? 'the one node' : `all ${all.length} nodes`} (${nodesInWords(state.nodes)}), one at a time?`,
    detail:
      `${state.source ?? ''} Each kubelet still caches revisions the restore took back; a restart makes it read etcd again (running pods keep running). No: restart them yourself later with \`talosctl -n ${all.join(',')} service kubelet restart\`.`.trim(),
    recommended: { type: 'answer.yes' },
  };
}

/** "restarting kubelet on 127.0.0.5 (worker), 4 of 4" */
function progressNotice(state: AfterRestoreState, node: string): string {
  const i = state.nodes.findIndex((n) => n.node === node);
  const n = state.nodes[i];
  return `restarting kubelet on ${node}${n && isWorker(n) ? ' (worker)' : ''}, ${i + 1} of ${state.nodes.length}`;
}

/** How the workers were found, when not by discovery. */
const workersNote = (state: AfterRestoreState): string =>
  state.workersListed !== false
    ? ''
    : state.workersAnswer === 'typed'
      ? ' (workers typed by you)'
      : ' (workers could not be listed)';

/** The step's one-line result: the restarts, then the health check's verdict. */
export function afterRestoreResult(state: AfterRestoreState, wrong: readonly string[]): string {
  const restarted = state.nodes.filter((n) => n.status === 'done').length;
  const restarts =
    state.decision === 'declined'
      ? 'kubelet restarts declined'
      : `kubelet restarted on ${restarted} of ${state.nodes.length} nodes${workersNote(state)}`;
  const health = wrong.length
    ? `${wrong.length} thing${wrong.length === 1 ? '' : 's'} still wrong: ${wrong[0]}${wrong.length > 1 ? ' …' : ''}`
    : 'control plane healthy, kubelet Running everywhere';
  return `${restarts}; ${health}`;
}

/**
 * The step ends (the restore stays recovered): the failed restarts, the by-hand restart when declined or when the
 * workers could not be listed, and what the health check still found, each shown and journalled as a warning.
 */
const finish = (why: string | null) =>
  recoverySetup.enqueueActions(({ context, enqueue }) => {
    const state = stateOf(context);
    const byHand =
      state.decision === 'declined'
        ? [restartByHand(state.nodes.map((n) => n.node))]
        : state.workersListed === false && state.workersAnswer !== 'typed'
          ? [WORKERS_BY_HAND]
          : [];
    const wrong = [...failedRestarts(state.nodes), ...byHand, ...state.stillWrong, ...(why ? [why] : [])];
    enqueue.assign({
      afterRestore: { ...state, stillWrong: wrong },
      followUp: [...wrong, ...context.followUp.filter((f) => !wrong.includes(f))],
      notice: null,
      wait: null,
    });
    for (const message of wrong) enqueue({ type: 'warn', params: { message } });
    enqueue.emit({
      type: 'journal',
      entry: {
        kind: 'observation',
        step: STEP,
        what: 'health check after the restore',
        result: wrong.length ? `${wrong.length} still wrong` : 'control plane healthy, kubelet Running on every node',
        data: { stillWrong: wrong },
      },
    });
    enqueue({ type: 'endStep', params: { step: STEP, status: 'done', result: afterRestoreResult(state, wrong) } });
  });

export const afterRestore = recoverySetup.createStateConfig({
  // startStep adds the row to a folder saved before this step existed
  entry: { type: 'startStep', params: { step: STEP } },
  on: {
    // the time limit of a drill (or a person's give-up) ends the health check, not the restore: it stays recovered
    'give-up': {
      target: '#recovery.recovered',
      actions: finish('The health check was stopped before it saw everything healthy; run `talosctl health`.'),
    },
  },
  initial: 'listing',
  states: {
    listing: {
      invoke: {
        src: 'listAfterRestoreNodes',
        input: ({ context }) => ({ controlPlane: givenNodes(context) }),
        onDone: {
          target: 'workersKnown',
          actions: enqueueActions(({ context, event, enqueue }) => {
            const state = withListing(context.afterRestore ?? null, event.output);
            enqueue.assign({ afterRestore: state, steps: withLines(context, state) });
            enqueue.emit({
              type: 'journal',
              entry: {
                kind: 'observation',
                step: STEP,
                what: `nodes for the kubelet restarts: ${nodesInWords(state.nodes)}`,
                result: event.output.source,
                data: { nodes: state.nodes.map((n) => ({ node: n.node, machineType: n.machineType })) },
              },
            });
          }),
        },
        // the listing never fails on its own (it falls back to the nodes given); a failure here is a bug: go on with those
        onError: {
          target: 'workersKnown',
          actions: enqueueActions(({ context, event, enqueue }) => {
            const listing: AfterRestoreListing = {
              nodes: givenNodes(context).map((node) => ({
                node,
                machineType: context.rows[node]?.machineType ?? 'controlplane',
                hostname: context.rows[node]?.hostname ?? null,
              })),
              source: `Only the nodes you gave: the cluster's node list could not be read (${errorOf(event).message}).`,
              workersListed: false,
            };
            const state = withListing(context.afterRestore ?? null, listing);
            enqueue.assign({ afterRestore: state, steps: withLines(context, state) });
          }),
        },
      },
    },
    // discovery named no workers: they are asked for, never silently left out
    workersKnown: {
      always: [{ guard: G.workersToAsk, target: 'workers' }, { target: 'deciding' }],
    },
    workers: promptState(({ context }) => workersPrompt(context), {
      on: {
        choose: [
          {
            guard: G.workersTypedValid,
            target: 'deciding',
            actions: [
              'journalConfirmation',
              enqueueActions(({ context, event, enqueue }) => {
                const typed = parseWorkers(
                  event.type === 'choose' ? (event.path ?? '') : '',
                  controlPlaneListed(context),
                );
                if (!typed.ok) return;
                const state = withTypedWorkers(stateOf(context), typed.workers);
                enqueue.assign({ afterRestore: state, steps: withLines(context, state), notice: null });
                enqueue.emit({
                  type: 'journal',
                  entry: {
                    kind: 'decision',
                    step: STEP,
                    what: `workers typed: ${typed.workers.join(', ')}`,
                    result: `their kubelets are restarted too (${nodesInWords(state.nodes)})`,
                    data: { workers: typed.workers },
                  },
                });
              }),
            ],
          },
          {
            guard: { type: 'chose', params: { option: 'control-plane-only' } },
            target: 'deciding',
            actions: [
              'journalConfirmation',
              assign({
                afterRestore: ({ context }) => ({ ...stateOf(context), workersAnswer: 'control-plane-only' as const }),
                notice: null,
              }),
            ],
          },
          // typed addresses that are not all valid: the one sentence on screen and in the journal, the question stays
          {
            guard: { type: 'chose', params: { option: 'type' } },
            actions: enqueueActions(({ context, event, enqueue }) => {
              const typed = parseWorkers(
                event.type === 'choose' ? (event.path ?? '') : '',
                controlPlaneListed(context),
              );
              if (typed.ok) return;
              enqueue.assign({ notice: typed.why });
              enqueue.emit({
                type: 'journal',
                entry: { kind: 'refusal', step: STEP, what: 'workers typed', result: typed.why, by: context.operator },
              });
            }),
          },
        ],
      },
    }),
    deciding: {
      always: [{ guard: G.afterRestoreDecided, target: 'next' }, { target: 'confirm' }],
    },
    confirm: promptState(({ context }) => restartPrompt(context), {
      on: {
        'answer.yes': {
          target: 'next',
          actions: [
            'journalConfirmation',
            assign({ afterRestore: ({ context }) => ({ ...stateOf(context), decision: 'restart' as const }) }),
          ],
        },
        'answer.no': {
          target: 'health',
          actions: [
            'journalConfirmation',
            assign({ afterRestore: ({ context }) => ({ ...stateOf(context), decision: 'declined' as const }) }),
          ],
        },
      },
    }),
    next: {
      always: [
        { guard: G.kubeletsAllSent, target: 'health' },
        { guard: G.kubeletRestartAllowed, target: 'restarting' },
        // never reached by the machine's own paths: a state edited or restored out of order is refused, not restarted
        { target: 'health', actions: { type: 'refuse', params: { rules: ['kubeletRestartAllowed'] } } },
      ],
    },
    restarting: {
      entry: assign(({ context }) => {
        const node = nextKubeletNode(context) ?? '';
        const state = stateOf(context);
        return { afterRestore: withNode(state, node, { status: 'restarting' }), notice: progressNotice(state, node) };
      }),
      invoke: {
        src: 'restartKubelet',
        input: ({ context }) => {
          const node = nextKubeletNode(context) ?? '';
          return { node, opId: `kubelet-restart:${node}` };
        },
        onDone: {
          target: 'next',
          actions: assign({
            afterRestore: ({ context, event }) => restartEnded(context, 'done', event.output.reply),
          }),
        },
        // one node's failure is named and the others go on
        onError: {
          target: 'next',
          actions: assign({
            afterRestore: ({ context, event }) => restartEnded(context, 'failed', errorOf(event).message),
          }),
        },
      },
    },
    health: {
      entry: assign({
        notice: null,
        wait: ({ context, system }) => ({
          what: 'recovery' as const,
          since: now(system),
          deadline: now(system) + healthWaitMs(context),
          message: 'waiting for etcd healthy on every control-plane node and kubelet Running on every node',
          pending: [],
        }),
      }),
      always: 'checking',
    },
    checking: {
      invoke: {
        src: 'checkAfterRestore',
        input: ({ context }) => ({
          nodes: stateOf(context).nodes.map((n) => ({ node: n.node, machineType: n.machineType })),
        }),
        onDone: {
          target: 'judging',
          actions: assign({
            afterRestore: ({ context, event }) => ({ ...stateOf(context), stillWrong: stillWrong(event.output) }),
            wait: ({ context, event, system }) =>
              context.wait && {
                ...context.wait,
                checkedAt: now(system),
                message: stillWrong(event.output)[0] ?? context.wait.message,
              },
          }),
        },
        // the check reads every node itself and names what it could not read; a failure here ends the check with that
        onError: 'unreadable',
      },
    },
    unreadable: {
      always: {
        target: '#recovery.recovered',
        actions: finish('The health check could not run; run `talosctl health` to see the cluster as it is now.'),
      },
    },
    judging: {
      always: [
        { guard: G.afterRestoreHealthy, target: '#recovery.recovered', actions: finish(null) },
        { guard: 'waitExpired', target: '#recovery.recovered', actions: finish(null) },
        { target: 'pause' },
      ],
    },
    pause: pauseThen('poll', 'checking'),
  },
});

/**
 * How long the health check waits for kubelets to come back and etcd to settle before it lists what is still wrong:
 * a third of verify's limit (5 min by default), never under 5 s.
 */
export function healthWaitMs(context: RecoveryContext): number {
  return Math.max(5000, Math.round(context.timing.verifyTimeoutMs / 3));
}
