/**
 * Step 5: remove the broken member through a healthy node. Its id is read from a *different* healthy node's list; an
 * unreachable member is waited for with a count-down first (it may be rebooting: removing it and having it come back
 * with its old data is a split brain); the address typed; EtcdRemoveMemberByID through that node (NotFound = done).
 */
import { and, assign, not } from 'xstate';
import { waitingCause } from '../../decisions.js';
import { choicePrompt, promptState, retryPromptState } from '../../recovery/prompts.js';
import { recoverySetup } from '../../recovery/setup.js';
import { callStep, failedAt, pauseThen } from '../../recovery/states.js';
import { listedMember, removalTarget, replaceOf, viaNode } from '../plan.js';
import { REMOVAL_RULES, REPLACE_MEMBER_RULES } from '../rules.js';
import { G } from '../guards.js';
import { journal, notListedAnyMore, patch, pollNodes, readAll, startWaiting, who } from '../shared.js';

export const remove = recoverySetup.createStateConfig({
  entry: { type: 'startStep', params: { step: 'remove member' } },
  initial: 'reading',
  states: {
    ...readAll('locating'),
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
            ...notListedAnyMore('already removed'),
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
        polling: pollNodes(
          (context) => context.nodes,
          (context, _views, at) => ({ wait: context.wait && { ...context.wait, checkedAt: at } }),
        ),
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
        polling: pollNodes(
          (context) => context.nodes,
          (context, _views, at) => ({
            wait: context.wait && {
              ...context.wait,
              checkedAt: at,
              pending: context.observations
                .filter((o) => o.node === replaceOf(context).current?.node)
                .map((o) => ({
                  node: o.node,
                  state: o.etcdService,
                  cause: o.reachable ? (waitingCause(o) ?? `etcd ${o.etcdService ?? 'not reported'}`) : 'not answering',
                })),
            },
          }),
        ),
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
});
