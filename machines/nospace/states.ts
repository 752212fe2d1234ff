/**
 * The NOSPACE playbook (issue 15) as a state under `procedure`: not built yet, so it stops with nothing changed and
 * says what to do by hand.
 */
import { recoverySetup } from '../recovery/setup.js';

export const nospace = recoverySetup.createStateConfig({
  always: {
    target: '#recovery.failed',
    actions: {
      type: 'setOutcome',
      params: {
        outcome:
          'failed: etcd raised a NOSPACE alarm (its database is full); nothing was changed: defragment each member with `talosctl etcd defrag`, then `talosctl etcd alarm disarm`',
      },
    },
  },
});
