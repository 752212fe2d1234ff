/**
 * The COSI state API of one simulated node (talos-api-facts §3.7): the resource types the wizard and talosctl read —
 * machine config and type, volume statuses, services, the local etcd member — with the access filter of
 * internal/app/resources/access.go, Get and List.
 */
import type { CallContext, ClusterView, Payload, Send } from './api.js';
import type { SimNode } from './node.js';
import { ProtoWriter } from '../talos/proto-wire.js';
import { timestamp } from './pb.js';
import { isAdmin } from './rbac.js';
import { notFound, permissionDenied, unimplemented } from './rpc-error.js';
import { discoveryEnabled, talosTag } from './machine-config.js';
import { encodeMachineStatus, machineStatus } from './machine-status.js';
import { MACHINE_STAGES } from '../talos/types.js';
import { createHash } from 'node:crypto';

type Sensitivity = 'NON_SENSITIVE' | 'SENSITIVE';

interface ResourceType {
  type: string;
  namespace: string;
  aliases: string[];
  sensitivity: Sensitivity;
  /** the definition's extra table columns (talosctl get prints them) */
  columns?: { name: string; jsonPath: string }[];
  resources(node: SimNode, cluster: ClusterView): CosiResource[];
}

interface CosiResource {
  id: string;
  protoSpec: Buffer;
  yamlSpec: string;
  owner: string;
}

const machineTypeEnum: Record<string, number> = { init: 1, controlplane: 2, worker: 3 };

function volumeStatus(node: SimNode, id: string): CosiResource | null {
  const talos114 = node.state.talosVersion === '1.14';
  if (id === 'ETCD') {
    if (node.state.etcdPartition) {
      const spec = new ProtoWriter()
        .uint(1, 6)
        .string(2, '/dev/sda6')
        .string(7, '/dev/sda')
        .uint(8, 6)
        .uint(9, 8_589_934_592)
        .string(10, 'xfs')
        .string(11, '/var/lib/etcd')
        .string(13, '8.6 GB')
        .finish();
      const yamlSpec =
        'phase: ready\nlocation: /dev/sda6\nparentLocation: /dev/sda\npartitionIndex: 6\nsize: 8589934592\nfilesystem: xfs\nmountLocation: /var/lib/etcd\nprettySize: 8.6 GB\ntype: partition\n';
      return { id, protoSpec: spec, yamlSpec, owner: 'block.VolumeManagerController' };
    }
    const spec = new ProtoWriter().uint(1, 6).uint(16, 3).string(19, '/var/lib').finish();
    const yamlSpec =
      'phase: ready\ntype: directory\nmountSpec:\n    targetPath: etcd\n    parentId: /var/lib\n    selinuxLabel: system_u:object_r:etcd_data_t:s0\n    uid: 60\n    gid: 60\n    recursiveRelabel: true\n';
    return { id, protoSpec: spec, yamlSpec, owner: 'block.VolumeManagerController' };
  }
  const partitions: Record<string, { index: number; fs: string; mount: string }> = {
    STATE: { index: 5, fs: 'xfs', mount: '/system/state' },
    EPHEMERAL: { index: talos114 && node.state.etcdPartition ? 7 : 6, fs: 'xfs', mount: '/var' },
  };
  const p = partitions[id];
  if (!p) return null;
  const spec = new ProtoWriter()
    .uint(1, 6)
    .string(2, `/dev/sda${p.index}`)
    .string(7, '/dev/sda')
    .uint(8, p.index)
    .string(10, p.fs)
    .string(11, p.mount)
    .finish();
  const yamlSpec = `phase: ready\nlocation: /dev/sda${p.index}\nparentLocation: /dev/sda\npartitionIndex: ${p.index}\nfilesystem: ${p.fs}\nmountLocation: ${p.mount}\ntype: partition\n`;
  return { id, protoSpec: spec, yamlSpec, owner: 'block.VolumeManagerController' };
}

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** A node's discovery id: Talos makes a random base62 one per machine; here a stable one from its address. */
function nodeIdOf(node: SimNode): string {
  const hash = createHash('sha256').update(`node-id:${node.address}`).digest();
  return Array.from(hash)
    .map((b) => BASE62[b % 62])
    .join('')
    .padEnd(43, '0')
    .slice(0, 43);
}

/**
 * A discovered cluster member (siderolabs/talos pkg/machinery/resources/cluster/member.go@v1.14.0-rc.1:27-37: nodeId
 * 1, addresses 2, hostname 3, machineType 4, operatingSystem 5, controlPlane 6 {port 1}; id = the node name, written
 * by internal/app/machined/pkg/controllers/cluster/member.go@v1.14.0-rc.1:75-90; addresses as common.NetIP messages,
 * pkg/machinery/proto/proto.go@v1.14.0-rc.1:187-197; operatingSystem "Talos (<tag>)", local_affiliate.go:234).
 */
