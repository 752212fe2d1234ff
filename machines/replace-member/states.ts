/**
 * The member-replacement procedure (issue 15) as a state under `procedure`, after the shared snapshot (step 3) and
 * configuration backup (step 4). One broken member at a time, each through the same four steps (one file each in
 * steps/; what they write alike is shared.ts):
 *   remove member   read every node; find the member in a *different* healthy node's list; an unreachable member is
 *                   waited for with a count-down first (it may be rebooting: removing it and having it come back with
 *                   its old data is a split brain); the address typed; EtcdRemoveMemberByID through that node, polled
 *                   until gone (NotFound = already done); a planned swap's healthy member leaves by itself instead;
 *   replace node    wipe the old machine with the volume-aware labels if it answers, re-apply its backed-up config
 *                   if a blank machine answers at its address, or, if it does not answer, the user keeps it off;
 *   wait for join   Talos adds the new etcd as a learner and promotes it once it has caught up: each phase shown;
 *   check members   every node Running, healthy, agreeing on the members; then the next member.
 * Each phase re-reads live state on entry, so a resume after a crash continues from what the cluster shows, and every
 * destructive call goes through the journal ledger (never sent twice).
 */
import { assign } from 'xstate';
import { recoverySetup } from '../recovery/setup.js';
import { replaceOf } from './plan.js';
import { G } from './guards.js';
import { journal, patch, who } from './shared.js';
import { leave } from './steps/5-leave.js';
import { remove } from './steps/5-remove.js';
import { replace } from './steps/6-replace.js';
import { join } from './steps/7-join.js';
import { check } from './steps/8-check.js';

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

    leave, // step 5 of a planned swap: the healthy member leaves by itself
    remove, // step 5: remove the member through a healthy node
    replace, // step 6: the old machine: wipe, re-create, or kept off
    join, // step 7: the new member joins as a learner and is promoted
    check, // step 8: every member healthy and agreeing; then the next member
  },
});
