/**
 * Talos's service runner for etcd on one simulated node (SimNode builds on it): Starting, Waiting for its conditions,
 * the pre stage (a bootstrap or restore, or waiting in Preparing to join), Running; joining as a learner and the
 * promotion; the crash loop of a process that exits at once and of a removed member. All on the simulated clock, with
 * quorum and membership decided by the cluster through ClusterHooks. Split from node.ts along this seam (issue 14).
 */
import { rm, stat } from 'node:fs/promises';
import { clientUrl, EtcdRestoreError } from './etcd-backend.js';
import { SimNodeBase } from './node-base.js';
import { etcdFirstWaitingText } from './node-state.js';
import type { SimNode } from './node.js';

/** The restart runner's interval (talos: internal/app/machined/pkg/system/runner/restart/restart.go@v1.14.1:75,137). */
const CRASH_RESTART_MS = 5000;
/**
 * A learner is promoted at one of Talos's tries once it caught up: promoteMember retries every 15 s (+1 s jitter) for
 * up to 10 min (siderolabs/talos internal/app/machined/pkg/system/services/etcd.go@v1.14.0-rc.1:622-666); the first
 * try comes as the process starts and etcd refuses it (the learner has not caught up), so the second one succeeds.
 */
const LEARNER_PROMOTION_MS = 15_000;
/**
 * Between MemberAddAsLearner and the etcd process publishing its name, the new member is listed with an empty name
 * and no client URLs (etcd publishes them once it started: etcd-io/etcd server/etcdserver/server.go@v3.6.14 publishV3;
 * Talos relies on it: services/etcd.go@v1.14.0-rc.1:314-320 matches "IsLearner && Name == ''"). The container's start.
 */
const LEARNER_START_MS = 2_000;
/**
 * A removed member stops itself about a second after it applied its own removal (etcd-io/etcd:
 * server/etcdserver/server.go@v3.6.14:1211, stopWithDelay 1 s), and etcd's main then exits 0 (etcdmain/etcd.go@v3.6.14:202).
 */
const REMOVED_STOP_MS = 1_000;

export abstract class SimNodeEtcd extends SimNodeBase {
  /** This node as the cluster's hooks know it (the SimNode this class is part of). */
  protected abstract get self(): SimNode;

  /** Talos's service runner for etcd: Starting, Waiting for its conditions, Preparing (pre stage), Running. */
  startEtcdService(): void {
    const generation = ++this.etcdGeneration;
    this.etcd.stop();
    this.state.etcdServing = false;
    this.etcdEvent('Starting', 'Starting service');
    this.etcdEvent('Waiting', this.firstWaitingText());
    this.hooks.clock.after(this.hooks.timing.bootSec * 1000, () => {
      if (generation !== this.etcdGeneration || this.state.mode !== 'running') return;
      if (!this.state.timeSynced) {
        this.etcdEvent('Waiting', 'Waiting for time sync');
        return;
      }
      void this.runEtcdPreStage(generation);
    });
  }

  protected firstWaitingText(): string {
    return etcdFirstWaitingText(this.state.talosVersion);
  }

  /** A crash-looping etcd of a scenario's starting state keeps restarting every 5 s. */
  resumeCrashLoop(): void {
    if (!this.exitsAtOnce || !this.isControlPlane || !this.state.timeSynced) return;
    const generation = this.etcdGeneration;
    this.hooks.clock.after(CRASH_RESTART_MS, () => this.crashLoop(generation));
  }

  /** Time sync arrives (a scenario can make it arrive late): a service waiting for it proceeds. */
  syncTime(): void {
    this.state.timeSynced = true;
    if (this.etcdState === 'Waiting' && this.state.services.etcd?.events.at(-1)?.msg === 'Waiting for time sync') {
      void this.runEtcdPreStage(this.etcdGeneration);
    }
  }

  protected async runEtcdPreStage(generation: number): Promise<void> {
    this.etcdEvent('Preparing', 'Running pre state');
    const bootstrap = this.state.bootstrap;
    if (bootstrap) {
      await this.bootstrapEtcd(generation, bootstrap);
      return;
    }
    if (this.etcd.hasData()) {
      this.startEtcdProcess(generation);
      return;
    }
    // No data and no bootstrap: wait in Preparing until a cluster with quorum lets this member join.
    this.hooks.kick();
  }

  /** Called by the cluster while this node sits in Preparing without data: join when a quorum exists. */
  tryJoin(): void {
    if (this.etcdState !== 'Preparing' || this.etcd.hasData() || this.state.bootstrap || this.joining) return;
    const source = this.hooks.joinSource(this.self);
    if (!source) return;
    this.joining = true;
    const generation = this.etcdGeneration;
    this.hooks.clock.after(this.hooks.timing.joinSec * 1000, () => {
      // A join that fails (its source lost its data meanwhile, the simulator stopped) is tried again at the next
      // kick; it must not become an unhandled rejection, which ends a `talos-dr sim` process.
      this.completeJoin(generation).catch(() => undefined);
    });
  }

