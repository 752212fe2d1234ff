/**
 * The second EtcdBackend: every simulated control-plane node owns a real etcd member process (Debian's etcd 3.4) on
 * its own loopback address, with its data directory inside the node's simulated EPHEMERAL. The node model and the
 * cluster's quorum bookkeeping stay as they are; what they read (membership, ids, status, revisions, keys) is what
 * the member itself answered last (refreshed before every RPC that shows it), and what they do (start, stop, wipe,
 * restore, join, snapshot) is done to the real member with etcd's own tools.
 *
 * The process, its readiness and its data directory are RealEtcdProcess's (real-etcd-process.ts); this file holds
 * what a member does within its cluster (join, promotion, removals) and what the node model reads from it.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EtcdBackend, EtcdLocalStatus, EtcdMemberInfo, MemberIdentity, SavedEtcd } from './etcd-backend.js';
import { etcdctl, etcdWords, gateway, hex, sleep, toMember, type GatewayMember } from './real-etcd-calls.js';
import { emptyCache, RealEtcdProcess } from './real-etcd-process.js';

/**
 * etcd's answer to promoting a member that is a voter already (etcd-io/etcd
 * etcdserver/api/v3rpc/rpctypes/error.go@v3.4.23:45); the answer while the learner is behind starts the same way and
 * goes on "which is in sync with leader" (:46), so the end of the text tells them apart.
 */
const NOT_A_LEARNER = /can only promote a learner member$/;
/** etcd's answer to removing (or promoting) a member it does not list (error.go@v3.4.23:44). */
const MEMBER_NOT_FOUND = /member not found/i;
/**
 * A call whose answer did not come (aborted at its time limit, refused connection) or that etcd could not carry out
 * yet (error.go@v3.4.23:69-77: no leader, leader changed, request timed out): worth asking again. Any other answer
 * (member not found, not enough started members, unhealthy cluster) is etcd's last word.
 */
const LOST_ANSWER = /abort|timeout|fetch failed|ECONNREFUSED|ECONNRESET|no leader|leader changed|request timed out/i;
/** How long a removal the node already answered for is tried again (a member without quorum never applies it). */
const REMOVE_BUDGET_MS = 20_000;

export class RealEtcd extends RealEtcdProcess implements EtcdBackend {
  private joinInFlight: Promise<EtcdMemberInfo> | null = null;

  /** This member as a learner still to be promoted, and the member that took it in. */
  private learner: { id: string | undefined; via: RealEtcd; cluster: string | null } | null = null;

  /**
   * MemberPromote, retried while etcd's leader refuses it ("can only promote a learner member which is in sync with
   * leader": etcd-io/etcd etcdserver/server.go@v3.4.23:1800-1826) as Talos retries it (siderolabs/talos
   * internal/app/machined/pkg/system/services/etcd.go@v1.14.0-rc.1:622-666). Talos asks every etcd endpoint of the
   * cluster in turn, one after the other within each attempt (:638-662, each through its own client: :668-679), so a
   * member that stopped does not stall it: here the member that took the learner in and then the cluster's other
   * running members. Resolves once the member itself answers as a voter (false: the node was stopped, wiped or the
   * simulator ended first).
   */
  async promote(): Promise<boolean> {
    const learner = this.learner;
    if (!learner?.id) return false;
    const generation = this.generation;
    const current = (): boolean => generation === this.generation && !this.opts.fleet.isClosed;
    let promoted = false;
    while (!promoted) {
      if (!current()) return false;
      for (const member of this.promoters(learner.via, learner.cluster)) {
        if (!current()) return false;
        try {
          await gateway(member.clientUrl, '/v3/cluster/member/promote', { ID: learner.id }, 5000);
          promoted = true;
        } catch (error) {
          // removed meanwhile: nothing left to promote or to wait for
          if (MEMBER_NOT_FOUND.test(String(error))) {
            this.learner = null;
            return true;
          }
          // an earlier try went through but its answer was lost (a timeout on a busy machine)
          promoted = NOT_A_LEARNER.test(String(error));
        }
        if (promoted) break;
      }
      if (!promoted) await sleep(300);
    }
    this.learner = null;
    await this.awaitOwnPromotion(hex(learner.id), current);
    return current();
  }

