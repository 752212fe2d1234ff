/**
 * The Talos client's COSI reads (./client.ts): Get and List of a resource with `node` metadata (failures come back
 * as plain statuses, not in-band), and what the wizard reads that way — discovery's members, the machine
 * configuration and type, the etcd volume and the hostname.
 */
import type * as grpc from '@grpc/grpc-js';
import type { TalosCalls } from './client-calls.js';
import { loadProtos } from './client-calls.js';
import { Code, rpcFailure } from './errors.js';
import type { Resource__Output } from './generated/cosi/resource/Resource.js';
import {
  clusterMemberFromSpec,
  etcdVolumeFromSpec,
  hostnameFromSpec,
  machineStageFromSpec,
  machineTypeFromSpec,
} from './mapping.js';
import type {
  CallOptions,
  ClusterMember,
  EtcdVolumeKind,
  MachineStage,
  MachineType,
  NodeResult,
  RpcFailure,
} from './types.js';
import { nodeMetadata, type AnyMethod } from './wire.js';

/** A COSI Get with `node` metadata; failures come back as plain statuses. */
async function cosiGet(
  calls: TalosCalls,
  node: string,
  ref: { namespace: string; type: string; id: string },
  opts: CallOptions,
): Promise<{ ok: true; resource: Resource__Output } | { ok: false; error: RpcFailure }> {
  const get = (await loadProtos()).cosiStateService().Get as AnyMethod;
  try {
    const response = await calls.unary<{ resource: Resource__Output | null }>(get, ref, nodeMetadata(node), {
      ...opts,
      idempotent: true,
    });
    if (!response.resource) return { ok: false, error: rpcFailure(Code.unknown, 'the node returned no resource') };
    return { ok: true, resource: response.resource };
  } catch (error) {
    return { ok: false, error: calls.callFailure(error, opts.signal) };
  }
}

/**
 * A COSI List (a server stream of one resource per message) with `node` metadata, read to its end within one
 * deadline; failures come back as plain statuses.
 */
async function cosiList(
  calls: TalosCalls,
  node: string,
  ref: { namespace: string; type: string },
  opts: CallOptions,
): Promise<{ ok: true; resources: Resource__Output[] } | { ok: false; error: RpcFailure }> {
  const list = (await loadProtos()).cosiStateService().List as AnyMethod;
  const read = (
    client: grpc.Client,
    deadline: number,
    resolve: (r: Resource__Output[]) => void,
    reject: (e: unknown) => void,
  ) => {
    const resources: Resource__Output[] = [];
    const call = client.makeServerStreamRequest<object, { resource: Resource__Output | null }>(
      list.path,
      list.requestSerialize as (value: object) => Buffer,
      list.responseDeserialize as (bytes: Buffer) => { resource: Resource__Output | null },
      ref,
      nodeMetadata(node),
      { deadline },
    );
    call.on('data', (message: { resource: Resource__Output | null }) => {
      if (message.resource) resources.push(message.resource);
    });
    call.on('error', reject);
    call.on('end', () => resolve(resources));
    return call;
  };
  try {
    return { ok: true, resources: await calls.withDeadline({ ...opts, idempotent: true }, read) };
  } catch (error) {
    return { ok: false, error: calls.callFailure(error, opts.signal) };
  }
}

/**
 * Every machine discovery knows, workers included: COSI Members.cluster.talos.dev in namespace cluster
 * (siderolabs/talos pkg/machinery/resources/cluster/member.go@v1.13.0:30-36; the namespace cluster.go@v1.13.0:10).
 * A resource whose spec names no hostname is left out.
 */
export async function clusterMembers(
  calls: TalosCalls,
  node: string,
  opts: CallOptions,
): Promise<NodeResult<ClusterMember[]>> {
  const got = await cosiList(calls, node, { namespace: 'cluster', type: 'Members.cluster.talos.dev' }, opts);
  if (!got.ok) return { node, ok: false, error: got.error };
  const members = got.resources.flatMap((r) => {
    const member = clusterMemberFromSpec(r.metadata?.id ?? '', r.spec);
    return member ? [member] : [];
  });
  return { node, ok: true, value: members };
}

export async function machineConfig(calls: TalosCalls, node: string, opts: CallOptions): Promise<NodeResult<string>> {
  const got = await cosiGet(
    calls,
    node,
    { namespace: 'config', type: 'MachineConfigs.config.talos.dev', id: 'v1alpha1' },
    opts,
  );
  if (!got.ok) return { node, ok: false, error: got.error };
  const spec = got.resource.spec;
  const text = spec?.yamlSpec || spec?.protoSpec?.toString('utf8') || '';
  if (!text.trim()) return { node, ok: false, error: rpcFailure(Code.unknown, 'the machine configuration is empty') };
  return { node, ok: true, value: text };
}

export async function machineType(
  calls: TalosCalls,
  node: string,
  opts: CallOptions,
): Promise<NodeResult<MachineType>> {
  const got = await cosiGet(
    calls,
    node,
    { namespace: 'config', type: 'MachineTypes.config.talos.dev', id: 'machine-type' },
    opts,
  );
  if (!got.ok) return { node, ok: false, error: got.error };
  return { node, ok: true, value: machineTypeFromSpec(got.resource.spec) };
}

/** The machine's stage from COSI MachineStatuses.runtime.talos.dev runtime/machine (machine_status.go@v1.13.9:17-20). */
export async function machineStage(
  calls: TalosCalls,
  node: string,
  opts: CallOptions,
): Promise<NodeResult<MachineStage>> {
  const got = await cosiGet(
    calls,
    node,
    { namespace: 'runtime', type: 'MachineStatuses.runtime.talos.dev', id: 'machine' },
    opts,
  );
  if (!got.ok) return { node, ok: false, error: got.error };
  return { node, ok: true, value: machineStageFromSpec(got.resource.spec) };
}

export async function etcdVolume(
  calls: TalosCalls,
  node: string,
  opts: CallOptions,
): Promise<NodeResult<EtcdVolumeKind>> {
  const got = await cosiGet(
    calls,
    node,
    { namespace: 'runtime', type: 'VolumeStatuses.block.talos.dev', id: 'ETCD' },
    opts,
  );
  // Talos ≤ 1.9 has no ETCD volume: the data lives on EPHEMERAL.
  if (!got.ok) return got.error.code === Code.notFound ? { node, ok: true, value: 'ephemeral' } : { ...got, node };
  return { node, ok: true, value: etcdVolumeFromSpec(got.resource.spec) };
}

/**
 * The machine's own hostname from COSI HostnameStatuses.net.talos.dev network/hostname (siderolabs/talos:
 * pkg/machinery/resources/network/hostname_status.go@v1.14.0-rc.1:17,25-28; id hostname_spec.go@v1.14.0-rc.1:26).
 * Not apid's metadata.hostname: apid fills that with the target as the caller gave it, an address here
 * (internal/app/apid/pkg/backend/apid.go@v1.14.0-rc.1:172-176 AppendInfo sets Hostname: a.target).
 */
export async function hostname(calls: TalosCalls, node: string, opts: CallOptions): Promise<NodeResult<string>> {
  const got = await cosiGet(
    calls,
    node,
    { namespace: 'network', type: 'HostnameStatuses.net.talos.dev', id: 'hostname' },
    opts,
  );
  if (!got.ok) return { node, ok: false, error: got.error };
  const name = hostnameFromSpec(got.resource.spec);
  if (name === null)
    return { node, ok: false, error: rpcFailure(Code.unknown, 'the node answered without a hostname') };
  return { node, ok: true, value: name };
}
