/**
 * ClusterService.HealthCheck as machined runs it server-side for `talosctl health` (talos:
 * internal/app/machined/internal/server/v1alpha1/v1alpha1_cluster.go@v1.14.1:33-100): refused on a worker, the
 * nodes named by the caller ("discovered nodes: […]"), then the default checks one after the other
 * (pkg/cluster/check/default.go@v1.14.1:22-213), each polled every 5 s until it passes, each change of its line sent
 * as "waiting for <check>: ..." / ": <error>" / ": OK" (pkg/conditions/conditions.go@v1.14.1:49-77); at the caller's
 * wait timeout the stream ends with the context's DeadlineExceeded (grpc-go server.go@v1.79.3:1449
 * FromContextError), which talosctl prints and exits non-zero with.
 *
 * The Talos-level checks (etcd healthy on every control-plane node, members consistent, members on control-plane
 * nodes, apid, boot sequence, kubelet) are answered from the simulator's state with Talos's texts. The simulator has
 * no Kubernetes API: its Kubernetes is taken to be healthy whenever the Talos-level checks pass (they come first in
 * Talos's order, so a cluster without etcd never reaches them), so a healthy simulated cluster passes, as a healthy
 * real one does. Memory, disk and diagnostics checks pass on every reachable node (the simulator models no hardware).
 */
import { etcdMemberList } from './api-etcd.js';
import type { CallContext, ClusterView, Payload, Send } from './api.js';
import { goQuote, parseAddr } from './netip.js';
import type { SimNode } from './node.js';
import { deadlineExceeded, RpcError, unimplemented } from './rpc-error.js';

export interface HealthDeps {
  view: ClusterView;
  /** The node at a target as apid reaches it (throws what apid would see: refused, TLS failure). */
  reach(target: string): SimNode;
}

interface HealthRequest {
  waitTimeout?: { seconds?: string | number; nanos?: number } | null;
  clusterInfo?: { controlPlaneNodes?: string[]; workerNodes?: string[] } | null;
}

const POLL_MS = 5000;
const SKIP = 'SKIP';
/** An assertion: null when it holds, SKIP, or the error text Talos would show. */
type Assertion = (poll: CallContext) => Promise<string | null>;

interface Check {
  description: string;
  assert: Assertion;
}

/** hashicorp/go-multierror format.go ListFormatFunc. */
function multiError(errors: string[]): string | null {
  if (errors.length === 0) return null;
  if (errors.length === 1) return `1 error occurred:\n\t* ${errors[0]}\n\n`;
  return `${errors.length} errors occurred:\n\t${errors.map((e) => `* ${e}`).join('\n\t')}\n\n`;
}

const errorText = (error: unknown): string =>
  error instanceof RpcError ? error.goText() : error instanceof Error ? error.message : String(error);

const byAddress = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** pkg/cluster/check/service.go@v1.14.1:25-120 ServiceHealthAssertion. */
function serviceHealth(deps: HealthDeps, nodes: string[], service: string): Assertion {
  return async () => {
    const errors: string[] = [];
    for (const address of [...nodes].sort(byAddress)) {
      let node: SimNode;
      try {
        node = deps.reach(address);
      } catch (error) {
        return `error getting service info for service "${service}" from node "${address}": ${errorText(error)}`;
      }
      const svc = node.state.services[service];
      const last = svc?.events.at(-1);
      if (!svc || !last) errors.push(`${address}: no events recorded yet for service "${service}"`);
      else if (last.state !== 'Running') {
        errors.push(
          `${address}: service "${service}" not in expected state "Running": current state [${last.state}] ${last.msg}`,
        );
      } else if (!svc.health.healthy) errors.push(`${address}: service is not healthy: ${service}`);
    }
    return multiError(errors);
  };
}

