/**
 * The runtime events machined publishes while it runs a sequence (SequenceEvent, PhaseEvent, TaskEvent), here those
 * of a Reset: the controller publishes the sequence's START, then each phase's START, each task's START and STOP and
 * the phase's STOP (talos: internal/app/machined/pkg/runtime/v1alpha1/v1alpha1_controller.go@v1.13.9:259-392), all
 * under the context Reset put its actor id in (internal/app/machined/internal/server/v1alpha1/
 * v1alpha1_server.go@v1.13.9:736-750; the id is taken from that context at publication, v1alpha1_events.go@v1.13.9:
 * 214-220). `talosctl reset` waits for the TaskEvent "stopAllServices" (cmd/talosctl/pkg/talos/action/
 * tracker.go@v1.13.9:50-58) and shows the events that carry its actor id (node.go@v1.13.9:247-308).
 *
 * The events are machined's memory: a node that boots again has none of the last boot's (each record is kept with the
 * boot id it was published in). They are published in two parts, as the simulated node runs its reset: the phases
 * before the services stop as Reset answers (the node still answers with its old state for a moment, node.ts), and
 * the phases that stop the services, up to stopAllServices' START, when the node goes away (apid is one of the services
 * stopAllServices stops, so nothing later reaches a client; the wipe and the reboot are not seen).
 */
import { randomUUID } from 'node:crypto';
import type { SimNode } from './node.js';
import { ProtoWriter } from '../talos/proto-wire.js';

export interface RuntimeEvent {
  id: string;
  actorId: string;
  typeUrl: string;
  value: Buffer;
  /** The id of the last service event published before this one (the stream keeps their order). */
  after: string | undefined;
}

/** What one boot of a node published from its sequences. */
interface BootEvents {
  bootId: string;
  events: RuntimeEvent[];
  /** The reset that runs in this boot: its actor id and the phases left to publish when the node goes down. */
  reset: { actorId: string; rest: [phase: string, task: string][] } | null;
}

const byNode = new WeakMap<SimNode, BootEvents[]>();

/** SequenceEvent.Action, PhaseEvent.Action, TaskEvent.Action (api/machine/machine.proto@v1.13.9:196-223). */
const SEQUENCE_START = 1;
const START = 0;
const STOP = 1;

function boot(node: SimNode, bootId = node.state.bootId): BootEvents {
  let boots = byNode.get(node);
  if (!boots) byNode.set(node, (boots = []));
  let found = boots.find((b) => b.bootId === bootId);
  if (!found) {
    found = { bootId, events: [], reset: null };
    boots.push(found);
    // the boot before the last stays readable for a stream that was open when the node went down
    if (boots.length > 2) boots.splice(0, boots.length - 2);
  }
  return found;
}

function publish(node: SimNode, record: BootEvents, actorId: string, type: string, value: Buffer): void {
  record.events.push({
    id: randomUUID(),
    actorId,
    typeUrl: `talos/runtime/machine.${type}`,
    value,
    after: node.state.eventLog.at(-1)?.id,
  });
}

/** One phase as the controller runs it: its START, its one task's START and STOP, its STOP. */
function runPhase(node: SimNode, record: BootEvents, actorId: string, phase: string, task: string, end = true): void {
  const phaseEvent = (action: number): Buffer => new ProtoWriter().string(1, phase).uint(2, action).finish();
  const taskEvent = (action: number): Buffer => new ProtoWriter().string(1, task).uint(2, action).finish();
  publish(node, record, actorId, 'PhaseEvent', phaseEvent(START));
  publish(node, record, actorId, 'TaskEvent', taskEvent(START));
  if (!end) return;
  publish(node, record, actorId, 'TaskEvent', taskEvent(STOP));
  publish(node, record, actorId, 'PhaseEvent', phaseEvent(STOP));
}

export interface ResetOptions {
  graceful: boolean;
  reboot: boolean;
  /** The system partitions named to wipe; none: the whole system disk. */
  labels: string[];
}

/**
 * The Reset sequence's phases and each one's task on a metal machine (v1alpha1_sequencer.go@v1.13.9:260-343, the
 * stop phases 479-515; task names from v1alpha1_sequencer_tasks.go@v1.13.9: stopAllPods 963-965, removeAllPods
 * 958-960, cordonAndDrainNode 869, stopDBus 1730, leaveEtcd 954, sendResetSignal 1833, stopServicesForUpgrade 510-514,
 * unmountPodMounts 776, unmountSystemDiskBindMounts 832, unmountEphemeralPartition 1495, teardownLifecycle 1907,
 * kexecPrepare 1712, stopAllServices 518-523). The node's Kubernetes registration is never skipped here.
 */
export function resetPhases(
  opts: ResetOptions,
  controlPlane: boolean,
): { before: [string, string][]; stop: [string, string][] } {
  const before: [string, string][] = [];
  if (opts.graceful) before.push(['drain', 'cordonAndDrainNode']);
  before.push(['cleanup', opts.graceful ? 'removeAllPods' : 'stopAllPods']);
  before.push(['dbus', 'stopDBus']);
  if (opts.graceful && controlPlane) before.push(['leave', 'leaveEtcd']);
  before.push(['preReset', 'sendResetSignal']);
  // kexec when partitions are named and BOOT is not one of them (:263-267)
  const kexec = opts.labels.length > 0 && !opts.labels.includes('BOOT');
  const stop: [string, string][] = [
    ['stopServices', 'stopServicesForUpgrade'],
    ['umount', 'unmountPodMounts'],
    ['unmountBind', 'unmountSystemDiskBindMounts'],
    ['unmountSystem', 'unmountEphemeralPartition'],
    ['volumeFinalize', 'teardownLifecycle'],
    ...(kexec ? [['kexec', 'kexecPrepare'] as [string, string]] : []),
    ['stopEverything', 'stopAllServices'],
  ];
  return { before, stop };
}

/**
 * Reset answered with `actorId`: the sequence starts (its START, then the phases before the services stop). Called
 * by the API's Reset when the node takes the reset; a second call in the same boot changes nothing.
 */
export function resetSequenceStarted(node: SimNode, actorId: string, opts: ResetOptions): void {
  const record = boot(node);
  if (record.reset) return;
  const { before, stop } = resetPhases(opts, node.isControlPlane);
  record.reset = { actorId, rest: stop };
  publish(
    node,
    record,
    actorId,
    'SequenceEvent',
    new ProtoWriter().string(1, 'reset').uint(2, SEQUENCE_START).finish(),
  );
  for (const [phase, task] of before) runPhase(node, record, actorId, phase, task);
}

/**
 * The node went down in boot `bootId` while a reset ran: the phases that stop the services, up to stopAllServices'
 * START (the task that takes apid down with the rest). Once per boot.
 */
export function resetWentDown(node: SimNode, bootId: string): void {
  const record = boot(node, bootId);
  const reset = record.reset;
  if (!reset || reset.rest.length === 0) return;
  const rest = reset.rest;
  reset.rest = [];
  rest.forEach(([phase, task], i) => runPhase(node, record, reset.actorId, phase, task, i < rest.length - 1));
}

/** The runtime events published in boot `bootId` (the current one unless named), oldest first. */
export function runtimeEvents(node: SimNode, bootId = node.state.bootId): readonly RuntimeEvent[] {
  return boot(node, bootId).events;
}
