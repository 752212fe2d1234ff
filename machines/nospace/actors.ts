/**
 * The NOSPACE playbook's named actors as the machine declares them: each throws until the runtime provides it
 * (src/wizard/nospace.ts, given to the machine with the recovery's own in src/wizard/actors.ts). Spread into setup.ts.
 */
import { fromPromise } from 'xstate';
import type { DefragOutput, DisarmOutput, MemberSpace } from './types.js';

export const NOSPACE_ACTORS = {
  /** every member's EtcdStatus (sizes, ids, leader) and EtcdAlarmList; with `quota`, its machine config's quota too */
  readSpace: fromPromise<MemberSpace[], { nodes: string[]; quota: boolean }>(async () => {
    throw new Error('readSpace was not provided');
  }),
  /** EtcdDefragment on one node (its local member only), with its sizes read just before and just after */
  defragmentMember: fromPromise<DefragOutput, { node: string; opId: string }>(async () => {
    throw new Error('defragmentMember was not provided');
  }),
  /** EtcdAlarmDisarm through one node (etcd disarms every alarm of the cluster) */
  disarmAlarms: fromPromise<DisarmOutput, { node: string; opId: string }>(async () => {
    throw new Error('disarmAlarms was not provided');
  }),
};