function memberResource(member: SimNode): CosiResource {
  const type = member.state.type ?? 'worker';
  const ip = Buffer.from(member.address.split('.').map(Number));
  const os = `Talos (${talosTag(member.state.talosVersion)})`;
  const w = new ProtoWriter()
    .string(1, nodeIdOf(member))
    .message(2, new ProtoWriter().bytes(1, ip).finish())
    .string(3, member.hostname)
    .uint(4, machineTypeEnum[type] ?? 0)
    .string(5, os);
  const controlPlane = type !== 'worker';
  if (controlPlane) w.message(6, new ProtoWriter().uint(1, 6443).finish());
  const yamlSpec =
    `nodeId: ${nodeIdOf(member)}\naddresses:\n    - ${member.address}\nhostname: ${member.hostname}\n` +
    `machineType: ${type}\noperatingSystem: ${os}\n${controlPlane ? 'controlPlane:\n    port: 6443\n' : ''}`;
  return { id: member.hostname, protoSpec: w.finish(), yamlSpec, owner: 'cluster.MemberController' };
}

/**
 * MachineStatuses.runtime.talos.dev runtime/machine: the same stage and readiness machined publishes as its
 * MachineStatusEvent (machine-status.ts), kept as a resource by runtime.MachineStatusController
 * (pkg/machinery/resources/runtime/machine_status.go@v1.13.9:17-46, spec stage = 1, status = 2 { ready = 1,
 * unmetConditions = 2 { name = 1, reason = 2 } }, the event's layout), the stage named in YAML as the node names it.
 */
function machineStatusResource(node: SimNode): CosiResource {
  const status = machineStatus(node);
  const unmet = status.unmet.length
    ? status.unmet.map((u) => `\n        - name: ${u.name}\n          reason: ${u.reason}`).join('')
    : ' []';
  return {
    id: 'machine',
    protoSpec: encodeMachineStatus(status),
    yamlSpec: `stage: ${MACHINE_STAGES[status.stage] ?? 'unknown'}\nstatus:\n    ready: ${status.ready}\n    unmetConditions:${unmet}\n`,
    owner: 'runtime.MachineStatusController',
  };
}

