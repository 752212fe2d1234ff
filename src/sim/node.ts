/**
 * One simulated Talos node: its machine type and configuration, its services with Talos's states and events, its
 * EPHEMERAL (and optional ETCD) volume, time sync, and the slow things a real node does (reboot, reset, join,
 * restore) on the simulated clock. The wire (server.ts) calls into it; quorum and membership are decided with the
 * cluster through ClusterHooks. Its state and hooks are typed in node-state.ts; counters, reachability and service
 * records are SimNodeBase's (node-base.ts).
 */
import { randomUUID } from 'node:crypto';
import { rm, stat } from 'node:fs/promises';
import { clientUrl, EtcdRestoreError } from './etcd-backend.js';
import { parseMachineConfig } from './machine-config.js';
import { baseServices, SimNodeBase } from './node-base.js';
import { etcdFirstWaitingText, type MachineMode } from './node-state.js';

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
/** How long a node keeps answering with its old state after Reset returned (simulated; the sequence's first steps). */
const RESET_SEQUENCE_START_MS = 2000;

export class SimNode extends SimNodeBase {
  // ---- boot ----

  /** The node comes up: maintenance mode without a configuration, otherwise its services start. */
  async boot(): Promise<void> {
    this.state.bootId = randomUUID();
    if (this.state.stagedConfig) {
      this.state.config = this.state.stagedConfig;
      this.state.stagedConfig = null;
    }
    if (!this.state.config) {
      this.state.type = null;
      this.state.mode = 'maintenance';
      this.state.services = {};
      this.state.ephemeralMounted = false;
      await this.hooks.relisten(this);
      return;
    }
    const parsed = parseMachineConfig(this.state.config);
    this.state.type = parsed.type;
    if (parsed.hostname) this.state.hostname = parsed.hostname;
    this.state.mode = 'running';
    this.state.ephemeralMounted = false;
    this.state.services = baseServices(this.isControlPlane, Date.now());
    this.startCri();
    await this.hooks.relisten(this);
    // EPHEMERAL is mounted a moment after the API comes up; EtcdRecover refuses until then.
    this.hooks.clock.after(this.hooks.timing.bootSec * 500, () => {
      if (this.state.mode === 'running') this.state.ephemeralMounted = true;
    });
    if (this.isControlPlane) this.startEtcdService();
    this.hooks.kick();
  }

  /**
   * A boot the saved state caught part-way (the node up, EPHEMERAL not mounted yet: a drill saves while a booting
   * node waits for its listener) goes on as the boot above would have: CRI up, EPHEMERAL mounted, etcd's service
   * started on a control-plane node that has none yet. A node does not stop booting because a client died; only the
   * simulator's timers ended with the drill's process.
   */
  continueBoot(): void {
    if (this.state.mode !== 'running' || this.state.ephemeralMounted) return;
    if (this.state.services.cri?.state !== 'Running') this.criUpLater();
    this.hooks.clock.after(this.hooks.timing.bootSec * 500, () => {
      if (this.state.mode === 'running') this.state.ephemeralMounted = true;
    });
    if (this.isControlPlane && !this.state.services.etcd) this.startEtcdService();
    this.hooks.kick();
  }

  /** CRI (containerd for Kubernetes) comes up shortly after boot; Bootstrap refuses until it is up. */
  private startCri(): void {
    this.record('cri', 'Starting', 'Starting service');
    this.record('cri', 'Waiting', 'Waiting for network');
    this.criUpLater();
  }

  private criUpLater(): void {
    this.hooks.clock.after(this.hooks.timing.bootSec * 300, () => {
      if (this.state.mode !== 'running') return;
      this.record('cri', 'Running', 'Health check successful', {
        unknown: false,
        healthy: true,
        lastMessage: '',
        lastChange: Date.now(),
      });
    });
  }

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

