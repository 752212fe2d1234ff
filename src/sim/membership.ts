/**
 * Quorum, membership and alarms across a simulated cluster's etcd members: who votes, who leads, who may join or be
 * removed (etcd's one learner slot and its strict reconfiguration check), the quota and NOSPACE, and kick(), which
 * re-evaluates serving, health and joins on every node after a change. The Simulator (cluster.ts) builds on it.
 */
import type { SimClock } from './clock.js';
import { peerUrl, randomMemberId, type EtcdAlarm, type EtcdMemberInfo } from './etcd-backend.js';
import { discoveryEnabled } from './machine-config.js';
import type { SimNode } from './node.js';
import type { RealEtcdFleet } from './real-etcd-fleet.js';
import { ETCD_DEFAULT_QUOTA_BYTES, type Scenario } from './scenario.js';
import type { EtcdWriteResult } from './types.js';

/** How often the simulated kube-apiservers write (lease renewals come every few seconds on a live cluster). */
const API_SERVER_WRITE_MS = 5_000;

export abstract class ClusterMembership {
  abstract readonly def: Scenario;
  abstract readonly clock: SimClock;
  readonly nodesList: SimNode[] = [];
  /** With `etcd: 'real'`: the etcd processes of this simulator. */
  fleet: RealEtcdFleet | null = null;
  protected stopped = false;
  private kicking = false;
  private kickAgain = false;

  // ---- quorum and membership ----

  /**
   * The membership as the member with the highest raft index sees it (the first such in node order). One pass with
   * one status() per node: this runs several times per RPC and per node in kick(), and a sort with status() in its
   * comparator was a large part of a 200-node simulator's time (bench/fanout.mjs).
   */
  private clusterMembers(clusterId: string): EtcdMemberInfo[] {
    let best: SimNode | null = null;
    let bestIndex = -Infinity;
    for (const node of this.nodesList) {
      if (node.etcd.clusterId() !== clusterId) continue;
      const index = node.etcd.status().raftIndex;
      if (index > bestIndex) {
        best = node;
        bestIndex = index;
      }
    }
    return best ? best.etcd.members() : [];
  }

  /** The running, reachable members of a cluster (its voters) and, when more than half of its members, quorum. */
  private quorumState(clusterId: string | null): { voters: SimNode[]; quorum: boolean } {
    if (!clusterId) return { voters: [], quorum: false };
    // learners do not vote (etcd raft): quorum is a majority of the voting members
    const members = this.clusterMembers(clusterId).filter((m) => !m.isLearner);
    const ids = new Set(members.map((m) => m.id));
    const voters = this.nodesList.filter(
      (n) =>
        n.etcd.clusterId() === clusterId &&
        n.state.mode === 'running' &&
        n.etcd.isRunning() &&
        n.reachable &&
        ids.has(n.etcd.memberId() ?? ''),
    );
    return { voters, quorum: members.length > 0 && voters.length > members.length / 2 };
  }

  private clusterHasQuorum(clusterId: string | null): boolean {
    return this.quorumState(clusterId).quorum;
  }

  hasQuorum(node: SimNode): boolean {
    return this.clusterHasQuorum(node.etcd.clusterId());
  }

  leaderId(node: SimNode): string | null {
    const { voters, quorum } = this.quorumState(node.etcd.clusterId());
    if (!quorum) return null;
    // a leader that was moved keeps leading while it is a voter; otherwise the first voter leads (a new election)
    const moved = this.movedLeader.get(node.etcd.clusterId() ?? '');
    if (moved && voters.some((v) => v.etcd.memberId() === moved)) return moved;
    return voters[0]?.etcd.memberId() ?? null;
  }

  /**
   * The machines that publish an affiliate: configured, with discovery on in their config (Talos writes the local
   * affiliate only then: siderolabs/talos internal/app/machined/pkg/controllers/cluster/local_affiliate.go@v1.13.0).
   */
  discoveredMembers(): SimNode[] {
    return this.nodesList.filter(
      (n) => n.state.config !== null && n.state.type !== null && discoveryEnabled(n.state.config),
    );
  }

  /** Leaders moved by MoveLeader (EtcdForfeitLeadership), by cluster id. */
  private readonly movedLeader = new Map<string, string>();

