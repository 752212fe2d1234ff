/**
 * What one simulated node's etcd answers through Talos's API (EtcdStatus, EtcdMemberList, EtcdRemoveMemberByID,
 * EtcdLeaveCluster, EtcdForfeitLeadership, EtcdAlarmList/Disarm, EtcdDefragment, EtcdSnapshot), with etcd's and
 * Talos's exact texts. The other handlers and what they share (CallContext, ClusterView, waiting for etcd) are api.ts.
 */
import type { EtcdAlarm, EtcdMemberInfo } from './etcd-backend.js';
import {
  hexToDecimal,
  requireControlPlane,
  sendChunks,
  waitForEtcd,
  type CallContext,
  type ClusterView,
  type Payload,
  type Send,
} from './api.js';
import type { SimNode } from './node.js';
import { deadlineExceeded, notFound, unavailable, unknown } from './rpc-error.js';

/**
 * etcd's text of an alarm in Status.errors: the AlarmMember's compact text form, `memberID:<decimal> alarm:<TYPE> `
 * (etcd-io/etcd server/etcdserver/api/v3rpc/maintenance.go@v3.6.14:289-291, a.String(); api/etcdserverpb/rpc.pb.go
 * AlarmMember.String is proto.CompactTextString, which ends every field with a space).
 */
const alarmText = (a: EtcdAlarm): string => `memberID:${hexToDecimal(a.memberId)} alarm:${a.alarm} `;

/**
 * A learner refuses every unary call but Status and serializable reads (etcd-io/etcd
 * server/etcdserver/api/v3rpc/interceptor.go@v3.6.14:52-54, util.go:142-151; rpctypes/error.go:88): member list,
 * alarms and defragment through a learner's local client fail with etcd's text, which Talos passes on.
 */
function refuseOnLearner(node: SimNode, wrap?: string): void {
  const self = node.etcd.memberId();
  if (!node.etcd.members().some((m) => m.id === self && m.isLearner)) return;
  const text = 'etcdserver: rpc not supported for learner';
  throw unknown(wrap ? `${wrap}: ${text}` : text);
}

/** A member being defragmented answers nothing until it is done (etcd holds its backend's lock meanwhile). */
async function waitWhileDefragmenting(node: SimNode): Promise<void> {
  while (node.defragmenting) await node.defragmenting;
}

export async function etcdStatus(node: SimNode, cluster: ClusterView, ctx: CallContext): Promise<Payload[]> {
  requireControlPlane(node, 'etcd status');
  if (!node.etcdServing) return waitForEtcd(ctx, cluster);
  await waitWhileDefragmenting(node);
  await node.etcd.refresh?.();
  const status = node.etcd.status();
  const self = node.etcd.members().find((m) => m.id === status.memberId);
  // a real member knows its leader; the built-in model asks the cluster
  const leader = status.leaderId !== undefined ? status.leaderId : cluster.leaderId(node);
  const [major, minor] = status.serverVersion.split('.');
  return [
    {
      memberStatus: {
        memberId: hexToDecimal(status.memberId),
        protocolVersion: status.serverVersion,
        storageVersion: `${major}.${minor}.0`,
        dbSize: String(status.dbSize),
        dbSizeInUse: String(status.dbSizeInUse),
        leader: leader ? hexToDecimal(leader) : '0',
        raftIndex: String(status.raftIndex),
        raftTerm: String(status.raftTerm),
        raftAppliedIndex: String(status.raftAppliedIndex),
        // no leader first, then each alarm (etcd maintenance.go@v3.6.14:286-291)
        errors: [...(leader ? [] : ['etcdserver: no leader']), ...cluster.alarmsOf(node).map(alarmText)],
        isLearner: self?.isLearner ?? false,
      },
    },
  ];
}

const memberPayload = (m: EtcdMemberInfo): Payload => ({
  id: hexToDecimal(m.id),
  hostname: m.name,
  peerUrls: m.peerUrls,
  clientUrls: m.clientUrls,
  isLearner: m.isLearner,
});

