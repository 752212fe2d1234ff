/**
 * The after-restore step's SAFETY.md rules, each a function of context, event and target that returns null when allowed
 * or the sentence the user sees when refused. Merged into machines/guards.ts's RULES, so `refuse` can name them.
 *
 * ServiceRestart is one of the calls that change a node (common rules: destructive calls run only behind named
 * guards): kubelet is restarted only once the restore is verified, only after the user said yes, only on a node of
 * the listed cluster, and never twice on the same node.
 */
import type { RecoveryContext } from '../recovery-types.js';
import type { Rule } from '../guards.js';

/** The node whose kubelet is restarted next: the first not yet restarted (one interrupted by a crash included). */
export function nextKubeletNode(context: RecoveryContext): string | null {
  return context.afterRestore?.nodes.find((n) => n.status === 'pending' || n.status === 'restarting')?.node ?? null;
}

export const kubeletRestartAllowed: Rule = (context, _event, target) => {
  const node = target ?? nextKubeletNode(context);
  const state = context.afterRestore ?? null;
  if (context.steps.find((s) => s.name === 'verify')?.status !== 'done')
    return 'Kubelets are restarted only after the restore is verified (step 9): etcd must be Running and healthy first.';
  if (state?.decision !== 'restart') return 'Kubelets are restarted only after you answered yes to restarting them.';
  const listed = state.nodes.find((n) => n.node === node);
  if (!node || !listed)
    return `${node ?? 'That node'} is not on this cluster's node list; kubelet is restarted only on listed nodes.`;
  if (listed.status === 'done' || listed.status === 'failed')
    return `${node}: its kubelet restart was already sent; it is not sent twice (restart it by hand if needed).`;
  return null;
};

export const AFTER_RESTORE_RULES = { kubeletRestartAllowed } satisfies Record<string, Rule>;
