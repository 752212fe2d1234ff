/**
 * The runtime events machined publishes while it runs a sequence (SequenceEvent, PhaseEvent, TaskEvent), here those
 * of a Reset: the controller publishes the sequence's START, then each phase's START, each task's START and STOP and
 * the phase's STOP (talos: internal/app/machined/pkg/runtime/v1alpha1/v1alpha1_controller.go@v1.13.9:259-392), all
 * under the context Reset put its actor id in (internal/app/machined/internal/server/v1alpha1/
 * v1alpha1_server.go@v1.13.9:736-750; the id is taken from that context at publication, v1alpha1_events.go@v1.13.9:
 * 214-220). `talosctl reset` waits for the TaskEvent "stopAllServices" (cmd/talosctl/pkg/talos/action/
 * tracker.go@v1.13.9:50-58) and shows the events that carry its actor id (node.go@v1.13.9:247-308).
 *
 * machined puts each event in its events ring as it publishes it (Publish, v1alpha1_events.go@v1.13.9:214-229), and
 * a watcher only reads that ring, from where its tail says (Watch, :104-211): what is in it does not depend on who
 * watches. So the simulated node records its events as it runs its reset, in its own state (NodeState.runtimeEvents,
 * saved with it), and the Events stream (api-events.ts) only replays them. The ring is memory: a node that boots
 * again has none of the last boot's (each record is kept with the boot id it was published in; the last boot's stays
 * readable here, not saved, for a stream that was open when the node went down). They are published in two parts:
 * the phases before the services stop as Reset answers (the node still answers with its old state for a moment,
 * node.ts; a graceful reset whose drain cannot cordon publishes those after the drain's minute), and the phases that
 * stop the services, up to stopAllServices' START, as the node goes down (node.ts beginReset; apid is one of the
 * services stopAllServices stops, so nothing later reaches a client; the wipe and the reboot are not seen). All of
 * them belong to the boot the reset ran in.
 */
import { randomUUID } from 'node:crypto';
import type { SimNode } from './node.js';
import type { RuntimeEventRecord } from './node-state.js';
import { ProtoWriter } from '../talos/proto-wire.js';

export type RuntimeEvent = RuntimeEventRecord;

/** The last boot's events, kept for a stream that was open as the node went down (not saved). */
const lastBoot = new WeakMap<SimNode, { bootId: string; events: RuntimeEvent[] }>();

/** SequenceEvent.Action, PhaseEvent.Action, TaskEvent.Action (api/machine/machine.proto@v1.13.9:196-223). */
const SEQUENCE_NOOP = 0;
const SEQUENCE_START = 1;
const SEQUENCE_STOP = 2;
const START = 0;
const STOP = 1;
const RING_READABLE = 990;
/** common.Error's codes (api/common/common.proto@v1.13.9:47-51). */
const FATAL = 0;
const LOCKED = 1;

/** The current boot's record, started (and the last boot's put aside) on its first event. */
function current(node: SimNode): RuntimeEvent[] {
  const bootId = node.state.bootId;
  const saved = node.state.runtimeEvents;
  if (saved?.bootId === bootId) return saved.events;
  if (saved) lastBoot.set(node, saved);
  node.state.runtimeEvents = { bootId, events: [] };
  return node.state.runtimeEvents.events;
}

function publish(
  node: SimNode,
  actorId: string,
  kind: RuntimeEvent['kind'],
  name: string,
  action: number,
  error?: string,
  errorCode = FATAL,
): void {
  const event: RuntimeEvent = { id: randomUUID(), actorId, kind, name, action, ts: Date.now() };
  if (error !== undefined) event.error = error;
  if (error !== undefined && errorCode !== FATAL) event.errorCode = errorCode;
  const after = node.state.eventLog.at(-1)?.id;
  if (after) event.after = after;
  const events = current(node);
  events.push(event);
  // the ring holds 1000 events, of which 990 can be read (v1alpha1_controller.go@v1.13.9:50, NewEvents
  // v1alpha1_events.go@v1.13.9:79-101): a node that ran many sequences keeps the latest
  if (events.length > RING_READABLE) events.splice(0, events.length - RING_READABLE);
}