  protected joining = false;

  private async completeJoin(generation: number): Promise<void> {
    this.joining = false;
    if (generation !== this.etcdGeneration || this.etcdState !== 'Preparing') return;
    const source = this.hooks.joinSource(this.self);
    if (!source) return; // quorum went away meanwhile; the cluster kicks us again later
    // Talos adds a joining member as a learner (talos services/etcd.go@v1.14.1:322, MemberAddAsLearner); etcd allows
    // one learner at a time ("too many learner members in cluster"): the next joiner retries until it is promoted.
    if (!this.hooks.acquireJoin(this.self)) return; // released with a kick, which brings us back here
    if (!this.etcd.promote) {
      await this.joinAsLearner(generation, source);
      return;
    }
    let member: { id: string };
    try {
      member = await this.etcd.join(source.etcd, { name: this.hostname, address: this.address });
      await this.etcd.applyMembership(
        this.etcd.members().map((m) => (m.id === member.id ? { ...m, isLearner: true } : m)),
      );
      await this.hooks.replicateMembership(this.self);
    } catch (error) {
      this.hooks.releaseJoin(this.self);
      throw error;
    }
    this.startEtcdProcess(generation);
    this.hooks.clock.after(LEARNER_PROMOTION_MS, () => {
      this.promote(generation, member.id).catch(() => undefined);
    });
  }

  /**
   * The built-in model's join, in etcd's phases: the learner is added through a member with quorum (listed with no
   * name and no client URLs), then its process starts, receives the data and publishes its name; the promotion
   * follows (startEtcdProcess schedules it for a learner).
   */
  private async joinAsLearner(generation: number, source: SimNode): Promise<void> {
    let id: string;
    try {
      id = await this.hooks.addLearner(this.self, source);
    } catch (error) {
      this.hooks.releaseJoin(this.self);
      throw error;
    }
    this.hooks.clock.after(LEARNER_START_MS, () => {
      this.startLearner(generation, id).catch(() => this.hooks.releaseJoin(this.self));
    });
  }

  private async startLearner(generation: number, id: string): Promise<void> {
    const source = this.hooks.joinSource(this.self);
    // gone down or restarted meanwhile: the learner stays listed without a name until this node tries again
    if (generation !== this.etcdGeneration || this.etcdState !== 'Preparing' || !source) {
      this.hooks.releaseJoin(this.self);
      return;
    }
    await this.etcd.join(source.etcd, { name: this.hostname, address: this.address }, id);
    // the process starts, then publishes its name and client URLs through raft (etcd's publishV3 runs once the
    // server started): a learner listed with its name already serves Status
    this.startEtcdProcess(generation);
    const named = { name: this.hostname, clientUrls: [clientUrl(this.address)] };
    await this.hooks.changeMembership(this.etcd.clusterId(), (members) =>
      members.map((m) => (m.id === id ? { ...m, ...named } : m)),
    );
  }

  /** Talos promotes the learner once it caught up; then the next member may join. */
  private async promote(generation: number, memberId: string): Promise<void> {
    try {
      if (generation !== this.etcdGeneration || !this.etcd.isRunning()) return;
      if (this.etcd.promote) {
        await this.etcd.promote();
        await this.hooks.replicateMembership(this.self);
        return;
      }
      await this.hooks.changeMembership(this.etcd.clusterId(), (members) =>
        members.map((m) => (m.id === memberId ? { ...m, isLearner: false } : m)),
      );
    } finally {
      this.hooks.releaseJoin(this.self);
    }
  }

  private startEtcdProcess(generation: number): void {
    if (generation !== this.etcdGeneration) return;
    this.etcdEvent('Preparing', 'Creating service runner');
    if (this.exitsAtOnce) {
      this.crashLoop(generation);
      return;
    }
    this.etcd.start();
    this.state.etcdServing = false;
    this.etcdEvent('Running', `Started task etcd (PID ${2000 + Math.floor(Math.random() * 6000)}) for container etcd`);
    this.hooks.kick();
    // a learner whose promotion was cut short (a reboot) is promoted once its etcd runs again
    this.schedulePromotion();
  }

  /**
   * A built-in learner whose etcd runs is promoted at Talos's next try (LEARNER_PROMOTION_MS). Also called for a
   * restored simulator: the try is a timer, which a saved state does not keep, and a learner left unpromoted holds
   * etcd's one learner slot, so every later joiner waited in Preparing for good.
   */
  schedulePromotion(): void {
    const self = this.etcd.memberId();
    if (this.etcd.promote || !this.etcd.isRunning() || !self) return;
    if (!this.etcd.members().some((m) => m.id === self && m.isLearner)) return;
    const generation = this.etcdGeneration;
    this.hooks.clock.after(LEARNER_PROMOTION_MS, () => {
      this.promote(generation, self).catch(() => undefined);
    });
  }