  private firstWaitingText(): string {
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

  private async runEtcdPreStage(generation: number): Promise<void> {
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
    const source = this.hooks.joinSource(this);
    if (!source) return;
    this.joining = true;
    const generation = this.etcdGeneration;
    this.hooks.clock.after(this.hooks.timing.joinSec * 1000, () => {
      // A join that fails (its source lost its data meanwhile, the simulator stopped) is tried again at the next
      // kick; it must not become an unhandled rejection, which ends a `talos-dr sim` process.
      this.completeJoin(generation).catch(() => undefined);
    });
  }

  private joining = false;

  private async completeJoin(generation: number): Promise<void> {
    this.joining = false;
    if (generation !== this.etcdGeneration || this.etcdState !== 'Preparing') return;
    const source = this.hooks.joinSource(this);
    if (!source) return; // quorum went away meanwhile; the cluster kicks us again later
    // Talos adds a joining member as a learner (talos services/etcd.go@v1.14.1:322, MemberAddAsLearner); etcd allows
    // one learner at a time ("too many learner members in cluster"): the next joiner retries until it is promoted.
    if (!this.hooks.acquireJoin(this)) return; // released with a kick, which brings us back here
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
      await this.hooks.replicateMembership(this);
    } catch (error) {
      this.hooks.releaseJoin(this);
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
      id = await this.hooks.addLearner(this, source);
    } catch (error) {
      this.hooks.releaseJoin(this);
      throw error;
    }
    this.hooks.clock.after(LEARNER_START_MS, () => {
      this.startLearner(generation, id).catch(() => this.hooks.releaseJoin(this));
    });
  }

