/**
 * One simulated Talos node: its machine type and configuration, its services with Talos's states and events, its
 * EPHEMERAL (and optional ETCD) volume, time sync, and the slow things a real node does (boot, reboot, reset, install,
 * power off) on the simulated clock. The wire (server.ts) calls into it; quorum and membership are decided with the
 * cluster through ClusterHooks. Its state and hooks are typed in node-state.ts; etcd's service on the node (its runner,
 * pre stage, join, promotion, crash loop) is SimNodeEtcd's (node-etcd.ts); counters, reachability and service records
 * are SimNodeBase's (node-base.ts).
 */
import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { parseMachineConfig } from './machine-config.js';
import { resetLocked, resetWentDown } from './machine-events.js';
import { baseServices } from './node-base.js';
import { SimNodeEtcd } from './node-etcd.js';
import type { MachineMode } from './node-state.js';

/** How long a node keeps answering with its old state after Reset returned (simulated; the sequence's first steps). */
const RESET_SEQUENCE_START_MS = 2000;

export class SimNode extends SimNodeEtcd {
  protected get self(): SimNode {
    return this;
  }

  /** The pending reset's sequence waits (holdReset): the node does not go down yet. Not saved. */
  private resetHeld = false;

  // ---- boot ----

  /** The node comes up: maintenance mode without a configuration, otherwise its services start. */
  async boot(): Promise<void> {
    this.state.bootId = randomUUID();
    this.state.bootedAt = Date.now();
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
    // one already runs: this one is refused, that one goes on as it was asked (machine-events.ts)
    if (resetLocked(this)) return;
    this.state.pendingReset = { ...wipe, reboot };
    this.hooks.clock.after(RESET_SEQUENCE_START_MS, () => this.beginReset());
  }

  /**
   * Kubernetes can write (a cordon, a drain): the API server's etcd, taken as this node's cluster, has quorum. Without
   * it a graceful reset's drain waits out its minute (machine-events.ts).
   */
  get kubernetesWritable(): boolean {
    return this.hooks.joinSource(this) !== null;
  }

  /**
   * The pending reset's sequence waits `simMs` in one of its first phases (a graceful reset's drain): the node stays
   * up that long, then `then` publishes the phases that follow and the node goes down as it would have. A simulator
   * resumed meanwhile takes it down at once, as for any reset that had not gone down yet (saved-state.ts).
   */
  holdReset(simMs: number, then: () => void): void {
    const bootId = this.state.bootId;
    this.resetHeld = true;
    this.hooks.clock.after(simMs, () => {
      this.resetHeld = false;
      if (this.state.bootId !== bootId || this.state.mode !== 'running' || !this.state.pendingReset) return;
      then();
      this.hooks.clock.after(RESET_SEQUENCE_START_MS, () => this.beginReset());
    });
  }

  /**
   * The reset sequence stops the services and takes the machine down (also used when a saved state resumes): the
   * phases that do it are in the node's events as it goes, up to stopAllServices, which takes apid down
   * (machine-events.ts).
   */
  beginReset(): void {
    if (!this.state.pendingReset || this.state.mode !== 'running' || this.resetHeld) return;
    resetWentDown(this);
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