/** pkg/cluster/check/etcd.go@v1.14.1:25-100 EtcdConsistentAssertion. */
function etcdConsistent(deps: HealthDeps, nodes: string[]): Assertion {
  return async (poll) => {
    const lists: { address: string; members: Payload[] }[] = [];
    for (const address of [...nodes].sort(byAddress)) {
      try {
        const [reply] = await etcdMemberList(deps.reach(address), deps.view, {}, poll);
        lists.push({ address, members: (reply?.members as Payload[] | undefined) ?? [] });
      } catch (error) {
        return `error getting etcd member list from node "${address}": ${errorText(error)}`;
      }
    }
    const key = (m: Payload): string => `${String(m.hostname)}/${String(m.id)}/${String(m.isLearner)}`;
    const known = new Set((lists[0]?.members ?? []).map(key));
    for (const { address, members } of lists.slice(1)) {
      if (members.length !== known.size) {
        const expected = [...known].map((k) => k.split('/')[0]).join(' ');
        return `${address}: expected to have [${expected}] members, got [${members.map((m) => String(m.hostname)).join(' ')}]`;
      }
      const stranger = members.find((m) => !known.has(key(m)));
      if (stranger) return `${address}: found unexpected etcd member ${String(stranger.hostname)}`;
    }
    return null;
  };
}

/** pkg/cluster/check/etcd.go@v1.14.1:103-140 EtcdControlPlaneNodesAssertion (asks the node running the check). */
function etcdOnControlPlane(deps: HealthDeps, self: SimNode, nodes: string[]): Assertion {
  return async (poll) => {
    let members: Payload[];
    try {
      const [reply] = await etcdMemberList(self, deps.view, {}, poll);
      members = (reply?.members as Payload[] | undefined) ?? [];
    } catch (error) {
      return errorText(error);
    }
    const ips = members.flatMap((m) => ((m.peerUrls as string[] | undefined) ?? []).map((u) => new URL(u).hostname));
    const outside = ips.filter((ip) => !nodes.includes(ip));
    if (outside.length === 0) return null;
    const quoted = (list: string[]): string => `[${list.map((s) => JSON.stringify(s)).join(' ')}]`;
    return `etcd member ips ${quoted(ips)} are not subset of control plane node ips ${quoted(nodes)}`;
  };
}

/** Every node answers through apid (apid.go@v1.14.1 ApidReadyAssertion; nodes.go AllNodesBootedAssertion). */
function reachable(deps: HealthDeps, nodes: string[], what: (address: string) => string): Assertion {
  return async () => {
    const errors: string[] = [];
    for (const address of nodes) {
      try {
        deps.reach(address);
      } catch (error) {
        errors.push(`${what(address)}: ${errorText(error)}`);
      }
    }
    return errors.length > 0 ? errors.join('\n') : null;
  };
}

const passes: Assertion = async () => null;

function checks(deps: HealthDeps, self: SimNode, controlPlane: string[], all: string[]): Check[] {
  const etcdDisabled = !self.isControlPlane;
  const skipIf =
    (skip: boolean, assert: Assertion): Assertion =>
    async (poll) =>
      skip ? SKIP : assert(poll);
  const version = (a: string): string => `error getting version from node "${a}"`;
  return [
    { description: 'etcd to be healthy', assert: skipIf(etcdDisabled, serviceHealth(deps, controlPlane, 'etcd')) },
    {
      description: 'etcd members to be consistent across nodes',
      assert: skipIf(etcdDisabled, etcdConsistent(deps, controlPlane)),
    },
    {
      description: 'etcd members to be control plane nodes',
      assert: skipIf(etcdDisabled, etcdOnControlPlane(deps, self, controlPlane)),
    },
    { description: 'apid to be ready', assert: reachable(deps, all, version) },
    {
      description: 'all nodes memory sizes',
      assert: reachable(deps, all, (a) => `error getting memory info for node "${a}"`),
    },
    {
      description: 'all nodes disk sizes',
      assert: reachable(deps, all, (a) => `error getting volume status for node "${a}"`),
    },
    { description: 'no diagnostics', assert: passes },
    {
      description: 'kubelet to be healthy',
      assert: skipIf(!self.state.services.kubelet, serviceHealth(deps, controlPlane, 'kubelet')),
    },
    { description: 'all nodes to finish boot sequence', assert: reachable(deps, all, version) },
    ...[
      'all k8s nodes to report',
      'all control plane static pods to be running',
      'all control plane components to be ready',
      'all k8s nodes to report ready',
      'kube-proxy to report ready',
      'coredns to report ready',
      'all k8s nodes to report schedulable',
    ].map((description) => ({ description, assert: passes })),
  ];
}

