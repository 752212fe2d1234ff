/**
 * A simulated node's saved state (NodeState, its services and events) and what it asks of the cluster around it
 * (ClusterHooks); the etcd service texts the node and a fresh cluster share.
 */
import type { SimClock } from './clock.js';
import type { EtcdMemberInfo } from './etcd-backend.js';
import type { MachineTypeName } from './machine-config.js';
import type { SimNode } from './node.js';
import type { Scenario } from './scenario.js';
import type { TalosVersion } from './versions.js';

export type MachineMode = 'running' | 'maintenance' | 'rebooting' | 'resetting' | 'off';

export interface ServiceEventRecord {
  msg: string;
  state: string;
  /** ms since the epoch */
  ts: number;
}

export interface ServiceRecord {
  id: string;
  state: string;
  events: ServiceEventRecord[];
  health: { unknown: boolean; healthy: boolean; lastMessage: string; lastChange: number };
}

export interface NodeState {
  address: string;
  hostname: string;
  /** null on a blank machine (no configuration yet). */
  type: MachineTypeName | null;
  mode: MachineMode;
  config: string | null;
  stagedConfig: string | null;
  talosVersion: TalosVersion;
  etcdPartition: boolean;
  ephemeralMounted: boolean;
  timeSynced: boolean;
  /** The local etcd serves clients (it registered with a quorum since it last started). */
  etcdServing: boolean;
  /** The etcd process exits at once (damaged data): the restart loop of Talos's runner. */
  etcdCrashes: boolean;
  /**
   * This member was removed from the cluster while its data stayed: etcd stops itself ("the member has been
   * permanently removed from the cluster") and exits 0, and Talos restarts it forever. Cleared by a wipe.
   */
  etcdRemoved?: boolean;
  /** Powered off by a scenario's `down` fault: the machine boots by itself at this time (ms since the epoch). */
  powerOnAt?: number | null;
  bootstrap: { recover: boolean; skipHashCheck: boolean } | null;
  /**
   * A reset in progress (so a restored simulator can finish it). `actorId`: the id Reset answered with, which the
   * sequence's events carry; `graceful`: as Reset asked (both absent in states saved before they were kept).
   */
  pendingReset: { labels: string[]; wholeDisk: boolean; reboot: boolean; actorId?: string; graceful?: boolean } | null;
  /**
   * The events the node's sequences published in boot `bootId` (machine-events.ts): machined's events ring, which the
   * node keeps until it boots again. Absent in states saved before it was kept.
   */
  runtimeEvents?: { bootId: string; events: RuntimeEventRecord[] };
  bootId: string;
  /**
   * When the node last booted (ms since the epoch, as the events' times; absent: not since the scenario began). Its
   * events ring starts there: the Events stream replays no service event from before.
   */
  bootedAt?: number;
  /**
   * How far the node's clock is off this machine's (ms, negative: behind; absent: 0). The node dates what it says
   * by its own clock (ServiceList's event times, Time's localtime); the simulator keeps its records in host time.
   */
  clockOffsetMs?: number;
  services: Record<string, ServiceRecord>;
  /** Machine events for the Events RPC (service state changes), newest last. */
  /** `health`: the service's health when the event was published (older saved states have none: unknown). */
  eventLog: {
    id: string;
    service: string;
    state: string;
    msg: string;
    ts: number;
    health?: { unknown: boolean; healthy: boolean; lastMessage: string; lastChange: number };
  }[];
}

/**
 * One SequenceEvent, PhaseEvent or TaskEvent as the node published it (api/machine/machine.proto@v1.13.9:196-223):
 * `name` is the sequence, phase or task, `action` the message's Action value, `error` a SequenceEvent's
 * common.Error message.
 */
export interface RuntimeEventRecord {
  id: string;
  actorId: string;
  kind: 'SequenceEvent' | 'PhaseEvent' | 'TaskEvent';
  name: string;
  action: number;
  error?: string;
  /** The error's common.Error code: absent for FATAL (0), 1 LOCKED (api/common/common.proto@v1.13.9:47-51). */
  errorCode?: number;
  /** When it was published, ms since the epoch (absent in states saved before it was kept). */
  ts?: number;
  /** The id of the last service event published before this one (the stream keeps their order); absent: none. */
  after?: string;
}

export interface ClusterHooks {
  clock: SimClock;
  timing: Scenario['timing'];
  /** Something changed about etcd (a member started, stopped, joined): re-evaluate quorum and joins everywhere. */
  kick(): void;
  /** A node whose etcd serves a cluster with quorum (to join), or null. */
  joinSource(joiner: SimNode): SimNode | null;
  /** Replicates a membership change to every member of that cluster. */
  replicateMembership(source: SimNode): Promise<void>;
  /** One membership change applied to every member's own list of that cluster (the built-in model). */
  changeMembership(clusterId: string | null, change: (members: EtcdMemberInfo[]) => EtcdMemberInfo[]): Promise<void>;
  /** etcd's MemberAddAsLearner through a member with quorum, as Talos's etcd service calls it; the new member's id. */
  addLearner(joiner: SimNode, source: SimNode): Promise<string>;
  /** Takes the cluster's one learner slot (false: another member is still a learner). */
  acquireJoin(node: SimNode): boolean;
  /** Gives the learner slot back (promoted, or the join ended otherwise). */
  releaseJoin(node: SimNode): void;
  /** Called after a successful restore (for the drill's data report). */
  onRestored(node: SimNode, snapshotFile: string): Promise<void>;
  /** The node changed between normal and maintenance mode: its listener needs the other TLS setup. */
  relisten(node: SimNode): Promise<void>;
  /** The machine went down: stop listening on its address until it boots again. */
  offline(node: SimNode): void;
}

/**
 * The last message of a failed etcd health check, derived from upstream code (Talos prints no fixed text): the
 * check (siderolabs/talos internal/app/machined/pkg/system/services/etcd.go@v1.13.0:240-252 HealthFunc) is
 * etcd.NewLocalClient then ValidateQuorum, a Get of "health" (internal/pkg/etcd/etcd.go@v1.13.0:124-139), run under
 * the check's 15 s timeout
 * (pkg/system/health/check.go stores err.Error()); without a leader, or with etcd not serving clients, both end in
 * the context's "context deadline exceeded". The event reads "Health check failed: <message>"
 * (pkg/system/service_runner.go healthUpdate). A fresh client that cannot dial would say "error building etcd
 * client: context deadline exceeded"; the service keeps its client across checks, so the bare text is the usual one.
 */
export const ETCD_UNHEALTHY = 'context deadline exceeded';

/**
 * The first Waiting text of the etcd runner: its volumes, its dependencies, then its conditions, in that order
 * (talos: internal/app/machined/pkg/system/services/etcd.go@v1.14.1:176-195). Older releases as the simulator had them.
 */
export function etcdFirstWaitingText(version: string): string {
  if (version !== '1.14') return 'Waiting for service "cri" to be "up", time sync, network';
  return 'Waiting for volume "/var/lib" to be mounted, volume "ETCD" to be mounted, service "cri" to be "up", time sync, network, etcd spec';
}