  /** The etcd process exits as soon as it starts: damaged data, or a member removed from the cluster. */
  private get exitsAtOnce(): boolean {
    return this.state.etcdCrashes || Boolean(this.state.etcdRemoved);
  }

  /**
   * The cluster removed this member while its etcd ran: etcd stops itself a second later and exits 0; Talos's restart
   * runner restarts it every 5 s, and each time the other members refuse it (removed), so it exits again. A member
   * already crash-looping keeps its own loop.
   */
  removedFromCluster(): void {
    if (this.state.etcdRemoved) return;
    this.state.etcdRemoved = true;
    if (!this.etcd.isRunning() || this.state.etcdCrashes) return;
    const generation = this.etcdGeneration;
    this.hooks.clock.after(REMOVED_STOP_MS, () => {
      if (generation !== this.etcdGeneration || this.state.mode !== 'running') return;
      this.etcd.stop();
      this.state.etcdServing = false;
      this.crashLoop(generation, false);
      this.hooks.kick();
    });
  }

  /**
   * A process that exits at once under Talos's restart runner: Waiting with the error, a restart 5 s later, the task
   * starts and fails again, forever (talos: internal/app/machined/pkg/system/runner/restart/restart.go@v1.14.1:128, the
   * "going to restart forever" message and its 5 s restart interval). The task lives for milliseconds, so the state a
   * caller sees is Waiting; the events show the flapping.
   */
  private crashLoop(generation: number, starts = true): void {
    if (generation !== this.etcdGeneration || this.state.mode !== 'running' || !this.exitsAtOnce) return;
    if (starts)
      this.etcdEvent(
        'Running',
        `Started task etcd (PID ${2000 + Math.floor(Math.random() * 6000)}) for container etcd`,
      );
    // damaged data: the process fails; a removed member: etcd exits 0 and the runner says so
    // (siderolabs/talos internal/app/machined/pkg/system/runner/restart/restart.go@v1.14.0-rc.1:140-145)
    this.etcdEvent(
      'Waiting',
      this.state.etcdCrashes
        ? 'Error running Containerd(etcd), going to restart forever: task "etcd" failed: exit code 2'
        : 'Runner Containerd(etcd) exited without error, going to restart it',
    );
    const svc = this.state.services.etcd;
    if (svc)
      svc.health = { unknown: false, healthy: false, lastMessage: 'service not running', lastChange: Date.now() };
    this.hooks.clock.after(CRASH_RESTART_MS, () => this.crashLoop(generation));
  }

  /** The etcd pre stage in bootstrap mode: a fresh cluster, or a restore from the uploaded snapshot. */
  private async bootstrapEtcd(
    generation: number,
    request: { recover: boolean; skipHashCheck: boolean },
  ): Promise<void> {
    await this.hooks.clock.sleep(request.recover ? this.hooks.timing.restoreSec * 1000 : 0);
    if (generation !== this.etcdGeneration) return;
    const self = { name: this.hostname, address: this.address };
    // etcdutl's Status comes first, then the restore (talos: services/etcd.go@v1.14.1:631-651): a missing upload fails
    // the verification, a refused one the recovery.
    let step = 'error recovering from the snapshot';
    try {
      const upload = await stat(this.uploadPath).then(
        () => true,
        () => false,
      );
      // Data already here: a saved state taken mid-restore, resumed; the restore is not done twice.
      if (request.recover && !this.etcd.hasData()) {
        if (!upload) {
          step = 'error verifying snapshot';
          throw new EtcdRestoreError('stat /var/lib/etcd.snapshot: no such file or directory');
        }
        await this.etcd.restore(this.uploadPath, request.skipHashCheck, self);
      } else if (!request.recover && !this.etcd.hasData()) {
        await this.etcd.initialize(self);
      }
      if (request.recover && upload) {
        await this.hooks.onRestored(this.self, this.uploadPath);
        await rm(this.uploadPath, { force: true });
      }
    } catch (error) {
      this.state.bootstrap = null;
      const message = error instanceof Error ? error.message : String(error);
      this.etcdEvent('Failed', `Failed to run pre stage: ${step}: ${message}`);
      return;
    }
    // Cleared only now: a state saved between the restore's start and its end (the drill saves after each step)
    // kept neither the request nor the data, and the resumed node waited in Preparing to join a cluster that was gone.
    this.state.bootstrap = null;
    this.startEtcdProcess(generation);
  }
}
