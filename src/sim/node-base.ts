/**
 * What every simulated node has before it does anything (SimNode builds on it): its counters, address and reachability,
 * and its services' states, events and health as Talos records them.
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type { EtcdBackend } from './etcd-backend.js';
import { ETCD_UNHEALTHY, type ClusterHooks, type NodeState, type ServiceRecord } from './node-state.js';

const MAX_SERVICE_EVENTS = 64;
const MAX_EVENT_LOG = 1000;
const NEVER = -62135596800000;

function service(id: string, state: string, msg: string, now: number): ServiceRecord {
  return {
    id,
    state,
    events: [{ msg, state, ts: now }],
    health: { unknown: state !== 'Running', healthy: state === 'Running', lastMessage: '', lastChange: now },
  };
}

/** The services every installed node runs besides etcd (what `talosctl services` lists). */
export function baseServices(controlPlane: boolean, now: number): Record<string, ServiceRecord> {
  const ids = ['apid', 'auditd', 'containerd', 'cri', 'dashboard', 'kubelet', 'machined', 'syslogd', 'udevd'];
  if (controlPlane) ids.push('trustd');
  const services: Record<string, ServiceRecord> = {};
  for (const id of ids.sort()) {
    const s = service(id, 'Running', 'Health check successful', now);
    s.health = { unknown: false, healthy: true, lastMessage: '', lastChange: now };
    services[id] = s;
  }
  return services;
}

export abstract class SimNodeBase {
  /** Counters of destructive calls received (Reset, Bootstrap, ApplyConfiguration, Reboot, EtcdRecover, etcd's). */
  readonly calls = {
    reset: 0,
    bootstrap: 0,
    apply: 0,
    reboot: 0,
    recover: 0,
    removeMember: 0,
    leave: 0,
    forfeitLeadership: 0,
    defragment: 0,
    alarmDisarm: 0,
    serviceRestart: 0,
  };
  /** While etcd defragments this member: settles when it is done (the member answers nothing meanwhile). */
  defragmenting: Promise<void> | null = null;
  /** Incremented when etcd restarts, so a pending step of an older run does nothing. */
  protected etcdGeneration = 0;
  /** Unreachable until this real time (a fault), in ms since the epoch. */
  unreachableUntil = 0;

  constructor(
    readonly index: number,
    readonly state: NodeState,
    readonly etcd: EtcdBackend,
    readonly rootDir: string,
    protected readonly hooks: ClusterHooks,
  ) {}

  get address(): string {
    return this.state.address;
  }

  get hostname(): string {
    return this.state.hostname;
  }

  get isControlPlane(): boolean {
    return this.state.type === 'controlplane' || this.state.type === 'init';
  }

  get inMaintenance(): boolean {
    return this.state.mode === 'maintenance';
  }

  /** Answers on the network at all (a rebooting or powered-off node refuses connections). */
  get reachable(): boolean {
    return (this.state.mode === 'running' || this.state.mode === 'maintenance') && Date.now() >= this.unreachableUntil;
  }

  get uploadPath(): string {
    return join(this.rootDir, 'var', 'lib', 'etcd.snapshot');
  }

  get etcdState(): string | null {
    return this.state.services.etcd?.state ?? null;
  }

  /** The local etcd answers clients (EtcdStatus, EtcdSnapshot, member list). */
  get etcdServing(): boolean {
    return this.state.mode === 'running' && this.etcd.isRunning() && this.state.etcdServing;
  }

  // ---- services and events ----

  /** A service's state change; `health` is what its health check now says (kept otherwise, reset unless Running). */
  protected record(id: string, state: string, msg: string, health?: ServiceRecord['health']): void {
    const now = Date.now();
    const svc = this.state.services[id] ?? service(id, state, msg, now);
    if (this.state.services[id]) {
      svc.events.push({ msg, state, ts: now });
      if (svc.events.length > MAX_SERVICE_EVENTS) svc.events.splice(0, svc.events.length - MAX_SERVICE_EVENTS);
    }
    svc.state = state;
    if (state !== 'Running') svc.health = { unknown: true, healthy: false, lastMessage: '', lastChange: NEVER };
    if (health) svc.health = health;
    this.state.services[id] = svc;
    this.logEvent(id, state, msg);
  }

