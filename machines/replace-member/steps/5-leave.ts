/**
 * Step 5 of a planned swap: the healthy member leaves by itself (EtcdForfeitLeadership first when it leads, then
 * EtcdLeaveCluster on it), confirmed by a different healthy node that no longer lists it.
 */
import { and, assign, emit, not } from 'xstate';
import type { PlannedSwap } from '../types.js';
import { promptState, retryPromptState } from '../../recovery/prompts.js';
import { recoverySetup } from '../../recovery/setup.js';
import { callStep, failedAt } from '../../recovery/states.js';
import { replaceOf, swapLeads, swapOf, swapWitness } from '../plan.js';
import { LEAVE_RULES, PLANNED_SWAP_RULES } from '../rules.js';
import { G } from '../guards.js';
import { leftSwap, notListedAnyMore, patch, readAll, who } from '../shared.js';

export const leave = recoverySetup.createStateConfig({
  entry: { type: 'startStep', params: { step: 'remove member' } },
  initial: 'reading',
  states: {
    ...readAll('locating'),
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
          actions: [assign({ replace: ({ context }) => leftSwap(context) }), ...notListedAnyMore('it left already')],
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
});