export async function etcdMemberList(
  node: SimNode,
  cluster: ClusterView,
  req: { queryLocal?: boolean },
  ctx: CallContext,
): Promise<Payload[]> {
  requireControlPlane(node, 'member list');
  if (req.queryLocal) {
    if (!node.etcdServing) return waitForEtcd(ctx, cluster);
    if (!cluster.hasQuorum(node)) throw unknown('etcdserver: no leader');
    refuseOnLearner(node);
    await node.etcd.refresh?.();
    return [{ legacyMembers: [], members: node.etcd.members().map(memberPayload) }];
  }
  const member = cluster.quorumMember(node);
  if (!member) return waitForEtcd(ctx, cluster);
  await member.etcd.refresh?.();
  return [{ legacyMembers: [], members: member.etcd.members().map(memberPayload) }];
}

export async function etcdRemoveMemberById(
  node: SimNode,
  cluster: ClusterView,
  req: { memberId?: string },
  ctx: CallContext,
): Promise<Payload[]> {
  cluster.countCall('removeMember', node);
  requireControlPlane(node, 'etcd remove member');
  if (!cluster.quorumMember(node)) return waitForEtcd(ctx, cluster);
  const decimal = BigInt(req.memberId ?? '0').toString();
  const id = BigInt(decimal).toString(16).padStart(16, '0');
  const result = await cluster.removeMember(node, id);
  // Talos wraps etcd's error twice: internal/pkg/etcd/etcd.go@v1.14.0-rc.1:227-234 ("failed to remove member %d"),
  // then v1alpha1_server.go@v1.14.0-rc.1:1889-1895 (NotFound keeps that text; anything else "failed to remove member: ")
  const etcdSays = (text: string): string => `failed to remove member ${decimal}: ${text}`;
  if (result === 'not-found') throw notFound(etcdSays('etcdserver: member not found'));
  if (result === 'unhealthy') throw unknown(`failed to remove member: ${etcdSays('etcdserver: unhealthy cluster')}`);
  if (result === 'not-enough-started') {
    throw unknown(
      `failed to remove member: ${etcdSays('etcdserver: re-configuration failed due to not enough started members')}`,
    );
  }
  return [{}];
}

export async function etcdLeaveCluster(node: SimNode, cluster: ClusterView, ctx: CallContext): Promise<Payload[]> {
  cluster.countCall('leave', node);
  requireControlPlane(node, 'etcd leave');
  const id = node.etcd.memberId();
  if (!cluster.quorumMember(node) || !id || !node.etcdServing) return waitForEtcd(ctx, cluster);
  // LeaveCluster retries "unhealthy" for up to 5 minutes (internal/pkg/etcd/etcd.go@v1.14.0-rc.1:157-190): a member
  // whose removal would break the quorum of the members up now waits until the caller gives up
  const result = await cluster.removeMember(node, id);
  if (result === 'unhealthy' || result === 'not-enough-started') return waitForEtcd(ctx, cluster);
  await node.leaveEtcd();
  return [{}];
}

export async function etcdForfeitLeadership(node: SimNode, cluster: ClusterView, ctx: CallContext): Promise<Payload[]> {
  cluster.countCall('forfeitLeadership', node);
  requireControlPlane(node, 'etcd forfeit leadership');
  if (!cluster.quorumMember(node) || !node.etcdServing) return waitForEtcd(ctx, cluster);
  const members = node.etcd.members();
  if (members.length < 2) throw unknown('failed to forfeit leadership: cannot forfeit leadership, only one member');
  // Talos asks the member's status and moves the leadership to the first other member only when it leads
  // (internal/pkg/etcd/etcd.go@v1.14.0-rc.1:240-308 ForfeitLeadership); the answer names the new leader, else ''
  const leader = cluster.leaderId(node);
  if (leader !== node.etcd.memberId()) return [{ member: '' }];
  return [{ member: cluster.moveLeader(node)?.name ?? '' }];
}

/**
 * The member's local etcd for a maintenance call (alarm list, disarm, defragment): a worker is refused, an etcd that
 * does not serve keeps the call waiting until the caller's deadline (Talos's local client waits for a connection).
 */
async function localEtcdFor(
  node: SimNode,
  cluster: ClusterView,
  ctx: CallContext,
  what: string,
  wrap: string,
): Promise<void> {
  requireControlPlane(node, what);
  if (!node.etcdServing) await waitForEtcd(ctx, cluster);
  await waitWhileDefragmenting(node);
  refuseOnLearner(node, wrap);
}

/**
 * etcd sends an alarm request through raft, so without a leader it fails after etcd's request timeout (5 s plus two
 * election timeouts: etcd-io/etcd server/config/config.go@v3.6.14 ReqTimeout; errors/errors.go:26 "request timed out").
 */