  /**
   * Whom a promotion is asked of: the member that took the learner in, then the other running members of its cluster
   * (of this simulator's members, those that serve clients and last listed the cluster it joined), never the learner.
   */
  private promoters(via: RealEtcd, cluster: string | null): RealEtcd[] {
    const others = this.opts.fleet.backends.filter(
      (m): m is RealEtcd =>
        m instanceof RealEtcd &&
        m !== this &&
        m !== via &&
        m.isReady() &&
        cluster !== null &&
        m.clusterId() === cluster,
    );
    return [via, ...others];
  }

  /**
   * The leader has promoted this member; the member itself applies that when the leader's next message reaches it,
   * and until then it refuses its member list as it refuses every call but Status and a serializable Range ("rpc not
   * supported for learner": etcd-io/etcd etcdserver/api/v3rpc/interceptor.go@v3.4.23:51-53, util.go@v3.4.23:128-138).
   * What the node shows (its cluster, its member list, so its health) is read from this member's own answers, so
   * they are read again until it lists itself as a voter: one read right after the leader's answer lost that race on
   * a busy machine, left the member's view empty for good, and its node never turned healthy.
   */
  private async awaitOwnPromotion(id: string, current: () => boolean): Promise<void> {
    while (current() && this.wanted) {
      await this.refresh();
      const self = this.cache.members.find((m) => m.id === id);
      if (this.cache.memberId === id && self && !self.isLearner) return;
      await sleep(100);
    }
  }

  /**
   * Joins as Talos makes a member join: `member add` on the running cluster, then etcd starts with the existing
   * cluster and receives the data from the leader. Retries while etcd refuses a reconfiguration (another member was
   * added and has not started yet).
   */
  async join(source: EtcdBackend, self: MemberIdentity): Promise<EtcdMemberInfo> {
    // The node may ask again while a join is still trying (the cluster re-evaluates joins on every change): one join.
    if (this.joinInFlight) return this.joinInFlight;
    this.joinInFlight = this.joinOnce(source, self).finally(() => {
      this.joinInFlight = null;
    });
    return this.joinInFlight;
  }

  private async joinOnce(source: EtcdBackend, self: MemberIdentity): Promise<EtcdMemberInfo> {
    if (!(source instanceof RealEtcd)) throw new Error('etcdserver: no leader');
    this.wanted = false;
    this.ready = false;
    await this.enqueue(() => this.killNow());
    await rm(this.dataDir, { recursive: true, force: true });
    this.name = self.name;
    const generation = ++this.generation;
    let added: { member?: GatewayMember; members?: GatewayMember[] } | null = null;
    // Talos keeps trying to join for as long as the service runs; so does this, until the node or simulator stops.
    while (!added && generation === this.generation && !this.opts.fleet.isClosed) {
      try {
        // A member added before (a join that was interrupted) is reused rather than added twice.
        const list = await gateway<{ members?: GatewayMember[] }>(source.clientUrl, '/v3/cluster/member/list', {});
        const existing = (list.members ?? []).find((m) => (m.peerURLs ?? []).includes(this.peerUrl));
        added = existing
          ? { member: existing, members: list.members ?? [] }
          : await gateway(
              source.clientUrl,
              '/v3/cluster/member/add',
              // as Talos does: MemberAddAsLearner (talos services/etcd.go@v1.14.1:322)
              { peerURLs: [this.peerUrl], isLearner: true },
              5000,
            );
      } catch {
        await sleep(300);
      }
    }
    // Given up (the node was reset or the simulator stopped meanwhile): the caller's generation check ignores it.
    if (!added?.member)
      return { id: '0000000000000000', name: self.name, peerUrls: [], clientUrls: [], isLearner: false };
    const newId = added.member.ID;
    this.learner = { id: newId, via: source, cluster: source.clusterId() };
    let unnamed = 0;
    const initialCluster = (added.members ?? [])
      .flatMap((m) => {
        const name = m.ID === newId ? self.name : m.name || `unstarted-${++unnamed}`;
        return (m.peerURLs ?? []).map((url) => `${name}=${url}`);
      })
      .join(',');
    this.pending = { state: 'existing', initialCluster, token: 'unused-for-existing' };
    this.cache = emptyCache();
    this.wanted = true;
    await this.enqueue(() => this.spawnNow());
    await this.waitReady();
    await this.refresh({ keys: true });
    return toMember({ ...added.member, name: self.name, clientURLs: [this.clientUrl] });
  }