  /** etcd's MoveLeader: leadership goes to the first other voter; its member, or null when there is none. */
  moveLeader(node: SimNode): EtcdMemberInfo | null {
    const clusterId = node.etcd.clusterId();
    const { voters } = this.quorumState(clusterId);
    const next = voters.find((v) => v !== node && v.etcd.memberId());
    const nextId = next?.etcd.memberId();
    if (!clusterId || !nextId) return null;
    this.movedLeader.set(clusterId, nextId);
    return node.etcd.members().find((m) => m.id === nextId) ?? null;
  }

  quorumMember(node: SimNode): SimNode | null {
    const own = node.etcd.clusterId();
    const ids = own
      ? [own]
      : [...new Set(this.nodesList.map((n) => n.etcd.clusterId()).filter((c): c is string => c !== null))];
    for (const id of ids) {
      const { voters, quorum } = this.quorumState(id);
      if (!quorum) continue;
      const member = voters.find((n) => n.etcdServing);
      if (member) return member;
    }
    return null;
  }

  joinSource(joiner: SimNode): SimNode | null {
    return this.quorumMember(joiner);
  }

  /** The node whose learner is not promoted yet: etcd allows one learner at a time. */
  private learner: SimNode | null = null;

  acquireJoin(node: SimNode): boolean {
    if (this.learner && this.learner !== node) return false;
    // a learner of another machine still listed (never started, or not promoted yet): etcd refuses a second one
    // ("too many learner members in cluster", etcd-io/etcd api/v3rpc/rpctypes/error.go@v3.6.14:49)
    // (the built-in model's membership; real members answer for themselves, with their own peer ports)
    const source = this.fleet ? null : this.quorumMember(node);
    const own = peerUrl(node.address);
    if (source?.etcd.members().some((m) => m.isLearner && !m.peerUrls.includes(own))) return false;
    this.learner = node;
    return true;
  }

  /**
   * MemberAddAsLearner as Talos's etcd service sends it (siderolabs/talos
   * internal/app/machined/pkg/system/services/etcd.go@v1.14.0-rc.1:280-333): a member with the joiner's hostname is
   * removed first; a learner with the joiner's peer URL and no name is the joiner's own earlier try, reused; else a
   * new learner with no name and no client URLs (they come when its etcd starts) joins the membership.
   */
  async addLearner(joiner: SimNode, source: SimNode): Promise<string> {
    const url = peerUrl(joiner.address);
    const members = source.etcd.members();
    for (const old of members.filter((m) => m.name === joiner.hostname)) this.markRemoved(old.id, joiner);
    const earlier = members.find((m) => m.isLearner && m.name === '' && m.peerUrls.includes(url));
    const id = earlier?.id ?? randomMemberId();
    await this.changeMembership(source.etcd.clusterId(), (list) => {
      const next = list.filter((m) => m.name !== joiner.hostname);
      if (next.some((m) => m.id === id)) return next;
      return [...next, { id, name: '', peerUrls: [url], clientUrls: [], isLearner: true }];
    });
    return id;
  }

  /**
   * One membership change, applied to every member's own list in the same tick, as raft applies one log entry on
   * each member. Copying one member's whole list to the others instead let a copy taken before a newer change land
   * after it (a learner's name lost under load, the member then promoted without a name).
   */
  async changeMembership(
    clusterId: string | null,
    change: (members: EtcdMemberInfo[]) => EtcdMemberInfo[],
  ): Promise<void> {
    if (!clusterId) return;
    await this.onEach(
      this.nodesList.filter((n) => n.etcd.clusterId() === clusterId),
      (n) => n.etcd.applyMembership(change(n.etcd.members())),
    );
  }

  /** The machine that held a removed member id (other than `except`) learns it was removed, if its etcd runs. */
  private markRemoved(memberId: string, except?: SimNode): void {
    for (const n of this.nodesList) {
      if (n !== except && n.etcd.memberId() === memberId) n.removedFromCluster();
    }
  }

  releaseJoin(node: SimNode): void {
    if (this.learner === node) this.learner = null;
    this.kick();
  }

