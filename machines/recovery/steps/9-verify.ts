/**
 * Step 9, verify: a Bootstrap call is not a restore; etcd is watched until Running and healthy on every target node
 * with agreeing member lists, or until the restore fails inside etcd, or the wait's limit.
 */
import { and, assign } from 'xstate';
import { recoveryComplete, waitingCause } from '../../decisions.js';
import type { RecoveryContext } from '../../recovery-types.js';
import { targetNodes } from '../context.js';
import { recoverySetup } from '../setup.js';
import { failedAt, pollStates, startWait } from '../states.js';

/** The bootstrap node's newest etcd event, as its service history shows it (the failed pre stage's sentence). */
function lastEtcdEvent(context: RecoveryContext): string {
  const o = context.observations.find((x) => x.node === context.bootstrap.node);
  return o?.etcdEvents?.[o.etcdEvents.length - 1] ?? o?.etcdLastEvent ?? 'etcd Failed';
}

/**
 * Another target node serves etcd (Running, or it answered EtcdStatus): it joined the restored cluster and holds its
 * data, so wiping the bootstrap node and restoring again would start a second cluster beside it.
 */
const othersHoldData = (context: RecoveryContext): boolean =>
  context.observations.some(
    (o) =>
      o.node !== context.bootstrap.node &&
      targetNodes(context).includes(o.node) &&
      (o.etcdService === 'Running' || o.status != null),
  );

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
        /**
         * The restore failed inside etcd after Bootstrap was accepted. On a real node that is the etcd service's pre
         * stage: recoverFromSnapshot's error ("error recovering from the snapshot: …",
         * siderolabs/talos internal/app/machined/pkg/system/services/etcd.go@v1.13.9:511-514,594) is wrapped as
         * "failed to run pre stage" (service_runner.go@v1.13.9:279) and ends the service Failed with that sentence,
         * capitalised (system.go@v1.13.9:195-200); the service is not restarted, and etcdutl may have written the data
         * directory, so Bootstrap would be refused. While no other member holds data yet, the node needs exactly what
         * step 8 offers after a failed restore: a new wipe and upload under the next round's operation ids.
         */
        {
          guard: and(['restoreFailed', ({ context }) => !othersHoldData(context)]),
          target: '#recovery.procedure.bootstrap.restoreFailed',
          actions: [
            {
              type: 'endStep',
              params: ({ context }) => ({
                step: 'verify',
                status: 'failed',
                result: `${context.bootstrap.node}: the restore failed: ${lastEtcdEvent(context)}; step 8 offers a new wipe`,
              }),
            },
            assign({
              bootstrap: ({ context }) => ({
                ...context.bootstrap,
                restoreFailure: `${context.bootstrap.node}'s etcd failed while restoring the snapshot (${lastEtcdEvent(context)}); its data directory may not be empty, so it needs a new wipe and a new upload before Bootstrap.`,
              }),
            }),
          ],
        },
        {
          guard: 'restoreFailed',
          target: '#recovery.failed',
          actions: failedAt(
            'verify',
            'the restore failed inside etcd',
            ({ context }) => `${context.bootstrap.node}: the restore failed: ${lastEtcdEvent(context)}`,
          ),
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
