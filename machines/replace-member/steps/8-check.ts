/** Step 8: every node Running, healthy, agreeing on the members; then the next member. */
import { assign } from 'xstate';
import { recoveryComplete, waitingCause } from '../../decisions.js';
import { choicePrompt } from '../../recovery/prompts.js';
import { recoverySetup } from '../../recovery/setup.js';
import { pauseThen } from '../../recovery/states.js';
import { checkedNodes, listOf, replaceOf } from '../plan.js';
import { G } from '../guards.js';
import { journal, patch, pollNodes, startWaiting, who } from '../shared.js';

export const check = recoverySetup.createStateConfig({
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
    polling: pollNodes(checkedNodes, (context, views, at) => ({
      wait: context.wait && {
        ...context.wait,
        checkedAt: at,
        message: recoveryComplete(views).reason,
        pending: views
          .filter((o) => o.etcdService !== 'Running' || o.etcdHealthy !== true)
          .map((o) => ({ node: o.node, state: o.etcdService, cause: waitingCause(o) })),
      },
    })),
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
});
