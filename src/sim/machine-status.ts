/**
 * The machine status machined publishes on its events stream (talos:
 * internal/app/machined/pkg/controllers/runtime/machine_status.go@v1.14.1:150-258, published by
 * machine_status_publisher.go@v1.14.1:60-80 as a MachineStatusEvent). `talosctl reboot` (and the other tracked
 * actions) waits for a MachineStatusEvent with stage RUNNING and ready, then for a new boot id
 * (cmd/talosctl/pkg/talos/action/tracker.go@v1.13.0:39-82).
 *
 * Stage: MAINTENANCE on a machine without configuration, RESETTING once a reset's sequence has started, REBOOTING
 * once one failed, else RUNNING (the simulator has no separate boot sequence: a node answers once it has booted).
 * Readiness in RUNNING: the services check, as Talos words it — every running service that is neither healthy nor of
 * unknown health is "<id> not healthy", then every required service that is
 * not running is "<id> not running" (services as the Service resources: only running ones exist,
 * controllers/v1alpha1/service.go@v1.14.1:72-93); required are apid and machined, kubelet where Kubernetes runs,
 * etcd (with Kubernetes) and trustd on a control-plane node. Time, network, static pods and node readiness hold (the
 * simulator models no clock drift, links or pods). In maintenance no check runs, so the machine is ready.
 */
import { sequenceStage } from './machine-events.js';
import type { SimNode } from './node.js';
import { ProtoWriter } from '../talos/proto-wire.js';

/** api/machine/machine.proto@v1.14.1:273-283. */
const STAGE = { MAINTENANCE: 3, RUNNING: 4, REBOOTING: 5, RESETTING: 7 } as const;

export interface MachineStatus {
  stage: number;
  ready: boolean;
  unmet: { name: string; reason: string }[];
}

/** The machine's status now, or with the stage its sequence events had set as of the event `asOf`. */
export function machineStatus(node: SimNode, asOf?: string): MachineStatus {
  if (node.inMaintenance) return { stage: STAGE.MAINTENANCE, ready: true, unmet: [] };
  // The stage the node's sequence events set (machine-events.ts sequenceStage): RESETTING from a reset's START (the
  // node took it and still answers), REBOOTING after a reset failed with a FATAL error, though the node runs on
  // (machine_status.go@v1.13.9:404-430). No readiness check runs outside BOOTING and RUNNING (:197-223). A pending
  // reset saved before the events were kept is RESETTING too.
  const stage = sequenceStage(node, asOf);
  if (stage === 'rebooting') return { stage: STAGE.REBOOTING, ready: true, unmet: [] };
  if (stage === 'resetting' || node.state.pendingReset) return { stage: STAGE.RESETTING, ready: true, unmet: [] };
  const services = node.state.services;
  const hasKubernetes = Boolean(services.kubelet);
  const required = ['apid', 'machined'];
  if (hasKubernetes) required.push('kubelet');
  if (node.isControlPlane) {
    if (hasKubernetes) required.push('etcd');
    required.push('trustd');
  }
  const running = Object.values(services)
    .filter((s) => s.events.at(-1)?.state === 'Running')
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const problems = running.filter((s) => !s.health.unknown && !s.health.healthy).map((s) => `${s.id} not healthy`);
  const up = new Set(running.map((s) => s.id));
  problems.push(...required.filter((id) => !up.has(id)).map((id) => `${id} not running`));
  const unmet = problems.length > 0 ? [{ name: 'services', reason: problems.join(', ') }] : [];
  return { stage: STAGE.RUNNING, ready: unmet.length === 0, unmet };
}

export const statusKey = (s: MachineStatus): string => JSON.stringify(s);

/** MachineStatusEvent { stage = 1; status = 2 { ready = 1; unmet_conditions = 2 { name = 1; reason = 2 } } }. */
export function encodeMachineStatus(s: MachineStatus): Buffer {
  const status = new ProtoWriter().bool(1, s.ready);
  for (const u of s.unmet) status.message(2, new ProtoWriter().string(1, u.name).string(2, u.reason).finish());
  return new ProtoWriter().uint(1, s.stage).message(2, status.finish()).finish();
}