const durationMs = (d: HealthRequest['waitTimeout']): number =>
  Number(d?.seconds ?? 0) * 1000 + Math.floor((d?.nanos ?? 0) / 1e6);

/** The nodes the caller named, or (none named) every configured node of the cluster by type. */
function clusterNodes(deps: HealthDeps, req: HealthRequest): { controlPlane: string[]; workers: string[] } {
  const controlPlane = req.clusterInfo?.controlPlaneNodes ?? [];
  const workers = req.clusterInfo?.workerNodes ?? [];
  if (controlPlane.length > 0 || workers.length > 0) return { controlPlane, workers };
  // Talos asks its discovery service (v1alpha1_cluster.go@v1.14.1:155-164)
  const configured = deps.view.discoveredMembers();
  return {
    controlPlane: configured.filter((n) => n.isControlPlane).map((n) => n.address),
    workers: configured.filter((n) => !n.isControlPlane).map((n) => n.address),
  };
}

export async function healthCheck(
  self: SimNode,
  deps: HealthDeps,
  req: HealthRequest,
  ctx: CallContext,
  send: Send,
): Promise<void> {
  // internal/app/internal/machinehelper/machinehelper.go@v1.14.1 CheckControlplane
  if (!self.isControlPlane) throw unimplemented('cluster health check is only available on control plane nodes');
  const named = clusterNodes(deps, req);
  // buildClusterInfo parses the control-plane nodes, then the workers, each with netip.ParseAddr, and answers the
  // first failure as it is: a plain error, so gRPC's Unknown (v1alpha1_cluster.go@v1.14.1:121-135,
  // pkg/cluster/cluster.go@v1.14.1:69-96); the nodes are known by their canonical text from then on
  const canonical = (addresses: string[]): string[] =>
    addresses.map((a) => {
      const parsed = parseAddr(a);
      if (!parsed.ok) throw new RpcError(2, parsed.error);
      return parsed.text;
    });
  const controlPlane = canonical(named.controlPlane);
  const workers = canonical(named.workers);
  const all = [...controlPlane, ...workers];
  const deadline = Math.min(ctx.deadline, Date.now() + deps.view.realMs(durationMs(req.waitTimeout)));
  await send({ message: `discovered nodes: [${all.map(goQuote).join(' ')}]` });
  for (const check of checks(deps, self, controlPlane, all)) {
    await runCheck(check, deps, ctx, deadline, send);
  }
}

/** One PollingCondition under check.Wait: the first line, then each change, until it holds or time is up. */
async function runCheck(check: Check, deps: HealthDeps, ctx: CallContext, deadline: number, send: Send): Promise<void> {
  let last = `waiting for ${check.description}: ...`;
  await send({ message: last });
  for (;;) {
    if (ctx.signal.aborted) return;
    const poll: CallContext = { ...ctx, deadline: Math.min(deadline, Date.now() + deps.view.realMs(POLL_MS)) };
    const result = await check.assert(poll);
    const line = `waiting for ${check.description}: ${result === null ? 'OK' : result}`.trim();
    if (line !== last) await send({ message: line });
    last = line;
    if (result === null || result === SKIP) return;
    if (Date.now() + deps.view.realMs(POLL_MS) > deadline) {
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, deadline - Date.now())).unref());
      throw deadlineExceeded();
    }
    await deps.view.clockSleep(POLL_MS, ctx.signal);
  }
}
