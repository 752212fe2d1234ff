/**
 * The member-replacement procedure (issue 15) as a state under `procedure`, after the shared snapshot (step 3) and
 * configuration backup (step 4). One broken member at a time, each through the same four steps:
 *   remove member   read every node; find the member in a *different* healthy node's list; an unreachable member is
 *                   waited for with a count-down first (it may be rebooting: removing it and having it come back with
 *                   its old data is a split brain); the address typed; EtcdRemoveMemberByID through that node, polled
 *                   until gone (NotFound = already done);
 *   replace node    wipe the old machine with the volume-aware labels if it answers, re-apply its backed-up config
 *                   if a blank machine answers at its address, or, if it does not answer, the user keeps it off;
 *   wait for join   Talos adds the new etcd as a learner and promotes it once it has caught up: each phase shown;
 *   check members   every node Running, healthy, agreeing on the members; then the next member.
 * Each phase re-reads live state on entry, so a resume after a crash continues from what the cluster shows, and every
 * destructive call goes through the journal ledger (never sent twice).
 */
import { and, assign, emit, not } from 'xstate';
import { recoveryComplete, waitingCause, wipeLabels } from '../decisions.js';
import type { RecoveryContext } from '../recovery-types.js';
import type { PlannedSwap } from './types.js';
import { choicePrompt, promptState, retryPromptState } from '../recovery/prompts.js';
import { now, recoverySetup } from '../recovery/setup.js';
import { callStep, failedAt, pauseThen } from '../recovery/states.js';
import {
  checkedNodes,
  joinPhase,
  listOf,
  listedMember,
  removalTarget,
  replaceOf,
  swapLeads,
  swapOf,
  swapWitness,
  viaNode,
} from './plan.js';
import { LEAVE_RULES, PLANNED_SWAP_RULES, REMOVAL_RULES, REPLACE_MEMBER_RULES } from './rules.js';
import { G } from './guards.js';

type Ctx = { context: RecoveryContext };

const who = (context: RecoveryContext): string => {
  const c = replaceOf(context).current;
  return c?.node ?? c?.name ?? c?.memberId ?? 'the member';
};

/** The replace state with some fields changed. */
const patch = (context: RecoveryContext, fields: Partial<ReturnType<typeof replaceOf>>) => ({
  ...replaceOf(context),
  ...fields,
});

/**
 * The swapped member has left: from here it is replaced as a removed member is (its machine wiped or kept off, then
 * its join followed), with the id and the confirming node the leave used.
 */
const leftSwap = (context: RecoveryContext) => {
  const swap = swapOf(context) as PlannedSwap;
  return patch(context, {
    swap: { ...swap, left: true },
    current: {
      node: swap.node,
      memberId: swap.memberId,
      name: swap.name,
      kind: 'etcd-failing',
      why: `planned swap of a healthy member: ${swap.node} left etcd by itself`,
    },
    via: swap.via,
    memberId: swap.memberId,
    fate: null,
    phase: 'removed',
  });
};

/** Read every node given: the states decide from what the cluster shows now, never from what it showed before. */
const readAll = (next: string) =>
  callStep({
    call: 'reading',
    retry: 'retryRead',
    invoke: {
      src: 'observe',
      input: ({ context }) => ({ nodes: context.nodes }),
      onDone: {
        target: next,
        actions: { type: 'storeObservations', params: ({ event }) => ({ views: event.output }) },
      },
    },
    attempt: { action: 'read every node', node: null },
  });

const journal = (what: (a: Ctx) => string, result: (a: Ctx) => string, kind: 'decision' | 'observation' = 'decision') =>
  recoverySetup.emit((a) => ({
    type: 'journal' as const,
    entry: { kind, node: replaceOf(a.context).current?.node ?? null, what: what(a), result: result(a) },
  }));

/** A wait of the procedure: from now until `ms` from now, with a message the polls rewrite. */
const startWaiting = (ms: (c: RecoveryContext) => number, message: (c: RecoveryContext) => string) =>
  recoverySetup.assign({
    wait: ({ context, system }) => ({
      what: 'node back' as const,
      since: now(system),
      deadline: now(system) + ms(context),
      message: message(context),
      pending: [],
    }),
  });

