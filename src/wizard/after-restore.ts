/**
 * The after-restore step's effects (issue 15): the named actors machines/after-restore/actors.ts declares, over the Talos client.
 *
 * - The node list: the control-plane nodes the recovery worked on, and every other node of the cluster from the
 *   discovery members a control-plane node keeps (COSI `Members.cluster.talos.dev` in namespace `cluster`, spec
 *   nodeId/addresses/hostname/machineType: siderolabs/talos pkg/machinery/resources/cluster/member.go@v1.13.0:30-36).
 *   A client or a cluster without it leaves the workers unknown: with discovery disabled Talos lists no members at all
 *   (machines/after-restore/workers.ts cites why), and the step asks for the workers' addresses.
 * - The restart: ServiceRestart { id: "kubelet" } to one node (machined stops the service and starts it again:
 *   siderolabs/talos internal/app/machined/internal/server/v1alpha1/v1alpha1_server.go@v1.14.0-rc.1:816-831,
 *   internal/app/machined/pkg/system/system.go@v1.14.0-rc.1:462-482; kubelet is a service that allows it:
 *   internal/app/machined/pkg/system/services/kubelet.go@v1.14.0-rc.1:235-243). Journalled before and after under an
 *   operation id; a resume never sends it twice (the ledger, checked against the kubelet's event history).
 * - The health check: Version (apid answers), ServiceList (kubelet Running and healthy) on every node, and the etcd
 *   view of the control-plane nodes (service, health, member list) as the recovery reads it.
 */
import type { CallOptions, ClusterMember, NodeResult, ServiceInfo, TalosClient } from '../talos/types.js';
import type { AfterRestoreListing, HealthReading } from '../../machines/after-restore/types.js';
import { fromPromise } from 'xstate';
import { statusTimeout, type EffectDeps, type EffectTiming } from './deps.js';
import { ActionError, ledgered, messageOf, unwrapDestructive } from './ledger.js';
import { observeNodes } from './observe.js';

/** A discovered cluster member (what the client's COSI list of Members.cluster.talos.dev gives). */
export type ClusterMemberView = Pick<ClusterMember, 'id' | 'hostname' | 'addresses'> & { machineType: string };

type MembersCall = (node: string, opts?: CallOptions) => Promise<NodeResult<ClusterMemberView[]>>;
/** The client's discovery list, when this client has it (TalosClient.clusterMembers is optional). */
const membersCallOf = (client: TalosClient): MembersCall | null =>
  client.clusterMembers ? client.clusterMembers.bind(client) : null;

/** The discovery list from the first control-plane node that gives one, or why none did. */
async function discoveredMembers(
  deps: EffectDeps,
  controlPlane: readonly string[],
): Promise<{ via: string; members: ClusterMemberView[] } | { why: string }> {
  const call = membersCallOf(deps.client);
  if (!call) return { why: 'this talos-dr cannot read the discovery members yet' };
  let why = 'no control-plane node answered';
  for (const node of controlPlane) {
    const result = await call(node, { timeoutMs: statusTimeout(deps) }).catch(
      (error: unknown): NodeResult<ClusterMemberView[]> => ({
        node,
        ok: false,
        error: { code: 14, codeName: 'Unavailable', message: messageOf(error) },
      }),
    );
    if (result.ok && result.value.length > 0) return { via: node, members: result.value };
    why = result.ok
      ? `${node} lists no discovery members (is cluster discovery disabled?)`
      : `${node}: ${result.error.message}`;
  }
  return { why };
}

/**
 * Every node: the control-plane nodes as given (their type as the recovery read it), then each discovered member
 * that is none of them, by its first address. A member whose addresses or hostname match a given node is that node.
 */