const RESOURCE_TYPES: ResourceType[] = [
  {
    type: 'MachineConfigs.config.talos.dev',
    namespace: 'config',
    aliases: ['machineconfigs', 'machineconfigs.config', 'machineconfigs.config.talos', 'machineconfig', 'mc', 'mcs'],
    sensitivity: 'SENSITIVE',
    resources: (node) => {
      const config = node.state.config;
      if (!config || node.inMaintenance) return [];
      const spec = new ProtoWriter().bytes(1, Buffer.from(config)).finish();
      const list = [{ id: 'v1alpha1', protoSpec: spec, yamlSpec: config, owner: '' }];
      const persistent = node.state.stagedConfig ?? config;
      list.push({
        id: 'persistent',
        protoSpec: new ProtoWriter().bytes(1, Buffer.from(persistent)).finish(),
        yamlSpec: persistent,
        owner: '',
      });
      return list;
    },
  },
  {
    type: 'MachineTypes.config.talos.dev',
    namespace: 'config',
    aliases: ['machinetypes', 'machinetypes.config', 'machinetypes.config.talos', 'machinetype', 'mt', 'mts'],
    sensitivity: 'NON_SENSITIVE',
    resources: (node) => {
      const type = node.state.type ?? 'unknown';
      const spec = new ProtoWriter().uint(1, machineTypeEnum[type] ?? 0).finish();
      return [{ id: 'machine-type', protoSpec: spec, yamlSpec: `${type}\n`, owner: 'config.MachineTypeController' }];
    },
  },
  {
    type: 'VolumeStatuses.block.talos.dev',
    namespace: 'runtime',
    aliases: ['volumestatuses', 'volumestatus', 'vs', 'volumestatuses.block', 'volumestatuses.block.talos'],
    sensitivity: 'NON_SENSITIVE',
    resources: (node) =>
      node.inMaintenance ? [] : ['EPHEMERAL', 'ETCD', 'STATE'].flatMap((id) => volumeStatus(node, id) ?? []),
  },
  {
    // aliases and columns as cosi's ResourceDefinitionSpec.Fill makes them from the type and machine_status.go's
    // definition (cosi-project/runtime pkg/resource/meta/spec/resource_definition.go; machine_status.go@v1.13.9:56-76)
    type: 'MachineStatuses.runtime.talos.dev',
    namespace: 'runtime',
    aliases: ['machinestatuses', 'machinestatuses.runtime', 'machinestatuses.runtime.talos', 'machinestatus', 'ms'],
    sensitivity: 'NON_SENSITIVE',
    columns: [
      { name: 'Stage', jsonPath: '{.stage}' },
      { name: 'Ready', jsonPath: '{.status.ready}' },
    ],
    resources: (node) => [machineStatusResource(node)],
  },
  {
    type: 'Services.v1alpha1.talos.dev',
    namespace: 'runtime',
    aliases: ['services', 'service', 'svc', 'services.v1alpha1', 'services.v1alpha1.talos'],
    sensitivity: 'NON_SENSITIVE',
    resources: (node) =>
      Object.values(node.state.services)
        .filter((s) => s.state === 'Running')
        .map((s) => ({
          id: s.id,
          protoSpec: new ProtoWriter().bool(1, true).bool(2, s.health.healthy).bool(3, s.health.unknown).finish(),
          yamlSpec: `running: true\nhealthy: ${s.health.healthy}\nunknown: ${s.health.unknown}\n`,
          owner: 'v1alpha1.ServiceController',
        })),
  },
  {
    // The machine's own hostname, kept by Talos whether or not etcd serves (siderolabs/talos:
    // pkg/machinery/resources/network/hostname_status.go@v1.14.0-rc.1:17,26-27 type and spec fields hostname = 1,
    // domainname = 2; id "hostname" from hostname_spec.go@v1.14.0-rc.1:26, namespace "network" from
    // network.go@v1.14.0-rc.1:22; written by internal/app/machined/pkg/controllers/network/hostname_spec.go@v1.14.0-rc.1:95).
    type: 'HostnameStatuses.net.talos.dev',
    namespace: 'network',
    aliases: ['hostname', 'hostnamestatuses', 'hostnamestatus', 'hostnamestatuses.net', 'hostnamestatuses.net.talos'],
    sensitivity: 'NON_SENSITIVE',
    resources: (node) =>
      node.inMaintenance || !node.hostname
        ? []
        : [
            {
              id: 'hostname',
              protoSpec: new ProtoWriter().string(1, node.hostname).finish(),
              yamlSpec: `hostname: ${node.hostname}\ndomainname: ""\n`,
              owner: 'network.HostnameSpecController',
            },
          ],
  },
  {
    // Discovery: every configured machine of the cluster, workers included, on every configured node (an affiliate
    // stays listed while it is down, until its discovery record expires). How the wizard finds the workers. With
    // discovery off in the node's config it pulls no affiliates, so its MemberController lists nothing
    // (siderolabs/talos internal/app/machined/pkg/controllers/cluster/member.go@v1.13.0:61-110 builds members from
    // affiliates; discovery_service.go@v1.13.0:165-171 and kubernetes_pull.go@v1.13.0:106-108 stop when it is off).
    type: 'Members.cluster.talos.dev',
    namespace: 'cluster',
    aliases: ['members', 'member', 'members.cluster', 'members.cluster.talos'],
    sensitivity: 'NON_SENSITIVE',
    resources: (node, cluster) =>
      node.inMaintenance || !node.state.config || !discoveryEnabled(node.state.config)
        ? []
        : cluster.discoveredMembers().map(memberResource),
  },
  {
    type: 'EtcdMembers.etcd.talos.dev',
    namespace: 'etcd',
    aliases: ['etcdmembers', 'etcdmember', 'etcdmembers.etcd', 'etcdmembers.etcd.talos'],
    sensitivity: 'NON_SENSITIVE',
    resources: (node, cluster) => {
      const id = node.etcd.memberId();
      const healthy = node.state.services.etcd?.health.healthy && cluster.hasQuorum(node);
      if (!id || !healthy) return [];
      return [
        {
          id: 'local',
          protoSpec: new ProtoWriter().string(1, id).finish(),
          yamlSpec: `memberID: ${id}\n`,
          owner: 'etcd.MemberController',
        },
      ];
    },
  },
];

const RD_TYPE = 'ResourceDefinitions.meta.cosi.dev';
const NAMESPACES = new Set(['config', 'runtime', 'etcd', 'meta', 'network', 'secrets', 'cluster', 'k8s', 'v1alpha1']);