export const replaceMember = recoverySetup.createStateConfig({
  initial: 'next',
  exit: assign({ wait: null }),
  states: {
    // ---- the next member, or the end ------------------------------------------------------------------------------
    next: {
      always: [
        // a resume after a stop comes back here (the procedure's shallow history): the member in hand goes on where
        // it was, each phase re-reading live state first
        { guard: G.swapPending, target: 'leave' },
        { guard: G.machineHandled, target: 'join' },
        { guard: G.memberRemoved, target: 'replace' },
        { guard: G.memberInHand, target: 'remove' },
        { guard: G.replaceQueueEmpty, target: 'finished' },
        {
          target: 'remove',
          actions: [
            assign({
              replace: ({ context }) => {
                const r = replaceOf(context);
                return patch(context, {
                  current: r.queue[0] ?? null,
                  queue: r.queue.slice(1),
                  via: null,
                  memberId: null,
                  removeDecided: false,
                  fate: null,
                  phase: 'chosen',
                });
              },
            }),
            journal(
              ({ context }) => `replace member: ${who(context)}`,
              ({ context }) => replaceOf(context).current?.why ?? '',
            ),
          ],
        },
      ],
    },
    finished: {
      always: [
        {
          guard: G.nothingWasReplaced,
          target: '#recovery.nothingToDo',
          actions: journal(
            () => 'nothing removed',
            ({ context }) =>
              `${(replaceOf(context).cameBack ?? []).join(', ')} came back by itself: waiting was right, no member was removed or wiped.`,
          ),
        },
        { target: '#recovery.memberReplaced' },
      ],
    },

    // ---- step 5 of a planned swap: the healthy member leaves by itself ----------------------------------------------
    leave: {
      entry: { type: 'startStep', params: { step: 'remove member' } },
      initial: 'reading',
      states: {
        ...readAll('locating'),
        failed: retryPromptState((c) => c.attempt?.action ?? 'read every node', 'reading'),
        // the confirming node read again from live state (a resume comes back here too); the member id stays the one
        // chosen at the assessment, so a member that left and came back under a new id is never asked to leave again
        locating: {
          entry: assign({
            replace: ({ context }) => {
              const swap = swapOf(context);
              return swap
                ? patch(context, { swap: { ...swap, via: swapWitness(context, swap.node) } })
                : replaceOf(context);
            },
          }),
          always: [
            {
              guard: G.swapNoWitness,
              target: '#recovery.failed',
              actions: failedAt(
                'remove member',
                'no healthy node other than the leaving one lists the members',
                ({ context }) =>
                  `no healthy node other than ${swapOf(context)?.node ?? 'the chosen node'} answered with a member list, so its leave cannot be confirmed; run talos-dr resume once one does`,
              ),
            },
            {
              guard: G.swapNotListed,
              target: '#recovery.procedure.replaceMember.next',
              actions: [
                assign({ replace: ({ context }) => leftSwap(context) }),
                {
                  type: 'endStep',
                  params: ({ context }) => ({
                    step: 'remove member',
                    status: 'done',
                    result: `${who(context)}: no longer listed by ${replaceOf(context).via} (it left already)`,
                  }),
                },
                journal(
                  ({ context }) => `${who(context)}: member not listed`,
                  ({ context }) => `${replaceOf(context).via} does not list it: it left already, nothing to send`,
                  'observation',
                ),
              ],
            },
            // confirmed by typing before the process stopped, and still allowed by every rule now: go on
            { guard: and([G.swapDecided, G.leaveAllowed]), target: 'sending' },
            { target: 'confirming' },
          ],
        },
        confirming: promptState(
          ({ context }) => {
            const swap = swapOf(context) as PlannedSwap;
            const refused = LEAVE_RULES.map((name) =>
              PLANNED_SWAP_RULES[name](context, { type: 'confirm', address: swap.node }, swap.node),
            ).find((sentence) => sentence !== null);
            const leads = swapLeads(context);
            return {
              id: `leave:${swap.node}`,
              kind: 'typed-address',
              question: `Have ${swap.node}${swap.name ? ` (${swap.name})` : ''} leave etcd${leads ? ' after handing its leadership to another member' : ''}?`,
              detail:
                `Planned swap: ${leads ? `${swap.node} leads, so EtcdForfeitLeadership moves the leadership first; then ` : ''}EtcdLeaveCluster goes to ${swap.node} only: it removes its own member ${swap.memberId ?? '?'}, stops etcd and deletes its etcd data. ` +
                `${swap.via ?? '?'} confirms it left; then you wipe the machine (or keep it off) and it rejoins as a learner. The other members keep quorum. ` +
                // the same by hand (talosctl cmd/talosctl/cmd/talos/etcd.go: `etcd forfeit-leadership`, `etcd leave`)
                `By hand: ${leads ? `talosctl -n ${swap.node} etcd forfeit-leadership, then ` : ''}talosctl -n ${swap.node} etcd leave.` +
                `${refused ? ` Not allowed now: ${refused}` : ''}`,
              target: swap.node,
              recommended: refused ? null : { type: 'confirm', address: swap.node },
            };
          },
          {
            on: {
              confirm: [
                {
                  guard: and(['addressMatches', G.leaveAllowed]),
                  target: 'sending',
                  actions: [
                    'journalConfirmation',
                    assign({
                      replace: ({ context }) =>
                        patch(context, { swap: { ...(swapOf(context) as PlannedSwap), decided: true } }),
                    }),
                  ],
                },
                { guard: not('addressMatches'), actions: { type: 'refuse', params: { rules: ['addressMatches'] } } },
                { actions: { type: 'refuse', params: { rules: [...LEAVE_RULES] } } },
              ],
              'answer.no': { target: '#recovery.stoppedByUser' },
            },
          },
        ),
        sending: {
          always: [{ guard: G.swapLeadsNow, target: 'forfeiting' }, { target: 'leaving' }],
        },
        ...callStep({
          call: 'forfeiting',
          invoke: {
            src: 'forfeitLeadership',
            input: ({ context }) => {
              const swap = swapOf(context) as PlannedSwap;
              return { node: swap.node, opId: `forfeit-leadership:${swap.node}:${swap.memberId ?? ''}` };
            },
            onDone: {
              target: 'leaving',
              actions: [
                assign({
                  replace: ({ context }) =>
                    patch(context, { swap: { ...(swapOf(context) as PlannedSwap), forfeited: true } }),
                }),
                emit(({ context, event }) => ({
                  type: 'journal' as const,
                  entry: {
                    kind: 'observation' as const,
                    node: swapOf(context)?.node ?? null,
                    what: 'leadership handed over',
                    result: event.output.leader ? `${event.output.leader} leads now` : 'it no longer led',
                  },
                })),
              ],
            },
          },
          attempt: (context) => ({ action: 'move the leadership away', node: swapOf(context)?.node ?? null }),
        }),
        ...callStep({
          call: 'leaving',
          invoke: {
            src: 'leaveCluster',
            input: ({ context }) => {
              const swap = swapOf(context) as PlannedSwap;
              return {
                node: swap.node,
                via: swap.via ?? '',
                memberId: swap.memberId ?? '',
                opId: `leave-cluster:${swap.memberId ?? ''}`,
              };
            },
            onDone: {
              target: '#recovery.procedure.replaceMember.replace',
              actions: [
                assign({ replace: ({ context }) => leftSwap(context) }),
                {
                  type: 'endStep',
                  params: ({ context, event }) => ({
                    step: 'remove member',
                    status: 'done',
                    result: `member ${replaceOf(context).memberId} (${who(context)}) left etcd (EtcdLeaveCluster on ${who(context)}); ${replaceOf(context).via} no longer lists it${event.output.alreadyGone ? ' (it had left already)' : ''}`,
                  }),
                },
              ],
            },
          },
          attempt: (context) => ({ action: 'leave the etcd cluster', node: swapOf(context)?.node ?? null }),
          onFailure: {
            target: 'leaveFailed',
            actions: {
              type: 'noteAttempt',
              params: ({ context }) => ({ action: 'leave the etcd cluster', node: swapOf(context)?.node ?? null }),
            },
          },
        }),
        // trying again reads every node first: a leave that landed shows as "not listed" and is not sent again
        leaveFailed: retryPromptState('leave the etcd cluster', 'reading'),
      },
    },

    // ---- step 5: remove the member through a healthy node ----------------------------------------------------------
    remove: {
      entry: { type: 'startStep', params: { step: 'remove member' } },
      initial: 'reading',
      states: {
        ...readAll('locating'),
        failed: retryPromptState((c) => c.attempt?.action ?? 'read every node', 'reading'),
        locating: {
          entry: assign({
            replace: ({ context }) => {
              const r = replaceOf(context);
              const current = r.current;
              if (!current) return r;
              const via = viaNode(context, current);
              const hostname = context.observations.find((o) => o.node === current.node)?.hostname ?? null;
              const list = via ? (context.observations.find((o) => o.node === via)?.members ?? []) : [];
              const member = via ? listedMember(list, current, hostname) : null;
              return patch(context, { via, memberId: member?.id ?? null, phase: 'located' });
            },
          }),
          always: [
            { guard: G.currentHealthyNow, target: 'cameBack' },
            // no healthy node lists the members right now (etcd still starting after a reboot or a resume): wait
            { guard: G.noWitness, target: 'noWitness' },
            {
              guard: G.currentNotListed,
              target: '#recovery.procedure.replaceMember.replace',
              actions: [
                assign({ replace: ({ context }) => patch(context, { phase: 'removed' }) }),
                {
                  type: 'endStep',
                  params: ({ context }) => ({
                    step: 'remove member',
                    status: 'done',
                    result: `${who(context)}: no longer listed by ${replaceOf(context).via} (already removed)`,
                  }),
                },
                journal(
                  ({ context }) => `${who(context)}: member not listed`,
                  ({ context }) => `${replaceOf(context).via} does not list it: already removed, nothing to send`,
                  'observation',
                ),
              ],
            },
            { guard: G.mustWaitFirst, target: 'waiting' },
            { target: 'confirming' },
          ],
        },
        noWitness: {
          entry: startWaiting(
            (c) => c.timing.nodeBackTimeoutMs,
            (c) => `waiting for a healthy node other than ${who(c)} to list the members`,
          ),
          exit: assign({ wait: null }),
          initial: 'pause',
          states: {
            pause: pauseThen('poll', 'polling'),
            polling: {
              invoke: {
                src: 'observe',
                input: ({ context }) => ({ nodes: context.nodes }),
                onDone: {
                  target: 'check',
                  actions: [
                    { type: 'storeObservations', params: ({ event }) => ({ views: event.output }) },
                    assign({
                      wait: ({ context, system }) => context.wait && { ...context.wait, checkedAt: now(system) },
                    }),
                  ],
                },
                onError: { target: 'pause' },
              },
            },
            check: {
              always: [
                { guard: G.witnessFound, target: '#recovery.procedure.replaceMember.remove.locating' },
                {
                  guard: 'waitExpired',
                  target: '#recovery.failed',
                  actions: failedAt(
                    'remove member',
                    'no healthy node other than the member can list the members',
                    ({ context }) =>
                      `no healthy node other than ${who(context)} answered with a member list within ${Math.round(context.timing.nodeBackTimeoutMs / 1000)} s, so the member's id cannot be read safely; run talos-dr resume once one does`,
                  ),
                },
                { target: 'pause' },
              ],
            },
          },
        },
        cameBack: {
          always: {
            target: '#recovery.procedure.replaceMember.next',
            actions: [
              assign({
                replace: ({ context }) =>
                  patch(context, {
                    cameBack: [...(replaceOf(context).cameBack ?? []), who(context)],
                    current: null,
                    phase: 'came back',
                  }),
              }),
              {
                type: 'endStep',
                params: ({ context }) => ({
                  step: 'remove member',
                  status: 'skipped',
                  result: `${who(context)} answers again as a healthy member: nothing removed`,
                }),
              },
              journal(
                ({ context }) => `${who(context)} came back`,
                () => 'its etcd is a healthy voting member again: not removed (waiting was right)',
                'observation',
              ),
            ],
          },
        },

        // an unreachable member is waited for first, with a count-down: it may be rebooting
        waiting: {
          entry: startWaiting(
            (c) => c.timing.nodeBackTimeoutMs,
            (c) =>
              `${who(c)} does not answer: waiting for it to come back (it may be rebooting; removing it now and having it return with its old data would split the cluster)`,
          ),
          exit: assign({ wait: null }),
          initial: 'polling',
          states: {
            polling: {
              invoke: {
                src: 'observe',
                input: ({ context }) => ({ nodes: context.nodes }),
                onDone: {
                  target: 'check',
                  actions: [
                    { type: 'storeObservations', params: ({ event }) => ({ views: event.output }) },
                    assign({
                      wait: ({ context, system }) =>
                        context.wait && {
                          ...context.wait,
                          checkedAt: now(system),
                          pending: context.observations
                            .filter((o) => o.node === replaceOf(context).current?.node)
                            .map((o) => ({
                              node: o.node,
                              state: o.etcdService,
                              cause: o.reachable
                                ? (waitingCause(o) ?? `etcd ${o.etcdService ?? 'not reported'}`)
                                : 'not answering',
                            })),
                        },
                    }),
                  ],
                },
                onError: { target: 'pause' },
              },
            },
            pause: pauseThen('poll', 'polling'),
            check: {
              always: [
                // back and a healthy voter again: nothing is removed
                { guard: G.currentHealthyNow, target: '#recovery.procedure.replaceMember.remove.cameBack' },
                { guard: 'waitExpired', target: '#recovery.procedure.replaceMember.remove.stillDown' },
                { target: 'pause' },
              ],
            },
          },
        },
        stillDown: choicePrompt(
          ({ context }) => ({
            id: `still-down:${who(context)}`,
            kind: 'choose',
            question: `${who(context)} has not come back as a healthy member. Wait longer?`,
            detail: `Removing its member is right only if the machine is gone for good or will be wiped: a machine that comes back with its old data after its member was removed splits the cluster. Now: ${context.wait?.pending[0]?.cause ?? 'not answering'}.`,
            options: [
              { id: 'wait', label: 'wait longer (recommended)' },
              { id: 'remove', label: 'remove its member (you type its address next)' },
              { id: 'stop', label: 'stop here' },
            ],
            recommended: { type: 'choose', option: 'wait' },
          }),
          {
            wait: 'waiting',
            remove: {
              target: 'reading',
              actions: assign({ replace: ({ context }) => patch(context, { removeDecided: true }) }),
            },
            stop: '#recovery.stoppedByUser',
          },
        ),

        // the typed confirmation: the node's address (or the member's name when no node is given for it)
        confirming: promptState(
          ({ context }) => {
            const r = replaceOf(context);
            const target = removalTarget(context);
            const kind = r.current?.kind;
            const then =
              kind === 'blank'
                ? `then apply its backed-up configuration to the blank machine at ${target}`
                : kind === 'unreachable'
                  ? 'then keep that machine powered off (or wipe it) before it ever comes back'
                  : r.current?.node
                    ? `then wipe ${target} so it rejoins as a new member`
                    : 'no machine of the tool’s nodes belongs to it';
            // a removal the rules refuse now is not recommended: autopilot stops here instead of typing in vain
            const refused = REMOVAL_RULES.map((name) =>
              REPLACE_MEMBER_RULES[name](context, { type: 'confirm', address: target }, target),
            ).find((sentence) => sentence !== null);
            return {
              id: `remove-member:${target}`,
              kind: 'typed-address',
              question: `Remove etcd member ${r.memberId ?? '?'} (${r.current?.name ?? target}) through ${r.via ?? '?'}, ${then}?`,
              detail: `${r.current?.why ?? ''} Its id was read from ${r.via ?? '?'}'s member list, not from the member itself.${refused ? ` Not allowed now: ${refused}` : ''}`,
              target,
              recommended: refused ? null : { type: 'confirm', address: target },
            };
          },
          {
            on: {
              confirm: [
                {
                  guard: and(['addressMatches', G.removalAllowed]),
                  target: 'removing',
                  actions: [
                    'journalConfirmation',
                    assign({ replace: ({ context }) => patch(context, { removeDecided: true }) }),
                  ],
                },
                { guard: not('addressMatches'), actions: { type: 'refuse', params: { rules: ['addressMatches'] } } },
                { actions: { type: 'refuse', params: { rules: [...REMOVAL_RULES] } } },
              ],
            },
          },
        ),
        ...callStep({
          call: 'removing',
          invoke: {
            src: 'removeMember',
            input: ({ context }) => {
              const r = replaceOf(context);
              return {
                via: r.via ?? '',
                memberId: r.memberId ?? '',
                node: r.current?.node ?? null,
                opId: `remove-member:${r.memberId ?? ''}`,
              };
            },
            onDone: {
              target: '#recovery.procedure.replaceMember.replace',
              actions: [
                {
                  type: 'endStep',
                  params: ({ context, event }) => ({
                    step: 'remove member',
                    status: 'done',
                    result: `member ${replaceOf(context).memberId} (${who(context)}) removed through ${replaceOf(context).via}${event.output.alreadyGone ? ' (it was already gone)' : ''}`,
                  }),
                },
                assign({ replace: ({ context }) => patch(context, { phase: 'removed' }) }),
              ],
            },
          },
          attempt: (context) => ({ action: 'remove the member', node: replaceOf(context).via }),
          onFailure: {
            target: 'removeFailed',
            actions: {
              type: 'noteAttempt',
              params: ({ context }) => ({ action: 'remove the member', node: replaceOf(context).via }),
            },
          },
        }),
        // trying again reads every node first: a removal that landed shows as "not listed" and is not sent again
        removeFailed: retryPromptState('remove the member', 'reading'),
      },
    },

    // ---- step 6: the old machine: wipe, re-create, or kept off -----------------------------------------------------
    replace: {
      entry: { type: 'startStep', params: { step: 'replace node' } },
      initial: 'reading',
      states: {
        ...readAll('deciding'),
        failed: retryPromptState((c) => c.attempt?.action ?? 'read every node', 'reading'),
        deciding: {
          always: [
            {
              guard: G.currentHasNoNode,
              target: '#recovery.procedure.replaceMember.check',
              actions: [
                assign({ replace: ({ context }) => patch(context, { fate: 'none' }) }),
                {
                  type: 'endStep',
                  params: ({ context }) => ({
                    step: 'replace node',
                    status: 'skipped',
                    result: `no node given for ${who(context)}: no machine to wipe`,
                  }),
                },
              ],
            },
            {
              guard: G.currentBlankWithoutConfig,
              target: '#recovery.failed',
              actions: failedAt(
                'replace node',
                'no configuration backup for the blank machine',
                ({ context }) =>
                  `no configuration backup for the blank machine at ${who(context)}; put it in given/configs/${who(context)}.yaml and resume`,
              ),
            },
            { guard: G.currentIsBlank, target: 'recreating' },
            // a planned swap's machine still answers with its configuration: wiped only when its address is typed
            { guard: and([G.swapMachineUndecided, G.machineUndecided]), target: 'swapFate' },
            { guard: G.currentReachable, target: 'wiping' },
            { target: 'keepOff' },
          ],
        },
        ...callStep({
          call: 'wiping',
          invoke: {
            src: 'replaceResetNode',
            input: ({ context }) => {
              const node = replaceOf(context).current?.node ?? '';
              return {
                node,
                labels: wipeLabels(context.volumes[node] ?? null),
                opId: `replace-reset:${node}:${replaceOf(context).memberId ?? 'unlisted'}`,
              };
            },
            onDone: {
              target: '#recovery.procedure.replaceMember.join',
              actions: [
                assign({
                  replace: ({ context }) => patch(context, { fate: 'wipe', phase: 'wiped' }),
                  wiped: ({ context }) => [...new Set([...context.wiped, who(context)])],
                }),
                {
                  type: 'endStep',
                  params: ({ context }) => ({
                    step: 'replace node',
                    status: 'done',
                    result: `${who(context)} wiped (${wipeLabels(context.volumes[who(context)] ?? null).join(' + ')}) and rebooting`,
                  }),
                },
              ],
            },
          },
          attempt: (context) => ({ action: 'wipe the old machine', node: replaceOf(context).current?.node ?? null }),
        }),
        ...callStep({
          call: 'recreating',
          invoke: {
            src: 'replaceApplyConfig',
            input: ({ context }) => {
              const node = replaceOf(context).current?.node ?? '';
              return {
                node,
                file: context.configs[node]?.file ?? '',
                opId: `replace-apply:${node}:${replaceOf(context).memberId ?? 'unlisted'}`,
              };
            },
            onDone: {
              target: '#recovery.procedure.replaceMember.join',
              actions: [
                assign({ replace: ({ context }) => patch(context, { fate: 'recreate', phase: 'configured' }) }),
                {
                  type: 'endStep',
                  params: ({ context }) => ({
                    step: 'replace node',
                    status: 'done',
                    result: `${who(context)}: configuration backup applied over the maintenance API`,
                  }),
                },
              ],
            },
          },
          attempt: (context) => ({
            action: 'apply the configuration backup',
            node: replaceOf(context).current?.node ?? null,
          }),
        }),
        swapFate: promptState(
          ({ context }) => {
            const node = who(context);
            const labels = wipeLabels(context.volumes[node] ?? null);
            return {
              id: `swap-wipe:${node}`,
              kind: 'typed-address',
              question: `${node} has left etcd. Wipe it now so it rejoins as a new member?`,
              detail: `Reset of ${node} with ${labels.join(' + ')} (volume-aware: this machine's own labels); it reboots and Talos adds it back as a learner. Esc keeps it off instead (to replace its hardware): it must be wiped before it ever boots again with this configuration (talosctl -n ${node} reset --graceful=false --system-labels-to-wipe ${labels.join(',')}).`,
              target: node,
              recommended: { type: 'confirm', address: node },
            };
          },
          {
            on: {
              confirm: [
                { guard: 'addressMatches', target: 'wiping', actions: 'journalConfirmation' },
                { actions: { type: 'refuse', params: { rules: ['addressMatches'] } } },
              ],
              'answer.no': {
                target: '#recovery.procedure.replaceMember.check',
                actions: [
                  'journalConfirmation',
                  assign({
                    replace: ({ context }) =>
                      patch(context, {
                        fate: 'keep-off',
                        keptOff: [...(replaceOf(context).keptOff ?? []), who(context)],
                      }),
                  }),
                  {
                    type: 'endStep',
                    params: ({ context }) => ({
                      step: 'replace node',
                      status: 'done',
                      result: `${who(context)} kept off after leaving etcd (must be wiped before it ever boots again)`,
                    }),
                  },
                ],
              },
            },
          },
        ),
        keepOff: choicePrompt(
          ({ context }) => ({
            id: `keep-off:${who(context)}`,
            kind: 'choose',
            question: `${who(context)} does not answer. Keep it powered off?`,
            detail: `Its member is removed. If that machine ever boots again with its old data it must be wiped first (talosctl -n ${who(context)} reset --graceful=false --system-labels-to-wipe EPHEMERAL). Put a blank replacement at its address and choose "look again" to configure it now.`,
            options: [
              { id: 'keep-off', label: 'keep it off and go on with one member fewer (recommended)' },
              { id: 'again', label: 'look again (a blank replacement is up now)' },
            ],
            recommended: { type: 'choose', option: 'keep-off' },
          }),
          {
            again: 'reading',
            'keep-off': {
              target: '#recovery.procedure.replaceMember.check',
              actions: [
                assign({
                  replace: ({ context }) =>
                    patch(context, {
                      fate: 'keep-off',
                      keptOff: [...(replaceOf(context).keptOff ?? []), who(context)],
                    }),
                }),
                {
                  type: 'endStep',
                  params: ({ context }) => ({
                    step: 'replace node',
                    status: 'done',
                    result: `${who(context)} kept powered off (must be wiped before it ever boots again)`,
                  }),
                },
              ],
            },
          },
        ),
      },
    },

    // ---- step 7: the new member joins as a learner and is promoted -------------------------------------------------
    join: {
      entry: [
        { type: 'startStep', params: { step: 'wait for join' } },
        startWaiting(
          (c) => c.timing.verifyTimeoutMs,
          (c) => `waiting for ${who(c)} to join etcd as a learner and be promoted`,
        ),
      ],
      exit: assign({ wait: null }),
      initial: 'polling',
      states: {
        polling: {
          invoke: {
            src: 'observe',
            input: ({ context }) => ({ nodes: context.nodes }),
            onDone: {
              target: 'check',
              actions: [
                { type: 'storeObservations', params: ({ event }) => ({ views: event.output }) },
                assign(({ context, system }) => {
                  const { phase } = joinPhase(context);
                  return {
                    replace: patch(context, { phase }),
                    wait: context.wait && {
                      ...context.wait,
                      checkedAt: now(system),
                      message: phase,
                      pending: [{ node: who(context), state: null, cause: phase }],
                    },
                  };
                }),
              ],
            },
            onError: { target: 'pause' },
          },
        },
        pause: pauseThen('poll', 'polling'),
        check: {
          always: [
            {
              guard: G.joined,
              target: '#recovery.procedure.replaceMember.check',
              actions: {
                type: 'endStep',
                params: ({ context }) => ({ step: 'wait for join', status: 'done', result: joinPhase(context).phase }),
              },
            },
            { guard: 'waitExpired', target: 'slow' },
            { target: 'pause' },
          ],
        },
        slow: choicePrompt(
          ({ context }) => ({
            id: `join-slow:${who(context)}`,
            kind: 'yes-no',
            question: `${who(context)} has not joined yet. Keep waiting?`,
            detail: `Now: ${replaceOf(context).phase ?? 'unknown'}. A learner can take a while to catch up on a large database; its console (talosctl -n ${who(context)} dmesg) says more.`,
            recommended: { type: 'answer.yes' },
          }),
          { yes: { target: '#recovery.procedure.replaceMember.join', reenter: true }, no: '#recovery.stoppedByUser' },
        ),
      },
    },

    // ---- step 8: every member healthy and agreeing; then the next member -------------------------------------------
    check: {
      entry: [
        { type: 'startStep', params: { step: 'check members' } },
        startWaiting(
          (c) => c.timing.verifyTimeoutMs,
          () => 'waiting for etcd Running and healthy on every node, with agreeing member lists',
        ),
      ],
      exit: assign({ wait: null }),
      initial: 'polling',
      states: {
        polling: {
          invoke: {
            src: 'observe',
            input: ({ context }) => ({ nodes: checkedNodes(context) }),
            onDone: {
              target: 'check',
              actions: [
                { type: 'storeObservations', params: ({ event }) => ({ views: event.output }) },
                assign({
                  wait: ({ context, event, system }) =>
                    context.wait && {
                      ...context.wait,
                      checkedAt: now(system),
                      message: recoveryComplete(event.output).reason,
                      pending: event.output
                        .filter((o) => o.etcdService !== 'Running' || o.etcdHealthy !== true)
                        .map((o) => ({ node: o.node, state: o.etcdService, cause: waitingCause(o) })),
                    },
                }),
              ],
            },
            onError: { target: 'pause' },
          },
        },
        pause: pauseThen('poll', 'polling'),
        check: {
          always: [
            {
              guard: G.membersAgree,
              target: '#recovery.procedure.replaceMember.next',
              actions: [
                {
                  type: 'endStep',
                  params: ({ context }) => ({
                    step: 'check members',
                    status: 'done',
                    result: `all ${checkedNodes(context).length} nodes Running, healthy, members agree`,
                  }),
                },
                journal(
                  ({ context }) => `member replaced: ${who(context)}`,
                  ({ context }) =>
                    `${listOf(context, replaceOf(context).via)?.length ?? '?'} members, all healthy and agreeing`,
                ),
                assign({
                  replace: ({ context }) =>
                    patch(context, {
                      done: [...replaceOf(context).done, who(context)],
                      current: null,
                      phase: 'replaced',
                    }),
                }),
              ],
            },
            { guard: 'waitExpired', target: 'slow' },
            { target: 'pause' },
          ],
        },
        slow: choicePrompt(
          ({ context }) => ({
            id: `check-slow:${who(context)}`,
            kind: 'yes-no',
            question: 'The members are not all healthy and agreeing yet. Keep waiting?',
            detail: context.wait?.message ?? '',
            recommended: { type: 'answer.yes' },
          }),
          { yes: { target: '#recovery.procedure.replaceMember.check', reenter: true }, no: '#recovery.stoppedByUser' },
        ),
      },
    },
  },
});
