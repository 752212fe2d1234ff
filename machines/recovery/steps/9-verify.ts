/**
 * Step 9, verify: a Bootstrap call is not a restore; etcd is watched until Running and healthy on every target node
 * with agreeing member lists, or until the restore fails inside etcd, or the wait's limit.
 */
import { recoveryComplete, waitingCause } from '../../decisions.js';
import { targetNodes } from '../context.js';
import { recoverySetup } from '../setup.js';
import { failedAt, pollStates, startWait } from '../states.js';

export const verify = recoverySetup.createStateConfig({
  entry: startWait(
    'verify',
    'recovery',
    'verifyTimeoutMs',
    'waiting for etcd Running and healthy on every node, with agreeing member lists',
  ),
  on: {
    'give-up': {
      target: '#recovery.failed',
      actions: failedAt(
        'verify',
        ({ context }) => context.wait?.message ?? 'not healthy in time',
        ({ context }) => context.wait?.message ?? 'etcd did not become healthy in time',
      ),
    },
  },
  initial: 'polling',
  states: {
    ...pollStates((context, views) => {
      if (!context.wait) return null;
      return {
        ...context.wait,
        message: recoveryComplete(views).reason,
        pending: views
          .filter((o) => o.etcdService !== 'Running' || o.etcdHealthy !== true)
          .map((o) => ({ node: o.node, state: o.etcdService, cause: waitingCause(o) })),
      };
    }),
    check: {
      always: [
        {
          guard: 'recovered',
          // the restore is verified; step 10 restarts the kubelets and checks the control plane (machines/after-restore)
          target: '#recovery.procedure.afterRestore',
          actions: {
            type: 'endStep',
            params: ({ context }) => ({
              step: 'verify',
              status: 'done',
              result: `all ${targetNodes(context).length} nodes Running, healthy, members agree`,
            }),
          },
        },
        {
          guard: 'restoreFailed',
          target: '#recovery.failed',
          actions: failedAt('verify', 'the restore failed inside etcd', ({ context }) => {
            const o = context.observations.find((x) => x.node === context.bootstrap.node);
            const last = o?.etcdEvents?.[o.etcdEvents.length - 1] ?? o?.etcdLastEvent ?? 'etcd Failed';
            return `${context.bootstrap.node}: the restore failed: ${last}`;
          }),
        },
        {
          guard: 'waitExpired',
          target: '#recovery.failed',
          actions: failedAt(
            'verify',
            ({ context }) => context.wait?.message ?? '',
            ({ context }) =>
              `etcd not healthy within ${Math.round(context.timing.verifyTimeoutMs / 1000)} s: ${context.wait?.message ?? ''}`,
          ),
        },
        { target: 'pause' },
      ],
    },
  },
});