  /**
   * The membership changed (raft replicated it): members the cluster removed are removed for real, then re-read. The
   * node has already answered that the member was removed, so each removal is asked again until etcd says it is done
   * or that it knows no such member (an earlier try went through while its answer was lost: etcd-io/etcd
   * etcdserver/api/v3rpc/rpctypes/error.go@v3.4.23:44), and the list is read again until the member answers: one lost
   * answer on a busy machine left the member in the real cluster while the node said it was removed, or the node's
   * view listing a member that is gone, which without quorum nothing reads again.
   */
  async applyMembership(members: EtcdMemberInfo[]): Promise<void> {
    if (this.ready) {
      const keep = new Set(members.map((m) => m.id));
      for (const gone of this.cache.members.filter((m) => !keep.has(m.id))) await this.removeForReal(gone.id);
    }
    // a learner refuses its member list until it is promoted (awaitOwnPromotion reads it then): one try is its answer
    await (this.learner ? this.refresh() : this.reread());
  }

  private async removeForReal(id: string): Promise<void> {
    const deadline = Date.now() + REMOVE_BUDGET_MS;
    while (this.ready && !this.opts.fleet.isClosed) {
      try {
        await this.ask('/v3/cluster/member/remove', { ID: BigInt(`0x${id}`).toString() }, 5000);
        return;
      } catch (error) {
        // done (MEMBER_NOT_FOUND), or refused for a reason of etcd's own that a second try does not change
        if (!LOST_ANSWER.test(String(error)) || Date.now() >= deadline) return;
        await sleep(300);
      }
    }
  }

  members(): EtcdMemberInfo[] {
    return this.cache.members.map((m) => ({ ...m, peerUrls: [...m.peerUrls], clientUrls: [...m.clientUrls] }));
  }

  memberId(): string | null {
    return this.cache.memberId;
  }

  clusterId(): string | null {
    return this.cache.clusterId;
  }

  status(): EtcdLocalStatus {
    return (
      this.cache.status ?? {
        memberId: this.cache.memberId ?? '0000000000000000',
        dbSize: 0,
        dbSizeInUse: 0,
        raftIndex: 0,
        raftAppliedIndex: 0,
        raftTerm: 0,
        serverVersion: '3.4.23',
        leaderId: null,
      }
    );
  }

  /** etcd's own snapshot: `etcdctl snapshot save` from this member (the database plus its sha256 trailer). */
  async snapshot(): Promise<Buffer> {
    const dir = await mkdtemp(join(tmpdir(), 'talos-dr-etcd-snapshot-'));
    try {
      const file = join(dir, 'snapshot.db');
      const result = await etcdctl(
        ['--endpoints', this.clientUrl, '--command-timeout=20s', 'snapshot', 'save', file],
        30_000,
      );
      if (!result.ok) throw new Error(etcdWords(`${result.stdout}\n${result.stderr}`));
      return await readFile(file);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  revision(): number | null {
    return this.hasData() || this.ready ? this.cache.revision : null;
  }

  liveKeys(): Map<string, string> {
    return new Map(this.cache.keys);
  }

  save(): SavedEtcd {
    return { running: this.wanted, dirty: false, data: null, real: true };
  }
}