export function mergeNodeList(
  given: readonly { node: string; machineType: string; hostname: string | null }[],
  members: readonly ClusterMemberView[],
): AfterRestoreListing['nodes'] {
  const known = new Set(given.flatMap((g) => [g.node, ...(g.hostname ? [g.hostname] : [])]));
  const others = members
    .filter((m) => !m.addresses.some((a) => known.has(a)) && !known.has(m.hostname) && m.addresses.length > 0)
    .map((m) => ({ node: m.addresses[0] as string, machineType: m.machineType, hostname: m.hostname || null }));
  const controlPlaneFirst = [...others].sort(
    (a, b) => Number(a.machineType === 'worker') - Number(b.machineType === 'worker'),
  );
  return [...given, ...controlPlaneFirst];
}

async function listNodes(deps: EffectDeps, controlPlane: string[]): Promise<AfterRestoreListing> {
  const views = await observeNodes(deps, controlPlane).catch(() => []);
  const given = controlPlane.map((node) => {
    const v = views.find((x) => x.node === node);
    return {
      node,
      machineType: v?.machineType && v.machineType !== 'unknown' ? v.machineType : 'controlplane',
      hostname: v?.hostname ?? null,
    };
  });
  const found = await discoveredMembers(deps, controlPlane);
  if ('why' in found)
    return {
      nodes: given,
      // the step then asks for the workers' addresses (machines/after-restore/workers.ts)
      source: `The workers could not be listed (${found.why}).`,
      workersListed: false,
    };
  const nodes = mergeNodeList(given, found.members);
  const workers = nodes.filter((n) => n.machineType === 'worker').length;
  return {
    nodes,
    source: `The nodes come from the cluster's discovery members on ${found.via} (talosctl get members): ${nodes.length - workers} control-plane, ${workers} worker${workers === 1 ? '' : 's'}.`,
    workersListed: true,
  };
}

const kubeletOf = (services: ServiceInfo[]): ServiceInfo | undefined => services.find((s) => s.id === 'kubelet');

/**
 * Whether the node's kubelet shows a restart since the call witnessed by `before` was sent, or null when its services
 * could not be read. Like for like when the witness holds the kubelet's newest event as the node dated it just before
 * the send (kubeletLastEvent): an event newer than that, by the node's own clock, is the restart. Without it (a
 * journal of an older version) an event dated at or after the send time by our clock counts, which a node whose
 * clock is behind ours never shows: its restart is dated before the send, and it was restarted a second time.
 */
async function kubeletRestartedSince(
  deps: EffectDeps,
  node: string,
  before: Record<string, unknown> | null,
): Promise<boolean | null> {
  const lastBefore = typeof before?.kubeletLastEvent === 'number' ? before.kubeletLastEvent : null;
  const sentAt = typeof before?.sentAt === 'number' ? before.sentAt : null;
  if (lastBefore === null && sentAt === null) return false;
  const [result] = await deps.client.serviceList([node], { timeoutMs: statusTimeout(deps) });
  if (!result?.ok) return null;
  const kubelet = kubeletOf(result.value);
  if (lastBefore !== null) return Boolean(kubelet?.events.some((e) => e.ts !== null && e.ts > lastBefore));
  return Boolean(kubelet?.events.some((e) => e.ts !== null && sentAt !== null && e.ts >= sentAt));
}

/**
 * The kubelet's newest event as the node dates it, read just before the restart is sent (for the witness), or nothing
 * when its services could not be read or list no dated kubelet event (then the send time decides, as before).
 */
async function kubeletLastEventBeforeSend(deps: EffectDeps, node: string): Promise<Record<string, unknown>> {
  const [result] = await deps.client
    .serviceList([node], { timeoutMs: statusTimeout(deps) })
    .catch((): NodeResult<ServiceInfo[]>[] => []);
  if (!result?.ok) return {};
  const dated = (kubeletOf(result.value)?.events ?? []).map((e) => e.ts).filter((ts): ts is number => ts !== null);
  return dated.length > 0 ? { kubeletLastEvent: Math.max(...dated) } : {};
}

