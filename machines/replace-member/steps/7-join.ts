/** Step 7: Talos adds the new etcd as a learner and promotes it once it has caught up: each phase shown. */
import { assign } from 'xstate';
import { choicePrompt } from '../../recovery/prompts.js';
import { recoverySetup } from '../../recovery/setup.js';
import { pauseThen } from '../../recovery/states.js';
import { joinPhase, replaceOf } from '../plan.js';
import { G } from '../guards.js';
import { patch, pollNodes, startWaiting, who } from '../shared.js';

export const join = recoverySetup.createStateConfig({
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
    polling: pollNodes(
      (context) => context.nodes,
      (context, _views, at) => {
        const { phase } = joinPhase(context);
        return {
          replace: patch(context, { phase }),
          wait: context.wait && {
            ...context.wait,
            checkedAt: at,
            message: phase,
            pending: [{ node: who(context), state: null, cause: phase }],
          },
        };
      },
    ),
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
});
