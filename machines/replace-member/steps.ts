/**
 * The member-replacement procedure's own steps (issue 15): after connect, assess, snapshot and backup configs (shared
 * with the full recovery, machines/recovery/steps.ts), one broken member at a time is removed through a healthy node,
 * its machine wiped or re-created, and its etcd waited for until it joins as a learner and is promoted.
 * Names are unique across every procedure's table: they are journalled and key the screens' texts.
 */
import type { StepDef } from '../recovery/steps.js';

export const REPLACE_MEMBER_STEPS = [
  {
    n: 5,
    name: 'remove member',
    state: 'replaceMember',
    title: 'Remove the member',
    why: 'A broken member still counts towards quorum; removing it through a healthy node lets a fresh one join.',
    whatHappens: "Read the member's id from a healthy node's member list and remove it through that node.",
    working: 'the member to leave the member list',
    talosctl: ({ nodes }) => [
      `talosctl -n ${nodes[0] ?? '<healthy-node>'} etcd members`,
      `talosctl -n ${nodes[0] ?? '<healthy-node>'} etcd remove-member <member-id>`,
    ],
  },
  {
    n: 6,
    name: 'replace node',
    state: 'replaceMember',
    title: 'Wipe or re-create the node',
    why: "The old member's data must go before its machine can join again as a new member.",
    whatHappens: 'Wipe EPHEMERAL (and ETCD where it exists) on the old node, or apply its saved config to a blank one.',
    working: 'the node to be wiped and come back',
    talosctl: () => [
      'talosctl -n <node> reset --graceful=false --reboot --system-labels-to-wipe EPHEMERAL',
      'talosctl -n <blank-node> apply-config --insecure --file configs/<node>.yaml',
    ],
  },
  {
    n: 7,
    name: 'wait for join',
    state: 'replaceMember',
    title: 'Wait for the join',
    why: 'Talos adds the new etcd as a learner and promotes it once it has caught up; both take a while.',
    whatHappens: 'Watch the member list until the node is listed, then promoted to a voting member.',
    working: 'the new member to join and be promoted',
    talosctl: ({ nodes }) => [`talosctl -n ${nodes[0] ?? '<healthy-node>'} etcd members`],
  },
  {
    n: 8,
    name: 'check members',
    state: 'replaceMember',
    title: 'Check the members',
    why: 'A replacement is done only when every member is healthy and every node lists the same members.',
    whatHappens: 'Poll every node until etcd is Running and healthy everywhere with agreeing member lists.',
    working: 'every member to be healthy and agree',
    talosctl: ({ nodes }) => [
      `talosctl -n ${nodes.join(',') || '<nodes>'} etcd members`,
      `talosctl -n ${nodes.join(',') || '<nodes>'} service etcd`,
    ],
  },
] as const satisfies readonly StepDef[];
