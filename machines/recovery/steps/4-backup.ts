/**
 * Step 4, back up machine configuration: every reachable node's configuration saved as YAML; the preparation plan
 * (wipe or re-create, with the labels each node gets) is made from what was read.
 */
import { assign } from 'xstate';
import { planPreparation } from '../../decisions.js';
import { emptyRow, withTalosctl } from '../context.js';
import { promptState, retryPromptState } from '../prompts.js';
import { recoverySetup } from '../setup.js';
import { callStep, failedAt } from '../states.js';
import type { RecoveryContext } from '../../recovery-types.js';
import { unansweredNodes } from './1-connect.js';

/**
 * A full recovery plans every node not left out: one that did not answer this read (a node briefly unreachable, a
 * resumed step on a busy machine) is read again rather than planned as nothing. Member replacement expects its broken
 * member to be silent, so it is not held up here.
 */
const unreadBeforeRecovery = ({ context }: { context: RecoveryContext }): boolean =>
  (context.procedure ?? 'recovery') === 'recovery' && unansweredNodes(context).length > 0;

/** The step's end, the same whichever procedure comes next. */
const endBackupStep = {
  type: 'endStep',
  params: ({ context }: { context: RecoveryContext }) => ({
    step: 'backup configs' as const,
    status: 'done' as const,
    result:
      Object.entries(context.configs)
        .map(([node, c]) => `${node} (${c.source === 'live' ? 'saved' : 'from given/'})`)
        .join(', ') || 'no configuration could be read',
  }),
} as const;

export const backup = recoverySetup.createStateConfig({
  entry: { type: 'startStep', params: { step: 'backup configs' } },
  initial: 'reading',
  states: {
    ...callStep({
      call: 'reading',
      retry: 'retryRead',
      invoke: {
        src: 'assess',
        input: ({ context }) => ({ nodes: context.nodes }),
        onDone: {
          target: 'saving',
          actions: { type: 'storeObservations', params: ({ event }) => ({ views: event.output.observations }) },
        },
      },
      attempt: { action: 'assess', node: null },
    }),
    ...callStep({
      call: 'saving',
      retry: 'retrySave',
      invoke: {
        src: 'backupConfigs',
        input: ({ context }) => ({
          nodes: context.observations.filter((o) => o.reachable && !o.maintenance).map((o) => o.node),
          blank: context.observations.filter((o) => o.maintenance).map((o) => o.node),
        }),
        onDone: {
          target: 'checking',
          actions: assign(({ context, event }) => {
            const configs = { ...context.configs };
            for (const c of event.output.configs)
              if (c.file && c.source) configs[c.node] = { file: c.file, source: c.source };
            // only a full recovery wipes every node: a quorum-restoring procedure plans nothing here, and its rows
            // must not say "wipe: planned" on members it never touches
            const fullRecovery = (context.procedure ?? 'recovery') === 'recovery';
            const plan = fullRecovery
              ? planPreparation(context.observations, context.volumes, context.snapshot?.node ?? null)
              : [];
            const rows = { ...context.rows };
            for (const p of plan) {
              const row = rows[p.node] ?? emptyRow(p.node);
              rows[p.node] = {
                ...row,
                prep: {
                  ...row.prep,
                  plan: p.preparation,
                  labels: p.labels,
                  status: row.prep.status ?? 'planned',
                },
              };
            }
            // step 6's talosctl lines name each node to wipe with every label it gets (ETCD too, on a dedicated volume)
            const wipes = plan.filter((p) => p.preparation === 'wipe');
            const steps = withTalosctl(context.steps, 'prepare nodes', { nodes: context.nodes, wipes });
            return { configs, plan, rows, steps };
          }),
        },
      },
      attempt: { action: 'backup', node: null },
    }),
    failed: retryPromptState('back up configurations', 'reading'),
    // a node the read missed would get no backup and no plan, and step 6 would prepare nothing for it
    unread: promptState(
      ({ context }) => ({
        id: 'backup-unread',
        kind: 'choose',
        question: `${unansweredNodes(context).join(', ')} did not answer just now. Read every node again?`,
        detail:
          'A node that is not read gets no configuration backup and no preparation plan, so nothing is wiped until every node not left out answers.',
        options: [
          { id: 'again', label: 'read every node again (recommended)' },
          { id: 'stop', label: 'stop here (resume later)' },
        ],
        recommended: { type: 'choose', option: 'again' },
      }),
      {
        on: {
          choose: [
            { guard: { type: 'chose', params: { option: 'again' } }, target: 'reading' },
            {
              guard: { type: 'chose', params: { option: 'stop' } },
              target: '#recovery.stoppedByUser',
              actions: 'journalConfirmation',
            },
          ],
        },
      },
    ),
    checking: {
      always: [
        { guard: unreadBeforeRecovery, target: 'unread' },
        {
          guard: 'blankWithoutConfig',
          target: '#recovery.failed',
          actions: failedAt(
            'backup configs',
            'a blank node has no configuration backup',
            ({ context }) =>
              `no configuration backup for the blank node ${context.plan.find((p) => p.preparation === 'recreate' && !context.configs[p.node])?.node ?? ''}; put it in given/configs/<node>.yaml and resume`,
          ),
        },
        {
          guard: { type: 'procedureIs', params: { procedure: 'replace-member' } },
          target: '#recovery.procedure.replaceMember',
          actions: endBackupStep,
        },
        {
          target: '#recovery.procedure.initNodes',
          actions: endBackupStep,
        },
      ],
    },
  },
});