/**
 * The display type: the singular of the type's first part, as cosi's ResourceDefinitionSpec.Fill makes it with
 * go-pluralize (cosi-project/runtime pkg/resource/meta/spec/resource_definition.go), for this simulator's types
 * ("VolumeStatuses" → "VolumeStatus", "MachineTypes" → "MachineType"). talosctl get prints it as TYPE
 * (cmd/talosctl/cmd/talos/output/table.go@v1.13.9:49,83).
 */
function displayType(type: string): string {
  const plural = type.split('.')[0] ?? type;
  return plural.endsWith('uses') ? plural.slice(0, -2) : plural.replace(/s$/, '');
}

function resourceDefinitions(): CosiResource[] {
  return [...RESOURCE_TYPES].map((t) => {
    const w = new ProtoWriter().string(1, t.type).string(2, displayType(t.type)).string(3, t.namespace);
    for (const alias of t.aliases) w.string(5, alias);
    for (const c of t.columns ?? []) w.message(6, new ProtoWriter().string(1, c.name).string(2, c.jsonPath).finish());
    w.uint(7, t.sensitivity === 'SENSITIVE' ? 1 : 0);
    const columns = (t.columns ?? []).map((c) => `    - name: ${c.name}\n      jsonPath: '${c.jsonPath}'\n`).join('');
    const yamlSpec = `resourceType: ${t.type}\ndisplayType: ${displayType(t.type)}\ndefaultNamespace: ${t.namespace}\nallAliases:\n${t.aliases.map((a) => `    - ${a}`).join('\n')}\n${columns ? `printColumns:\n${columns}` : ''}sensitivity: ${t.sensitivity === 'SENSITIVE' ? 1 : 0}\n`;
    return { id: t.type.toLowerCase(), protoSpec: w.finish(), yamlSpec, owner: '' };
  });
}

function resourceMessage(namespace: string, type: string, r: CosiResource, version = 1): Payload {
  const now = timestamp(Date.now());
  return {
    metadata: {
      namespace,
      type,
      id: r.id,
      version: String(version),
      owner: r.owner,
      phase: 'running',
      created: now,
      updated: now,
      finalizers: [],
      labels: {},
      annotations: {},
    },
    spec: { protoSpec: r.protoSpec, yamlSpec: r.yamlSpec },
  };
}

/** The access filter of internal/app/resources/access.go, then the lookup. */
function cosiLookup(
  node: SimNode,
  cluster: ClusterView,
  namespace: string,
  type: string,
  roles: ReadonlySet<string>,
): { namespace: string; type: string; resources: CosiResource[] } {
  if (!NAMESPACES.has(namespace)) throw permissionDenied(`namespace "${namespace}" is not supported`);
  if (type === RD_TYPE) return { namespace, type, resources: namespace === 'meta' ? resourceDefinitions() : [] };
  const rt = RESOURCE_TYPES.find((t) => t.type === type);
  if (!rt) throw permissionDenied(`resource type "${type}" is not supported`);
  // Sensitive types need os:admin; in maintenance mode a LAN client only has os:reader.
  if (rt.sensitivity === 'SENSITIVE' && (node.inMaintenance || !isAdmin(roles)))
    throw permissionDenied('not authorized');
  return { namespace, type, resources: rt.namespace === namespace ? rt.resources(node, cluster) : [] };
}

export function cosiGet(
  node: SimNode,
  cluster: ClusterView,
  req: { namespace?: string; type?: string; id?: string },
  ctx: CallContext,
): Payload {
  const namespace = req.namespace ?? '';
  const type = req.type ?? '';
  const found = cosiLookup(node, cluster, namespace, type, ctx.roles);
  const resource = found.resources.find((r) => r.id === req.id);
  if (!resource) throw notFound(`resource ${type}(${namespace}/${req.id ?? ''}@undefined) doesn't exist`);
  return { resource: resourceMessage(namespace, type, resource) };
}

export async function cosiList(
  node: SimNode,
  cluster: ClusterView,
  req: { namespace?: string; type?: string },
  ctx: CallContext,
  send: Send,
): Promise<void> {
  const found = cosiLookup(node, cluster, req.namespace ?? '', req.type ?? '', ctx.roles);
  for (const r of found.resources) await send({ resource: resourceMessage(found.namespace, found.type, r) });
}

interface WatchRequest {
  namespace?: string;
  type?: string;
  id?: string | null;
  options?: { bootstrapContents?: boolean; aggregated?: boolean; labelQuery?: unknown[] } | null;
  apiVersion?: number;
}

/** How often a watch looks at the node's state again (real ms): the simulator's resources are computed, not stored. */
const WATCH_POLL_MS = 100;

interface Watched {
  resource: CosiResource;
  version: number;
}

