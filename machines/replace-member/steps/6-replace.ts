/**
 * Step 6: the old machine: wiped with its volume-aware labels if it answers, re-created from its backed-up
 * configuration if a blank machine answers at its address, or kept off if it does not answer.
 */
import { and, assign } from 'xstate';
import { wipeLabels } from '../../decisions.js';
import { choicePrompt, promptState } from '../../recovery/prompts.js';
import { recoverySetup } from '../../recovery/setup.js';
import { callStep, failedAt } from '../../recovery/states.js';
import { replaceOf } from '../plan.js';
import { G } from '../guards.js';
import { keptOff, patch, readAll, who } from '../shared.js';

export const replace = recoverySetup.createStateConfig({
  entry: { type: 'startStep', params: { step: 'replace node' } },
  initial: 'reading',
  states: {
    ...readAll('deciding'),
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
              ...keptOff((c) => `${who(c)} kept off after leaving etcd (must be wiped before it ever boots again)`),
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
          actions: keptOff((c) => `${who(c)} kept powered off (must be wiped before it ever boots again)`),
        },
      },
    ),
  },
});