/**
 * ServiceRestart kubelet. Talos restarts the service inside the call (siderolabs/talos
 * internal/app/machined/internal/server/v1alpha1/v1alpha1_server.go@v1.13.9:810-824, APIRestart), so a call whose
 * answer was lost may have restarted it: journalled as "answer lost", the next attempt first reads the kubelet's
 * history, and sends again only when the history shows nothing since the send.
 */
export async function restartKubelet(
  deps: EffectDeps,
  input: { node: string; opId: string },
): Promise<{ reply: string }> {
  const { node, opId } = input;
  return ledgered(deps, {
    opId,
    action: 'restart kubelet (ServiceRestart kubelet)',
    node,
    destructive: true,
    answered: () => ({ reply: 'already restarted (the journal shows it)' }),
    // the send time, with the kubelet's newest event as the node dates it just before
    witness: async () => {
      const lastEvent = await kubeletLastEventBeforeSend(deps, node);
      return { sentAt: Date.now(), ...lastEvent };
    },
    send: async () => {
      const reply = unwrapDestructive(
        await deps.client.serviceRestart(node, 'kubelet', { timeoutMs: 30_000 }),
        'restarting kubelet',
      );
      return { reply: reply || 'restarted' };
    },
    // sent before a crash? a kubelet whose history moved on since then was restarted
    reconcile: async (before) => {
      const restarted = await kubeletRestartedSince(deps, node, before).catch(() => null);
      if (restarted === null)
        throw new ActionError(
          `Cannot tell whether ${node}'s kubelet was restarted before the interruption (its services could not be read), so it is not restarted again on a guess; try again once ${node} answers.`,
          true,
          true,
        );
      return restarted ? { reply: 'restarted before the interruption' } : null;
    },
    describe: (value) => value.reply,
  });
}

/** One reading of every node for the health check. */
async function checkNodes(deps: EffectDeps, nodes: { node: string; machineType: string }[]): Promise<HealthReading[]> {
  const all = nodes.map((n) => n.node);
  const controlPlane = nodes.filter((n) => n.machineType !== 'worker').map((n) => n.node);
  const call = { timeoutMs: statusTimeout(deps) };
  const [versions, services, etcdViews] = await Promise.all([
    deps.client.version(all, call),
    deps.client.serviceList(all, call),
    observeNodes(deps, controlPlane),
  ]);
  return nodes.map(({ node, machineType }) => {
    const version = versions.find((r) => r.node === node);
    const service = services.find((r) => r.node === node);
    const kubelet = service?.ok ? kubeletOf(service.value) : undefined;
    const view = etcdViews.find((v) => v.node === node);
    const role = machineType === 'worker' ? ('worker' as const) : ('controlplane' as const);
    return {
      node,
      role,
      apidError: version?.ok ? null : version ? version.error.message : 'no answer',
      kubelet: kubelet
        ? {
            state: kubelet.state,
            healthy: kubelet.health.unknown ? null : kubelet.health.healthy,
            message: kubelet.health.lastMessage || null,
          }
        : null,
      servicesError: service && !service.ok ? service.error.message : service ? null : 'no answer',
      etcd:
        role === 'controlplane'
          ? {
              service: view?.etcdService ?? null,
              healthy: view?.etcdHealthy ?? null,
              members: view?.members ? view.members.map((m) => m.id) : null,
              error: view?.membersError ?? view?.statusError ?? view?.error ?? null,
            }
          : null,
    };
  });
}

/** The after-restore step's named actors, given to the machine with the recovery's own (src/wizard/actors.ts). */
export function afterRestoreActors(deps: EffectDeps, _timing: EffectTiming) {
  return {
    listAfterRestoreNodes: fromPromise<AfterRestoreListing, { controlPlane: string[] }>(({ input }) =>
      listNodes(deps, input.controlPlane),
    ),
    restartKubelet: fromPromise<{ reply: string }, { node: string; opId: string }>(({ input }) =>
      restartKubelet(deps, input),
    ),
    checkAfterRestore: fromPromise<HealthReading[], { nodes: { node: string; machineType: string }[] }>(({ input }) =>
      checkNodes(deps, input.nodes),
    ),
  };
}