/** One phase as the controller runs it: its START, its one task's START and STOP, its STOP. */
function runPhase(node: SimNode, actorId: string, phase: string, task: string, end = true): void {
  publish(node, actorId, 'PhaseEvent', phase, START);
  publish(node, actorId, 'TaskEvent', task, START);
  if (!end) return;
  publish(node, actorId, 'TaskEvent', task, STOP);
  publish(node, actorId, 'PhaseEvent', phase, STOP);
}

/** The event as the stream sends it: its type URL and its message's bytes. */
export function encodeRuntimeEvent(event: RuntimeEvent): { typeUrl: string; value: Buffer } {
  const w = new ProtoWriter().string(1, event.name).uint(2, event.action);
  // SequenceEvent.error = 3: common.Error { code = 1 (FATAL = 0, left out as proto3 does); message = 2 }
  // (api/machine/machine.proto@v1.13.9:196-205, api/common/common.proto@v1.13.9:47-57)
  if (event.error !== undefined) {
    w.message(
      3,
      new ProtoWriter()
        .uint(1, event.errorCode ?? FATAL)
        .string(2, event.error)
        .finish(),
    );
  }
  return { typeUrl: `talos/runtime/machine.${event.kind}`, value: w.finish() };
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

/** A reset sequence runs in this boot: its START published, its STOP not yet. */
function resetRunning(node: SimNode): boolean {
  let running = false;
  for (const e of runtimeEvents(node)) {
    if (e.kind !== 'SequenceEvent' || e.name !== 'reset') continue;
    if (e.action === SEQUENCE_START) running = true;
    else if (e.action === SEQUENCE_STOP) running = false;
  }
  return running;
}

/**
 * Reset answered with `actorId` and the node took it (node.reset recorded it as pending): the sequence starts, its
 * START, then the phases before the services stop. The actor id is kept with the pending reset, for the phases
 * published as the node goes down (resetWentDown), also by a simulator resumed from a saved state. A Reset while one
 * runs starts nothing (resetLocked).
 */
export function resetSequenceStarted(node: SimNode, actorId: string, opts: ResetOptions): void {
  const pending = node.state.pendingReset;
  if (!pending || pending.actorId !== undefined) return;
  pending.actorId = actorId;
  pending.graceful = opts.graceful;
  publish(node, actorId, 'SequenceEvent', 'reset', SEQUENCE_START);
  const before = resetPhases(opts, node.isControlPlane).before;
  if (!opts.graceful || node.kubernetesWritable) {
    for (const [phase, task] of before) runPhase(node, actorId, phase, task);
    return;
  }
  // graceful without quorum, where the leave does not need it (a member whose etcd does not run: api.ts): the drain
  // waits a minute for a cordon the API server cannot write, its error only logged, then the sequence goes on
  // (resetSequenceFailed below has the upstream lines)
  runPhase(node, actorId, 'drain', 'cordonAndDrainNode', false);
  node.holdReset(CORDON_WAIT_MS, () => {
    publish(node, actorId, 'TaskEvent', 'cordonAndDrainNode', STOP);
    publish(node, actorId, 'PhaseEvent', 'drain', STOP);
    for (const [phase, task] of before.slice(1)) runPhase(node, actorId, phase, task);
  });
}

/**
 * A Reset while a reset sequence runs in this boot (pending, or failing in its drain): the controller's priority lock
 * refuses it, as a reset takes over only a boot (sequencer.go@v1.13.9:56-74,83-100; v1alpha1_priority_lock.go@
 * v1.13.9:95-98), and Run publishes a SequenceEvent NOOP with Error{LOCKED, "sequence not started: locked"} under no
 * actor id (v1alpha1_controller.go@v1.13.9:119-133, errors.go@v1.13.9:15); Reset has already answered and its
 * goroutine only logs the error (v1alpha1_server.go@v1.13.9:738-744). The running reset goes on as it was asked.
 * True when the Reset is refused so.
 */
export function resetLocked(node: SimNode): boolean {
  if (!node.state.pendingReset && !resetRunning(node)) return false;
  publish(node, '', 'SequenceEvent', 'reset', SEQUENCE_NOOP, 'sequence not started: locked', LOCKED);
  return true;
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
  if (resetLocked(node)) return;
  const bootId = node.state.bootId;
  const up = (): boolean => node.state.bootId === bootId && node.state.mode === 'running';
  publish(node, actorId, 'SequenceEvent', 'reset', SEQUENCE_START);
  runPhase(node, actorId, 'drain', 'cordonAndDrainNode', false);
  if (!(await sleep(CORDON_WAIT_MS)) || !up()) return;
  publish(node, actorId, 'TaskEvent', 'cordonAndDrainNode', STOP);
  publish(node, actorId, 'PhaseEvent', 'drain', STOP);
  runPhase(node, actorId, 'cleanup', 'removeAllPods');
  runPhase(node, actorId, 'dbus', 'stopDBus');
  runPhase(node, actorId, 'leave', 'leaveEtcd');
  publish(node, actorId, 'SequenceEvent', 'reset', SEQUENCE_STOP);
  const leave = `failed to leave cluster: 1 error(s) occurred:\n\tfailed to remove member ${memberIdDecimal}: etcdserver: no leader`;
  const failed = `sequence failed: error running phase 4 in reset sequence: task 1/1: failed, ${leave}`;
  publish(node, actorId, 'SequenceEvent', 'reset', SEQUENCE_NOOP, failed);
}

/**
 * The node goes down with its pending reset (node.ts beginReset, as it stops its services): the phases that stop the
 * services, up to stopAllServices' START (the task that takes apid down with the rest), under the reset's actor id
 * (empty for a reset saved before the id was kept).
 */
export function resetWentDown(node: SimNode): void {
  const pending = node.state.pendingReset;
  if (!pending) return;
  const actorId = pending.actorId ?? '';
  const opts = { graceful: pending.graceful ?? false, reboot: pending.reboot, labels: pending.labels };
  const stop = resetPhases(opts, node.isControlPlane).stop;
  stop.forEach(([phase, task], i) => runPhase(node, actorId, phase, task, i < stop.length - 1));
}

/**
 * The stage machined's MachineStatus controller reads from this boot's sequence events (machine_status.go@v1.13.9:
 * 388-475, the stages 404-437): a reset's START makes it RESETTING; a NOOP with a FATAL error, outside a shutdown,
 * REBOOTING ("fatal errors lead to reboot", though a failed Reset's goroutine only logs and the node runs on:
 * v1alpha1_server.go@v1.13.9:738-744), and it stays so until another sequence starts. null: no sequence set it.
 * `asOf`: the stage as of that event (all of this boot's when it is not one of them).
 */
export function sequenceStage(node: SimNode, asOf?: string): 'resetting' | 'rebooting' | null {
  let stage: 'resetting' | 'rebooting' | null = null;
  const events = runtimeEvents(node);
  const upTo = asOf === undefined ? events.length : events.findIndex((e) => e.id === asOf) + 1;
  for (const e of events.slice(0, upTo || events.length)) {
    if (e.kind !== 'SequenceEvent') continue;
    if (e.action === SEQUENCE_START && e.name === 'reset') stage = 'resetting';
    // the NOOP's own sequence is the current one when it is read (:405), so "shutting down" is the NOOP's (:425)
    else if (e.action === SEQUENCE_NOOP && e.error !== undefined && (e.errorCode ?? FATAL) === FATAL) {
      if (e.name !== 'shutdown') stage = 'rebooting';
    }
  }
  return stage;
}

/** The runtime events published in boot `bootId` (the current one unless named), oldest first. */
export function runtimeEvents(node: SimNode, bootId = node.state.bootId): readonly RuntimeEvent[] {
  const saved = node.state.runtimeEvents;
  if (saved?.bootId === bootId) return saved.events;
  const last = lastBoot.get(node);
  return last?.bootId === bootId ? last.events : [];
}
