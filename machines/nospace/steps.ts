/**
 * The NOSPACE playbook's own steps (issue 15): after connect, assess and a snapshot (shared with the full recovery,
 * machines/recovery/steps.ts), defragment each member (followers first, the leader last), disarm the alarm, and
 * check the space reclaimed. Names are unique across every procedure's table.
 */
import type { StepDef } from '../recovery/steps.js';

export const NOSPACE_STEPS = [
  {
    n: 4,
    name: 'defragment',
    state: 'nospace',
    title: 'Defragment',
    why: 'etcd frees the space of deleted revisions only when a member is defragmented; each member blocks meanwhile.',
    whatHappens: 'Defragment one member at a time, followers first and the leader last, showing the size before/after.',
    working: 'the member to finish defragmenting',
    // one node per call, followers first and the leader last (`etcd status` names the leader); `etcd defrag` acts on
    // the node's local member only (siderolabs/talos cmd/talosctl/cmd/talos/etcd.go@v1.13.9:136; alarm list/disarm: :88, :112)
    talosctl: ({ nodes }) => [
      `talosctl -n ${nodes.join(',') || '<nodes>'} etcd status`,
      ...(nodes.length ? nodes.map((n) => `talosctl -n ${n} etcd defrag`) : ['talosctl -n <node> etcd defrag']),
    ],
  },
  {
    n: 5,
    name: 'disarm alarm',
    state: 'nospace',
    title: 'Disarm the alarm',
    why: 'The cluster stays read-only until the NOSPACE alarm is disarmed, even once space is free.',
    whatHappens: 'Disarm the alarm through one member and read the alarms again.',
    working: 'the alarm to be disarmed',
    talosctl: ({ nodes }) => [
      `talosctl -n ${nodes[0] ?? '<node>'} etcd alarm list`,
      `talosctl -n ${nodes[0] ?? '<node>'} etcd alarm disarm`,
      `talosctl -n ${nodes[0] ?? '<node>'} etcd alarm list`,
    ],
  },
  {
    n: 6,
    name: 'check space',
    state: 'nospace',
    title: 'Check the space',
    why: 'Without more room or fewer writes the database fills again; the quota is set in the machine config.',
    whatHappens: 'Read every member’s database size and alarms, report the bytes reclaimed, and advise on the quota.',
    working: 'every member’s status',
    talosctl: ({ nodes }) => [
      `talosctl -n ${nodes.join(',') || '<nodes>'} etcd status`,
      `talosctl -n ${nodes[0] ?? '<node>'} etcd alarm list`,
    ],
  },
] as const satisfies readonly StepDef[];