  /**
   * Copies the source's membership to every other member. All members change in the same tick (each applyMembership
   * changes its member in memory before it writes the file): a replication awaited node by node let a slower, older
   * one overwrite a newer learner's entry on the nodes it had not reached yet.
   */
  async replicateMembership(source: SimNode): Promise<void> {
    const id = source.etcd.clusterId();
    const members = source.etcd.members();
    await this.onEach(
      this.nodesList.filter((node) => node !== source && id && node.etcd.clusterId() === id),
      (node) => node.etcd.applyMembership(members),
    );
  }

  /**
   * Runs a change on several members: the built-in model in one tick (see replicateMembership); real members one at a
   * time, as before, since each may call its etcd (a member removal through each would race).
   */
  private async onEach(nodes: SimNode[], change: (node: SimNode) => Promise<void> | undefined): Promise<void> {
    if (this.fleet) {
      for (const node of nodes) await change(node);
      return;
    }
    await Promise.all(nodes.map(change));
  }

  /**
   * etcd's MemberRemove through a member with quorum. Returns 'not-found' for an id etcd does not list, or etcd's
   * refusal under its strict reconfiguration check (on by default; etcd-io/etcd
   * server/etcdserver/server.go@v3.6.14:1613-1652 mayRemoveMember): removing a voting member must leave enough
   * started voting members for a quorum, and must not break the quorum of the members that are up now.
   */
  async removeMember(
    node: SimNode,
    memberId: string,
  ): Promise<'removed' | 'not-found' | 'unhealthy' | 'not-enough-started'> {
    const source = this.quorumMember(node);
    if (!source) return 'not-found';
    const members = source.etcd.members();
    const member = members.find((m) => m.id === memberId);
    if (!member) return 'not-found';
    const refusal = this.mayRemoveMember(source, members, member);
    if (refusal) return refusal;
    const id = source.etcd.clusterId();
    if (this.fleet) {
      // real members: each is told the list without the member (RealEtcd removes it through its etcd)
      const remaining = members.filter((m) => m.id !== memberId);
      await this.onEach(
        this.nodesList.filter((n) => id && n.etcd.clusterId() === id && n.etcd.memberId() !== memberId),
        (n) => n.etcd.applyMembership(remaining),
      );
    } else {
      await this.changeMembership(id, (list) => list.filter((m) => m.id !== memberId));
    }
    this.markRemoved(memberId);
    // a learner that goes frees the one learner slot
    if (this.learner && member.peerUrls.includes(peerUrl(this.learner.address))) this.learner = null;
    this.kick();
    return 'removed';
  }

  private mayRemoveMember(
    source: SimNode,
    members: EtcdMemberInfo[],
    member: EtcdMemberInfo,
  ): 'unhealthy' | 'not-enough-started' | null {
    if (member.isLearner) return null;
    const voting = members.filter((m) => !m.isLearner);
    // IsReadyToRemoveVotingMember: started (named) voting members left must reach the new quorum
    const startedAfter = voting.filter((m) => m.id !== member.id && m.name !== '').length;
    if (startedAfter < Math.floor((voting.length - 1) / 2) + 1) return 'not-enough-started';
    const { voters } = this.quorumState(source.etcd.clusterId());
    const active = new Set(voters.map((n) => n.etcd.memberId()));
    // a member that is down is not part of the active quorum: removing it is safe
    if (!active.has(member.id)) return null;
    if (active.size - 1 < 1 + Math.floor((voting.length - 1) / 2)) return 'unhealthy';
    return null;
  }

  // ---- alarms and the quota (NOSPACE) ----

  /** etcd's --quota-backend-bytes on the members (the scenario's, else etcd's default). */
  quotaBytes(): number {
    return this.def.etcdQuotaBytes ?? ETCD_DEFAULT_QUOTA_BYTES;
  }

  /** Writes an alarm change to every member of the cluster (etcd applies it through raft on each). */
  private async replicateAlarms(clusterId: string | null, alarms: EtcdAlarm[]): Promise<void> {
    if (!clusterId) return;
    await this.onEach(
      this.nodesList.filter((n) => n.etcd.clusterId() === clusterId),
      (n) => n.etcd.setAlarms?.(alarms),
    );
  }

  /** The cluster's alarms as the node's member holds them. */
  alarmsOf(node: SimNode): EtcdAlarm[] {
    return node.etcd.alarms?.() ?? [];
  }

