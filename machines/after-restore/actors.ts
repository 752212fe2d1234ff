/**
 * The after-restore step's named actors as the machine declares them: each throws until the runtime provides it
 * (src/wizard/after-restore.ts, given to the machine with the recovery's own in src/wizard/actors.ts). Spread into setup.ts.
 */
import { fromPromise } from 'xstate';
import type { AfterRestoreListing, HealthReading } from './types.js';

export const AFTER_RESTORE_ACTORS = {
  /** every node, workers included: the control-plane nodes given, and the others from the cluster's discovery */
  listAfterRestoreNodes: fromPromise<AfterRestoreListing, { controlPlane: string[] }>(async () => {
    throw new Error('listAfterRestoreNodes was not provided');
  }),
  /** ServiceRestart kubelet on one node, through the ledger (never sent twice); resolves with the node's reply */
  restartKubelet: fromPromise<{ reply: string }, { node: string; opId: string }>(async () => {
    throw new Error('restartKubelet was not provided');
  }),
  /** one health reading of every node: apid, kubelet, and etcd on the control-plane nodes */
  checkAfterRestore: fromPromise<HealthReading[], { nodes: { node: string; machineType: string }[] }>(async () => {
    throw new Error('checkAfterRestore was not provided');
  }),
};