/**
 * A tombstone as the in-memory state makes one: metadata only, version undefined, no spec (cosi-project/runtime
 * pkg/resource/protobuf/resource.go@v1.14.1:152-157), which Marshal still writes as an empty Spec message (:98-101).
 */
function tombstone(namespace: string, type: string, id: string): Payload {
  return { metadata: { namespace, type, id, version: 'undefined', phase: 'running' }, spec: {} };
}

/**
 * Watch as the COSI server answers it (cosi-project/runtime pkg/state/protobuf/server/server.go@v1.14.1:266-390):
 * the access filter as for List, an empty response once the watch is set up, then events. A kind watch with
 * bootstrap contents sends every resource as CREATED then BOOTSTRAPPED (pkg/state/impl/inmem/collection.go@v1.14.1
 * :520-560; BOOTSTRAPPED only to clients of API version 1+, server.go mapEvent); a watch of one id starts with the
 * resource as CREATED, or a DESTROYED tombstone when it does not exist (collection.go:345-355). Changes of the node's
 * state then arrive as CREATED, UPDATED (with the old resource) and DESTROYED, one per response unless aggregated.
 */
export async function cosiWatch(
  node: SimNode,
  cluster: ClusterView,
  req: WatchRequest,
  ctx: CallContext,
  send: Send,
): Promise<void> {
  const single = req.id ?? null;
  // a watch of one id takes neither bootstrap contents nor a label query: refused before the state is asked
  // (server.go@v1.14.1:323-329)
  if (single !== null && req.options?.bootstrapContents) {
    throw unimplemented('bootstrap contents is not implemented for resource watch');
  }
  if (single !== null && (req.options?.labelQuery?.length ?? 0) > 0) {
    throw unimplemented('label query is not implemented for resource watch');
  }
  const found = cosiLookup(node, cluster, req.namespace ?? '', req.type ?? '', ctx.roles);
  const { namespace, type } = found;
  const aggregated = Boolean(req.options?.aggregated);
  const current = (): CosiResource[] => {
    const all = cosiLookup(node, cluster, namespace, type, ctx.roles).resources;
    return single === null ? all : all.filter((r) => r.id === single);
  };
  const emit = async (events: Payload[]): Promise<void> => {
    if (events.length === 0) return;
    if (aggregated) await send({ event: events });
    else for (const event of events) await send({ event: [event] });
  };
  await send({ event: [] });
  const known = new Map<string, Watched>();
  for (const r of found.resources.filter((x) => single === null || x.id === single)) {
    known.set(r.id, { resource: r, version: 1 });
  }
  const initial: Payload[] = [];
  if (single !== null) {
    const w = known.get(single);
    initial.push(
      w
        ? { resource: resourceMessage(namespace, type, w.resource), eventType: 'CREATED' }
        : { resource: tombstone(namespace, type, single), eventType: 'DESTROYED' },
    );
  } else if (req.options?.bootstrapContents) {
    for (const w of known.values())
      initial.push({ resource: resourceMessage(namespace, type, w.resource), eventType: 'CREATED' });
    if ((req.apiVersion ?? 0) >= 1)
      initial.push({ resource: tombstone(namespace, type, ''), eventType: 'BOOTSTRAPPED' });
  }
  await emit(initial);
  while (!ctx.signal.aborted && node.reachable) {
    await new Promise((resolve) => setTimeout(resolve, WATCH_POLL_MS));
    if (ctx.signal.aborted || !node.reachable) return;
    await emit(watchChanges(namespace, type, known, current()));
  }
}

/** The events that turn the known resources into the current ones (the known map is updated). */
function watchChanges(namespace: string, type: string, known: Map<string, Watched>, now: CosiResource[]): Payload[] {
  const events: Payload[] = [];
  const seen = new Set<string>();
  for (const r of now) {
    seen.add(r.id);
    const before = known.get(r.id);
    if (!before) {
      known.set(r.id, { resource: r, version: 1 });
      events.push({ resource: resourceMessage(namespace, type, r), eventType: 'CREATED' });
    } else if (before.resource.yamlSpec !== r.yamlSpec) {
      const next = { resource: r, version: before.version + 1 };
      known.set(r.id, next);
      events.push({
        resource: resourceMessage(namespace, type, r, next.version),
        old: resourceMessage(namespace, type, before.resource, before.version),
        eventType: 'UPDATED',
      });
    }
  }
  for (const [id, w] of [...known]) {
    if (seen.has(id)) continue;
    known.delete(id);
    events.push({ resource: resourceMessage(namespace, type, w.resource, w.version), eventType: 'DESTROYED' });
  }
  return events;
}