  private async startLearner(generation: number, id: string): Promise<void> {
    const source = this.hooks.joinSource(this);
    // gone down or restarted meanwhile: the learner stays listed without a name until this node tries again
    if (generation !== this.etcdGeneration || this.etcdState !== 'Preparing' || !source) {
      this.hooks.releaseJoin(this);
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
        await this.hooks.replicateMembership(this);
        return;
      }
      await this.hooks.changeMembership(this.etcd.clusterId(), (members) =>
        members.map((m) => (m.id === memberId ? { ...m, isLearner: false } : m)),
      );
    } finally {
      this.hooks.releaseJoin(this);
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
        await this.hooks.onRestored(this, this.uploadPath);
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

  // ---- actions from the API ----

  /** Bootstrap's checks in order (facts §3.9), then etcd restarts in bootstrap mode. */
  async requestBootstrap(
    request: { recover: boolean; skipHashCheck: boolean },
    fail: {
      notAvailable(): Error;
      notControlPlane(): Error;
      timeNotSynced(): Error;
      notEmpty(): Error;
    },
  ): Promise<void> {
    // Talos waits up to 1 s for CRI to be up.
    if (this.state.mode === 'running' && this.state.services.cri?.state !== 'Running')
      await this.hooks.clock.sleep(1000);
    if (this.state.mode !== 'running' || this.state.services.cri?.state !== 'Running') throw fail.notAvailable();
    if (!this.isControlPlane) throw fail.notControlPlane();
    if (!this.state.timeSynced) {
      await this.hooks.clock.sleep(5000);
      if (!this.state.timeSynced) throw fail.timeNotSynced();
    }
    if (this.etcd.hasData()) throw fail.notEmpty();
    ++this.etcdGeneration;
    this.joining = false;
    this.etcd.stop();
    this.etcdEvent('Finished', 'Bootstrap requested');
    this.state.bootstrap = request;
    // The old runner is unloaded and a new one loaded: its history starts empty, so "Bootstrap requested" is gone
    // from ServiceList (talos: internal/app/machined/pkg/system/services/etcd.go@v1.14.1:808-837, Unload then Load).
    delete this.state.services.etcd;
    const generation = ++this.etcdGeneration;
    this.etcdEvent('Starting', 'Starting service');
    this.etcdEvent('Waiting', this.firstWaitingText());
    void this.runEtcdPreStage(generation);
  }

  /** Reboot: the node goes away for the scenario's reboot time; a staged configuration applies on the way. */
  reboot(): void {
    this.goDown('rebooting');
    this.hooks.clock.after(this.hooks.timing.rebootSec * 1000, () => {
      if (this.state.mode === 'rebooting') void this.boot();
    });
  }

  private goDown(mode: MachineMode): void {
    ++this.etcdGeneration;
    this.joining = false;
    this.etcd.stop();
    this.state.etcdServing = false;
    this.state.mode = mode;
    this.state.ephemeralMounted = false;
    this.hooks.offline(this);
    this.hooks.kick();
  }

  /**
   * Reset: the API answers before anything happened (the sequence runs in a goroutine: talos
   * internal/app/machined/internal/server/v1alpha1/v1alpha1_server.go@v1.14.1:747-761), so for a moment the node
   * still answers with its old state; then its services stop and it goes away, the wipe happens after the scenario's
   * reset time, then a reboot (or power off).
   */
  reset(wipe: { labels: string[]; wholeDisk: boolean }, reboot: boolean): void {
    this.state.pendingReset = { ...wipe, reboot };
    this.hooks.clock.after(RESET_SEQUENCE_START_MS, () => this.beginReset());
  }

  /** The reset sequence stops the services and takes the machine down (also used when a saved state resumes). */
  beginReset(): void {
    if (!this.state.pendingReset || this.state.mode !== 'running') return;
    this.goDown('resetting');
    this.hooks.clock.after(this.hooks.timing.resetSec * 1000, () => {
      void this.finishReset();
    });
  }

  /**
   * Wipes what the reset named, then reboots (or powers off). Public so a restored simulator can finish a reset; the
   * pending reset stays recorded until the wipe is done, so a state saved halfway finishes it again (wiping twice is
   * harmless).
   */
  async finishReset(): Promise<void> {
    const pending = this.state.pendingReset;
    if (this.state.mode !== 'resetting') return;
    if (pending) {
      const labels = new Set(pending.labels);
      const wipesEtcd =
        pending.wholeDisk || labels.has('ETCD') || (labels.has('EPHEMERAL') && !this.state.etcdPartition);
      // EPHEMERAL holds /var: an uploaded snapshot goes with it (a dedicated ETCD partition does not).
      if (pending.wholeDisk || labels.has('EPHEMERAL')) await rm(this.uploadPath, { force: true });
      if (wipesEtcd) {
        await this.etcd.wipe();
        this.state.etcdCrashes = false;
        this.state.etcdRemoved = false;
      }
      if (pending.wholeDisk || labels.has('STATE')) {
        this.state.config = null;
        this.state.stagedConfig = null;
      }
    }
    if (this.state.mode !== 'resetting') return;
    this.state.pendingReset = null;
    if (!pending || pending.reboot) this.reboot();
    else this.state.mode = 'off';
  }

  /** A blank machine in maintenance mode accepts its configuration and installs, then reboots into it. */
  installFromMaintenance(config: string): void {
    this.state.config = config;
    this.state.stagedConfig = null;
    this.reboot();
  }

  /** Leaves etcd (EtcdLeaveCluster): etcd stops (Finished) and its data directory is removed. */
  async leaveEtcd(): Promise<void> {
    ++this.etcdGeneration;
    this.etcd.stop();
    this.state.etcdServing = false;
    this.etcdEvent('Finished', 'Service finished successfully');
    await this.etcd.wipe();
    this.state.etcdRemoved = false;
    this.hooks.kick();
  }

  /** A scenario's `down` fault: the machine is powered off and boots by itself after the given (simulated) time. */
  powerOffFor(simMs: number): void {
    this.goDown('off');
    this.state.powerOnAt = Date.now() + this.hooks.clock.real(simMs);
    this.schedulePowerOn();
  }

  /** Boots at powerOnAt (also after a saved drill resumed). */
  schedulePowerOn(): void {
    const at = this.state.powerOnAt;
    if (!at || this.state.mode !== 'off') return;
    this.hooks.clock.after(Math.max(0, at - Date.now()) * this.hooks.clock.speed, () => {
      if (this.state.mode !== 'off' || this.state.powerOnAt !== at) return;
      this.state.powerOnAt = null;
      void this.boot();
    });
  }
}
