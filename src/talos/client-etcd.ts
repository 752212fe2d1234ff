/**
 * The Talos client's etcd calls (./client.ts), MachineService's Etcd* methods: the reads fanned out one call per
 * node, the acts sent once to the one node they act on.
 */
import type { TalosCalls } from './client-calls.js';
import { Code, rpcFailure } from './errors.js';
import type { EtcdMemberAlarm__Output } from './generated/machine/EtcdMemberAlarm.js';
import { memberIdDecimal, toEtcdMember, toEtcdMemberAlarm, toEtcdMemberStatus } from './mapping.js';
import type { CallOptions, EtcdMember, EtcdMemberAlarm, EtcdMemberStatus, NodeResult } from './types.js';
import { MISSING, okVoid, voidResult, withoutDefaults, type WithMetadata } from './wire.js';

const toAlarms = (m: WithMetadata & { memberAlarms: EtcdMemberAlarm__Output[] }): EtcdMemberAlarm[] =>
  m.memberAlarms.map(toEtcdMemberAlarm);

export function memberList(
  calls: TalosCalls,
  nodes: string[],
  queryLocal: boolean,
  opts: CallOptions,
): Promise<NodeResult<EtcdMember[]>[]> {
  return calls.fanOut(
    'EtcdMemberList',
    withoutDefaults({ queryLocal }),
    nodes,
    (m: WithMetadata & { members: Parameters<typeof toEtcdMember>[0][] }) => m.members.map(toEtcdMember),
    { ...opts, idempotent: true },
  );
}

export function status(calls: TalosCalls, nodes: string[], opts: CallOptions): Promise<NodeResult<EtcdMemberStatus>[]> {
  return calls.fanOut(
    'EtcdStatus',
    {},
    nodes,
    (m: WithMetadata & { memberStatus: Parameters<typeof toEtcdMemberStatus>[0] | null }) =>
      m.memberStatus ? toEtcdMemberStatus(m.memberStatus) : MISSING,
    { ...opts, idempotent: true },
  );
}

export async function leaveCluster(calls: TalosCalls, node: string, opts: CallOptions): Promise<NodeResult<void>> {
  return okVoid(await calls.actOn(node, 'EtcdLeaveCluster', {}, voidResult, opts));
}

export async function removeMemberById(
  calls: TalosCalls,
  node: string,
  memberIdHex: string,
  opts: CallOptions,
): Promise<NodeResult<void>> {
  let memberId: string;
  try {
    memberId = memberIdDecimal(memberIdHex);
  } catch (error) {
    return { node, ok: false, error: rpcFailure(Code.invalidArgument, (error as Error).message) };
  }
  return okVoid(await calls.actOn(node, 'EtcdRemoveMemberByID', { memberId }, voidResult, opts));
}

export function forfeitLeadership(
  calls: TalosCalls,
  node: string,
  opts: CallOptions,
): Promise<NodeResult<{ member: string }>> {
  const map = (m: WithMetadata & { member: string }) => ({ member: m.member });
  return calls.actOn(node, 'EtcdForfeitLeadership', {}, map, opts);
}

/**
 * EtcdAlarmList answers the alarms of the whole cluster as the node's local etcd lists them (siderolabs/talos:
 * internal/app/machined/internal/server/v1alpha1/v1alpha1_server.go@v1.12.0:2028-2052).
 */
export function alarmList(
  calls: TalosCalls,
  nodes: string[],
  opts: CallOptions,
): Promise<NodeResult<EtcdMemberAlarm[]>[]> {
  return calls.fanOut('EtcdAlarmList', {}, nodes, toAlarms, { ...opts, idempotent: true });
}

/**
 * EtcdAlarmDisarm sends etcd an empty AlarmMember (v1alpha1_server.go@v1.12.0:2058-2083), which etcd's client turns
 * into "disarm every listed alarm" (etcd-io/etcd: client/v3/maintenance.go@v3.6.16:168-181); the answer lists them.
 */
export function alarmDisarm(
  calls: TalosCalls,
  node: string,
  opts: CallOptions,
): Promise<NodeResult<EtcdMemberAlarm[]>> {
  return calls.actOn(node, 'EtcdAlarmDisarm', {}, toAlarms, opts);
}

/**
 * EtcdDefragment defragments the local member only (v1alpha1_server.go@v1.12.0:2091-2115); etcd blocks that member
 * while it runs, so give a long deadline and never run two at once.
 */
export async function defragment(calls: TalosCalls, node: string, opts: CallOptions): Promise<NodeResult<void>> {
  return okVoid(await calls.actOn(node, 'EtcdDefragment', {}, voidResult, opts));
}
