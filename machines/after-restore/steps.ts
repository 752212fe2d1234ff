/**
 * The after-restore step (issue 15): the full recovery's tenth step, after verify. A restore sends etcd's revisions
 * back in time; every kubelet (workers included) and controller still holds a watch cache of the newer ones, so the
 * kubelets are restarted and the control plane checked before the cluster is called done. Its name is unique across
 * every procedure's table (journalled, keys the screens' texts).
 */
import type { StepDef } from '../recovery/steps.js';

const list = (nodes: readonly string[]): string => nodes.join(',') || '<nodes>';

/**
 * The step's talosctl lines: the control-plane nodes, and every node once the list is known (workers as well;
 * `<all-nodes>` until then). `get members` is the discovery list the step reads (Members.cluster.talos.dev).
 */
export function afterRestoreLines(controlPlane: readonly string[], all: readonly string[]): string[] {
  const every = all.length ? all.join(',') : '<all-nodes>';
  return [
    `talosctl -n ${controlPlane[0] ?? '<node>'} get members`,
    `talosctl -n ${every} service kubelet restart`,
    `talosctl -n ${list(controlPlane)} etcd members`,
    `talosctl -n ${every} service kubelet`,
    `talosctl -n ${controlPlane[0] ?? '<node>'} health`,
  ];
}

export const AFTER_RESTORE_STEPS = [
  {
    n: 10,
    name: 'after restore',
    state: 'afterRestore',
    title: 'After the restore',
    why: 'A restore takes etcd back in time; every kubelet, workers included, still caches the newer revisions until it restarts.',
    whatHappens:
      'List every node (workers too), restart kubelet one node at a time once you agree, then check etcd, apid and kubelet everywhere.',
    working: 'the kubelet restarts and the health check',
    talosctl: ({ nodes }) => afterRestoreLines(nodes, []),
  },
] as const satisfies readonly StepDef[];