async function requireLeaderForAlarms(
  node: SimNode,
  cluster: ClusterView,
  ctx: CallContext,
  wrap: string,
): Promise<void> {
  if (cluster.hasQuorum(node)) return;
  const requestTimeoutMs = 7000;
  if (ctx.deadline !== Infinity && ctx.deadline - Date.now() < cluster.realMs(requestTimeoutMs)) {
    return waitForEtcd(ctx, cluster);
  }
  await cluster.clockSleep(requestTimeoutMs, ctx.signal);
  throw unknown(`${wrap}: etcdserver: request timed out`);
}

const alarmPayload = (a: EtcdAlarm): Payload => ({ memberId: hexToDecimal(a.memberId), alarm: a.alarm });

/**
 * EtcdAlarmList: the local member's AlarmList, which answers the whole cluster's alarms (siderolabs/talos
 * internal/app/machined/internal/server/v1alpha1/v1alpha1_server.go@v1.14.0-rc.1:2092-2120).
 */
export async function etcdAlarmList(node: SimNode, cluster: ClusterView, ctx: CallContext): Promise<Payload[]> {
  await localEtcdFor(node, cluster, ctx, 'etcd alarm list', 'failed to list etcd alarms');
  await requireLeaderForAlarms(node, cluster, ctx, 'failed to list etcd alarms');
  return [{ memberAlarms: cluster.alarmsOf(node).map(alarmPayload) }];
}

/** EtcdAlarmDisarm: every alarm of the cluster disarmed; answers those (v1alpha1_server.go@v1.14.0-rc.1:2122-2150). */
export async function etcdAlarmDisarm(node: SimNode, cluster: ClusterView, ctx: CallContext): Promise<Payload[]> {
  cluster.countCall('alarmDisarm', node);
  await localEtcdFor(node, cluster, ctx, 'etcd alarm disarm', 'failed to disarm etcd alarm');
  await requireLeaderForAlarms(node, cluster, ctx, 'failed to disarm etcd alarm');
  const disarmed = await cluster.disarmAlarms(node);
  return [{ memberAlarms: disarmed.map(alarmPayload) }];
}

/** How fast the simulated etcd rewrites its database on defragment (simulated bytes per second). */
const DEFRAG_BYTES_PER_SEC = 20 * 1024 * 1024;

/**
 * EtcdDefragment: the local member only (v1alpha1_server.go@v1.14.0-rc.1:2155-2181). etcd rewrites its backend into
 * a new file without the free pages and holds the backend's lock meanwhile, so that member answers nothing until it
 * is done (etcd-io/etcd server/etcdserver/api/v3rpc/maintenance.go@v3.6.14:116-127); no quorum needed.
 */
export async function etcdDefragment(node: SimNode, cluster: ClusterView, ctx: CallContext): Promise<Payload[]> {
  cluster.countCall('defragment', node);
  await localEtcdFor(node, cluster, ctx, 'etcd defragment', 'failed to defragment etcd');
  const size = node.etcd.status().dbSize;
  const done = (async () => {
    await cluster.clockSleep(Math.max(1000, (size / DEFRAG_BYTES_PER_SEC) * 1000), new AbortController().signal);
    await node.etcd.defragment?.();
  })();
  node.defragmenting = done;
  try {
    await done;
  } finally {
    node.defragmenting = null;
  }
  return [{}];
}

export async function etcdSnapshot(node: SimNode, cluster: ClusterView, ctx: CallContext, send: Send): Promise<void> {
  requireControlPlane(node, 'etcd snapshot');
  // The local etcd client does not fail on dial: the Snapshot call waits for a ready connection for as long as the
  // caller waits (talos: v1alpha1_server.go@v1.14.1:1988-1997 NewLocalClient then client.Snapshot; etcd
  // client/v3/options.go@v3.6.4:29 WaitForReady). The stream stays open with no bytes (talos#14212), and a member that
  // starts serving meanwhile is snapshotted then.
  while (!node.etcdServing) {
    if (ctx.signal.aborted) throw deadlineExceeded();
    if (!node.reachable) throw unavailable('error reading from server: EOF');
    await cluster.clockSleep(1000, ctx.signal);
  }
  let bytes: Buffer;
  try {
    bytes = await node.etcd.snapshot();
  } catch (error) {
    throw unknown(`failed reading etcd snapshot: ${error instanceof Error ? error.message : String(error)}`);
  }
  await sendChunks(bytes, send);
}