  protected logEvent(serviceId: string, state: string, msg: string): void {
    // a Running event carries the service's health at that moment, any other none (so unknown), as machined's
    // ServiceStateEvent (talos: internal/app/machined/pkg/system/service_runner.go@v1.14.1:77-92 UpdateState,
    // events/events.go@v1.14.1:70-77 AsProto)
    const health = state === 'Running' ? this.state.services[serviceId]?.health : undefined;
    this.state.eventLog.push({
      id: randomUUID(),
      service: serviceId,
      state,
      msg,
      ts: Date.now(),
      ...(health ? { health: { ...health } } : {}),
    });
    if (this.state.eventLog.length > MAX_EVENT_LOG) this.state.eventLog.shift();
  }

  protected etcdEvent(state: string, msg: string): void {
    this.record('etcd', state, msg);
  }

  /** Health of a Running etcd follows quorum; an event is published only when it flips (facts §10.3). */
  refreshEtcdHealth(hasQuorum: boolean): void {
    // ETCD_UNHEALTHY: why a failed etcd health check says what it says (upstream sources cited there).
    const svc = this.state.services.etcd;
    if (!svc || svc.state !== 'Running') return;
    // the check reads a key: under a CORRUPT alarm etcd refuses reads too (etcd-io/etcd
    // server/etcdserver/apply/corrupt.go@v3.6.14:33-35), so every member's check fails with etcd's text
    const corrupt = hasQuorum && (this.etcd.alarms?.() ?? []).some((a) => a.alarm === 'CORRUPT');
    const healthy = hasQuorum && this.etcdServing && !corrupt;
    const why = corrupt ? 'etcdserver: corrupt cluster' : ETCD_UNHEALTHY;
    if (!svc.health.unknown && svc.health.healthy === healthy && (healthy || svc.health.lastMessage === why)) return;
    const msg = healthy ? 'Health check successful' : `Health check failed: ${why}`;
    svc.events.push({ msg, state: 'Running', ts: Date.now() });
    svc.health = {
      unknown: false,
      healthy,
      lastMessage: healthy ? '' : why,
      lastChange: Date.now(),
    };
    this.logEvent('etcd', 'Running', msg);
  }

  /**
   * A service restart through the API: machined stops the service (the runner ends: Finished), then starts it again
   * through its usual states (siderolabs/talos internal/app/machined/pkg/system/system.go@v1.14.0-rc.1:462-482 Stop
   * then Start; service_runner.go@v1.14.0-rc.1:165,220,273,284 the states' texts). Stop is awaited, Start is not.
   */
  async restartService(id: string, running: boolean): Promise<void> {
    if (running) this.record(id, 'Finished', 'Service finished successfully');
    await this.hooks.clock.sleep(200);
    this.startService(id);
  }

  /**
   * A restart cut by the end of the drill's process, continued from the state it was saved in: on a node, machined
   * carries on with the Start whatever happens to the client that asked for it (system.go@v1.14.0-rc.1:462-482, then
   * singleton.Start runs the service's runner in a goroutine of its own, `go func(id, svcrunner)`); only the
   * simulator's timers ended with the process. Nothing for a service that is Running and healthy.
   */
  continueRestart(id: string): void {
    const svc = this.state.services[id];
    if (!svc) return;
    if (svc.state === 'Finished') this.hooks.clock.after(200, () => this.startService(id));
    else if (svc.state === 'Starting' || svc.state === 'Waiting')
      this.hooks.clock.after(500, () => this.runService(id));
    else if (svc.state === 'Running' && !svc.health.healthy) this.scheduleHealthy(id);
  }

  private startService(id: string): void {
    if (this.state.mode !== 'running') return;
    this.record(id, 'Starting', 'Starting service');
    this.record(id, 'Waiting', 'Waiting for service "cri" to be "up", time sync, network');
    this.hooks.clock.after(500, () => this.runService(id));
  }

  private runService(id: string): void {
    if (this.state.mode !== 'running') return;
    this.record(id, 'Preparing', 'Running pre state');
    this.record(id, 'Preparing', 'Creating service runner');
    this.record(
      id,
      'Running',
      `Started task ${id} (PID ${2000 + Math.floor(Math.random() * 6000)}) for container ${id}`,
    );
    this.scheduleHealthy(id);
  }

  private scheduleHealthy(id: string): void {
    this.hooks.clock.after(this.hooks.timing.bootSec * 1000, () => {
      const svc = this.state.services[id];
      if (!svc || svc.state !== 'Running' || this.state.mode !== 'running') return;
      svc.events.push({ msg: 'Health check successful', state: 'Running', ts: Date.now() });
      svc.health = { unknown: false, healthy: true, lastMessage: '', lastChange: Date.now() };
      this.logEvent(id, 'Running', 'Health check successful');
    });
  }
}