  /**
   * AlarmDisarm with an empty member: etcd's client lists the alarms and disarms each (etcd-io/etcd
   * client/v3/maintenance.go@v3.6.14:161-189); the answer is the alarms disarmed. Needs quorum (through raft).
   */
  async disarmAlarms(node: SimNode): Promise<EtcdAlarm[]> {
    const alarms = this.alarmsOf(node);
    await this.replicateAlarms(node.etcd.clusterId(), []);
    this.kick(); // a health check that failed on CORRUPT passes again
    return alarms;
  }

  /**
   * One write of the kube-apiserver through a member (Talos points each apiserver at its local etcd). etcd checks the
   * quota first: over it, the member raises NOSPACE for itself through raft and refuses (etcd-io/etcd
   * server/etcdserver/api/v3rpc/quota.go@v3.6.14:37-50; server/storage/quota.go: Size + cost < quota); with a NOSPACE
   * alarm active every write is refused (apply/uber_applier.go@v3.6.14:101-109, the capped applier), reads still work.
   */
  async etcdWrite(address?: string): Promise<EtcdWriteResult> {
    const node = address ? this.resolve(address) : this.nodesList.find((n) => n.etcdServing && this.hasQuorum(n));
    if (!node || !node.etcdServing) return { ok: false, error: 'etcdserver: request timed out' };
    if (!this.hasQuorum(node)) return { ok: false, error: 'etcdserver: no leader' };
    const spaceExceeded = 'etcdserver: mvcc: database space exceeded';
    const alarms = this.alarmsOf(node);
    // a CORRUPT alarm refuses reads and writes alike (etcd-io/etcd server/etcdserver/apply/corrupt.go@v3.6.14:29-38)
    if (alarms.some((a) => a.alarm === 'CORRUPT')) return { ok: false, error: 'etcdserver: corrupt cluster' };
    if (alarms.some((a) => a.alarm === 'NOSPACE')) return { ok: false, error: spaceExceeded };
    const memberId = node.etcd.memberId();
    const writeCost = 512;
    if (memberId && node.etcd.status().dbSize + writeCost >= this.quotaBytes()) {
      await this.replicateAlarms(node.etcd.clusterId(), [...alarms, { memberId, alarm: 'NOSPACE' }]);
      this.kick();
      return { ok: false, error: spaceExceeded };
    }
    return { ok: true };
  }

  /** Every control-plane node's apiserver writes (leases, events) every few seconds while its etcd serves. */
  protected apiServerWrites(): void {
    if (this.def.etcdQuotaBytes === null || this.stopped) return;
    this.clock.after(API_SERVER_WRITE_MS, () => {
      const writers = this.nodesList.filter((n) => n.isControlPlane && n.etcdServing && this.hasQuorum(n));
      void Promise.all(writers.map((n) => this.etcdWrite(n.address).catch(() => undefined))).finally(() =>
        this.apiServerWrites(),
      );
    });
  }

  /** Re-evaluates quorum, serving, health and joins everywhere; coalesces nested calls. */
  kick(): void {
    if (this.stopped) return;
    if (this.kicking) {
      this.kickAgain = true;
      return;
    }
    this.kicking = true;
    try {
      do {
        this.kickAgain = false;
        // Quorum per cluster id, once per pass (nothing in the loop changes it): a pass stays O(nodes) quorum checks.
        const quorumOf = new Map<string | null, boolean>();
        for (const node of this.nodesList) {
          const id = node.etcd.clusterId();
          let quorum = quorumOf.get(id);
          if (quorum === undefined) {
            quorum = this.clusterHasQuorum(id);
            quorumOf.set(id, quorum);
          }
          if (quorum && node.etcd.isRunning() && node.state.mode === 'running') node.state.etcdServing = true;
          node.refreshEtcdHealth(quorum);
        }
        for (const node of this.nodesList) node.tryJoin();
      } while (this.kickAgain);
    } finally {
      this.kicking = false;
    }
  }

  resolve(target: string): SimNode | undefined {
    const host = target.replace(/^\[|\]$/g, '').replace(/:\d+$/, '');
    return this.nodesList.find((n) => n.address === host || n.hostname === host);
  }
}
