/**
 * Step 4, back up machine configuration: every reachable node's configuration saved as YAML; the preparation plan
 * (wipe or re-create, with the labels each node gets) is made from what was read.
 */
import { assign } from 'xstate';
import { planPreparation } from '../../decisions.js';
import { emptyRow, withTalosctl } from '../context.js';
import { retryPromptState } from '../prompts.js';
import { recoverySetup } from '../setup.js';
import { callStep, failedAt } from '../states.js';
import type { RecoveryContext } from '../../recovery-types.js';

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
            const plan = planPreparation(context.observations, context.volumes, context.snapshot?.node ?? null);
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
    checking: {
      always: [
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
