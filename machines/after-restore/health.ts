/**
 * The after-restore health check, pure: from what every node answered, the sentences of what is still wrong (one
 * each, saying what to do), in the order a person would look: apid, etcd on the control plane, the member lists, then
 * kubelet everywhere. An empty list means the control plane is healthy and every kubelet runs.
 */
import type { AfterRestoreNode, HealthReading } from './types.js';

/** What is wrong with one node's apid and kubelet (every node). */
function nodeProblems(r: HealthReading): string[] {
  if (r.apidError !== null)
    return [
      `${r.node}: apid does not answer (${r.apidError}); check that the node is up, then \`talosctl -n ${r.node} version\`.`,
    ];
  const problems: string[] = [];
  if (r.servicesError !== null)
    problems.push(
      `${r.node}: its services could not be read (${r.servicesError}); check \`talosctl -n ${r.node} services\`.`,
    );
  else if (r.kubelet === null)
    problems.push(`${r.node}: no kubelet service is listed; check \`talosctl -n ${r.node} services\`.`);
  else if (r.kubelet.state !== 'Running')
    problems.push(
      `${r.node}: kubelet is ${r.kubelet.state}; see why with \`talosctl -n ${r.node} service kubelet\`, then \`talosctl -n ${r.node} service kubelet restart\`.`,
    );
  else if (r.kubelet.healthy === false)
    problems.push(
      `${r.node}: kubelet runs but fails its health check${r.kubelet.message ? ` (${r.kubelet.message})` : ''}; see \`talosctl -n ${r.node} logs kubelet\`.`,
    );
  else if (r.kubelet.healthy === null)
    problems.push(
      `${r.node}: kubelet runs but has not passed a health check yet; check \`talosctl -n ${r.node} service kubelet\` again in a minute.`,
    );
  return problems;
}

/** What is wrong with one control-plane node's etcd. */
function etcdProblems(r: HealthReading): string[] {
  const e = r.etcd;
  if (r.role !== 'controlplane' || r.apidError !== null || e === null) return [];
  if (e.service !== 'Running')
    return [
      `${r.node}: etcd is ${e.service ?? 'not reported'}${e.error ? ` (${e.error})` : ''}; see \`talosctl -n ${r.node} service etcd\`.`,
    ];
  if (e.healthy !== true)
    return [
      `${r.node}: etcd runs but is not healthy${e.error ? ` (${e.error})` : ''}; see \`talosctl -n ${r.node} etcd status\`.`,
    ];
  if (e.members === null)
    return [
      `${r.node}: its etcd member list could not be read${e.error ? ` (${e.error})` : ''}; see \`talosctl -n ${r.node} etcd members\`.`,
    ];
  return [];
}

/** The control-plane nodes' member lists: the same everywhere, and one member per control-plane node. */
function membershipProblems(readings: readonly HealthReading[]): string[] {
  const cp = readings.filter((r) => r.role === 'controlplane');
  // a node apid did not answer for has no list of its own to compare (its sentence says so already)
  const lists = cp.flatMap((r) =>
    r.apidError === null && r.etcd?.members ? [{ node: r.node, ids: [...r.etcd.members].sort() }] : [],
  );
  if (lists.length === 0) return [];
  const all = cp.map((r) => r.node).join(',');
  const keys = new Set(lists.map((l) => l.ids.join(',')));
  if (keys.size > 1)
    return [
      `The control-plane nodes do not agree on the etcd members (${lists.map((l) => `${l.node}: ${l.ids.length}`).join(', ')}); compare \`talosctl -n ${all} etcd members\`.`,
    ];
  const size = lists[0]?.ids.length ?? 0;
  if (size < cp.length)
    return [
      `etcd lists ${size} members for ${cp.length} control-plane nodes; see \`talosctl -n ${all} etcd members\`.`,
    ];
  return [];
}

/** Every sentence of what is still wrong; empty when the control plane is healthy and every kubelet runs. */
export function stillWrong(readings: readonly HealthReading[]): string[] {
  return [
    ...readings.flatMap((r) => (r.apidError !== null ? nodeProblems(r) : [])),
    ...readings.flatMap(etcdProblems),
    ...membershipProblems(readings),
    ...readings.flatMap((r) => (r.apidError === null ? nodeProblems(r) : [])),
  ];
}

/** The kubelet restarts that failed, one sentence each with the command to do it by hand. */
export function failedRestarts(nodes: readonly AfterRestoreNode[]): string[] {
  return nodes
    .filter((n) => n.status === 'failed')
    .map(
      (n) =>
        `${n.node}: the kubelet restart failed (${n.detail ?? 'no reason given'}); restart it by hand: \`talosctl -n ${n.node} service kubelet restart\`.`,
    );
}

/** The by-hand command when the restarts were declined (or some never ran). */
export function restartByHand(nodes: readonly string[]): string {
  return `Restart kubelet on every node by hand so no watch cache keeps the revisions the restore took back: \`talosctl -n ${nodes.join(',') || '<all-nodes>'} service kubelet restart\`.`;
}

/** When the workers could not be listed: their kubelets are still to restart, by hand. */
export const WORKERS_BY_HAND =
  'The workers could not be listed, so their kubelets were not restarted: restart them by hand with `talosctl -n <worker-nodes> service kubelet restart`.';
