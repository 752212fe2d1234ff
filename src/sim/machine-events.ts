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
const SEQUENCE_NOOP = 0;
const SEQUENCE_START = 1;
const SEQUENCE_STOP = 2;
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

/** The drain phase's wait for the node to be cordoned gives up after a minute (v1alpha1_sequencer_tasks.go@v1.13.9:873). */
export const CORDON_WAIT_MS = 60_000;

/**
 * A graceful Reset of a control-plane node whose etcd has no leader. machined runs the sequence all the same (Reset
 * starts it and answers: v1alpha1_server.go@v1.13.9:736-750) and it fails at its leave phase:
 * - drain: the node is cordoned by a controller through the API server, which cannot write without etcd's quorum, so
 *   the task's wait for the cordon times out after a minute (v1alpha1_sequencer_tasks.go@v1.13.9:837-896); its error
 *   is only logged (taskErrorHandler(logError, …), v1alpha1_sequencer.go@v1.13.9:292-296; logError
 *   v1alpha1_sequencer_tasks.go@v1.13.9:1960-1964);
 * - cleanup (removeAllPods, also only logged) and dbus: taken here as instant;
 * - leave: leaveEtcd asks etcd to remove the member with "require leader" set (v1alpha1_sequencer_tasks.go@v1.13.9:
 *   947-951), which etcd refuses at once without a leader ("etcdserver: no leader": etcd-io/etcd
 *   server/etcdserver/api/v3rpc/interceptor.go, newUnaryInterceptor); LeaveCluster retries only "unhealthy" and
 *   "stopped" (internal/pkg/etcd/etcd.go@v1.13.9:160-182; the member id printed with %d: 209-213) and go-retry
 *   returns its error set ("1 error(s) occurred:\n\t…": siderolabs/go-retry retry/retry.go@v0.3.3:51-62,261).
 * Each task's and phase's STOP is deferred, so published on failure too; then the sequence's STOP (deferred in
 * run: v1alpha1_controller.go@v1.13.9:265-268) and a SequenceEvent NOOP with Error{FATAL, "sequence failed: error
 * running phase 4 in reset sequence: task 1/1: failed, …"} (controller.go:142-157, 304-309, 344-346; drain, cleanup,
 * dbus, leave are phases 1-4 of the graceful metal list, v1alpha1_sequencer.go@v1.13.9:292-311), all under the
 * reset's actor id. talosctl reset then exits with "sequence error: <message>" (cmd/talosctl/pkg/talos/action/
 * node.go@v1.13.9:274-295). The node keeps running, and nothing blocks a later reset. `sleep` waits simulated time;
 * the events stop if the node goes down or boots again meanwhile.
 */
export async function resetSequenceFailed(
  node: SimNode,
  actorId: string,
  memberIdDecimal: string,
  sleep: (simMs: number) => Promise<boolean>,
): Promise<void> {
  const bootId = node.state.bootId;
  const record = boot(node, bootId);
  const up = (): boolean => node.state.bootId === bootId && node.state.mode === 'running';
  const sequence = (action: number, error?: string): Buffer => {
    const w = new ProtoWriter().string(1, 'reset').uint(2, action);
    // SequenceEvent.error = 3: common.Error { code = 1 (FATAL = 0, left out as proto3 does); message = 2 }
    // (api/machine/machine.proto@v1.13.9:196-205, api/common/common.proto@v1.13.9:47-57)
    return (error ? w.message(3, new ProtoWriter().string(2, error).finish()) : w).finish();
  };
  publish(node, record, actorId, 'SequenceEvent', sequence(SEQUENCE_START));
  runPhase(node, record, actorId, 'drain', 'cordonAndDrainNode', false);
  if (!(await sleep(CORDON_WAIT_MS)) || !up()) return;
  publish(node, record, actorId, 'TaskEvent', new ProtoWriter().string(1, 'cordonAndDrainNode').uint(2, STOP).finish());
  publish(node, record, actorId, 'PhaseEvent', new ProtoWriter().string(1, 'drain').uint(2, STOP).finish());
  runPhase(node, record, actorId, 'cleanup', 'removeAllPods');
  runPhase(node, record, actorId, 'dbus', 'stopDBus');
  runPhase(node, record, actorId, 'leave', 'leaveEtcd');
  publish(node, record, actorId, 'SequenceEvent', sequence(SEQUENCE_STOP));
  const leave = `failed to leave cluster: 1 error(s) occurred:\n\tfailed to remove member ${memberIdDecimal}: etcdserver: no leader`;
  publish(
    node,
    record,
    actorId,
    'SequenceEvent',
    sequence(SEQUENCE_NOOP, `sequence failed: error running phase 4 in reset sequence: task 1/1: failed, ${leave}`),
  );
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
