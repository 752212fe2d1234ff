/**
 * Events: the node's service state changes (ServiceStateEvent), the events of the sequences it runs (SequenceEvent,
 * PhaseEvent, TaskEvent: machine-events.ts) and its machine status (MachineStatusEvent), after one empty event that
 * tells the client the stream is open. A tail replays the last `tailEvents` events (a negative tail: the whole ring,
 * at most 990 here), or else those of the last `tailSeconds`, and the latest status; then each change is sent as it
 * happens, until the caller goes or the node does. `withActorId` sends only the events that carry that actor id, the
 * tail counted before (so no status: it carries none); `tailId` is not followed. As machined's Events
 * (v1alpha1_server.go@v1.13.9:1447-1508), the stream only reads what the node published (Watch reads the events
 * ring: v1alpha1_events.go@v1.13.9:104-211): a watcher that comes later, with a tail, sees the same history.
 */
import { randomUUID } from 'node:crypto';
import type { CallContext, Send } from './api.js';
import { encodeMachineStatus, machineStatus, statusKey } from './machine-status.js';
import type { SimNode } from './node.js';
import type { NodeState } from './node-state.js';
import { encodeRuntimeEvent, runtimeEvents, type RuntimeEvent } from './machine-events.js';
import { ProtoWriter } from '../talos/proto-wire.js';

const SERVICE_ACTIONS: Record<string, number> = {
  Initialized: 0,
  Preparing: 1,
  Waiting: 2,
  Running: 3,
  Stopping: 4,
  Finished: 5,
  Failed: 6,
  Skipped: 7,
  Starting: 8,
};

const POLL_MS = 50;

/** ServiceHealth { unknown = 1; healthy = 2; last_message = 3; last_change = 4 } of a logged event. */
function serviceHealth(health: NodeState['eventLog'][number]['health']): Buffer {
  if (!health || health.unknown) return new ProtoWriter().bool(1, true).finish();
  const w = new ProtoWriter().bool(2, health.healthy).string(3, health.lastMessage);
  if (health.lastChange <= 0) return w.finish();
  const seconds = Math.floor(health.lastChange / 1000);
  return w
    .message(
      4,
      new ProtoWriter()
        .uint(1, seconds)
        .uint(2, (health.lastChange % 1000) * 1e6)
        .finish(),
    )
    .finish();
}

type LogEntry = NodeState['eventLog'][number];
type Entry = { service: LogEntry } | { runtime: RuntimeEvent };
const entryId = (e: Entry): string => ('service' in e ? e.service.id : e.runtime.id);
const entryTs = (e: Entry): number => ('service' in e ? e.service.ts : (e.runtime.ts ?? 0));

/**
 * The service events and the sequences' events of boot `bootId`, in the order they were published. machined's events
 * ring is memory (v1alpha1_events.go@v1.13.9:84-101), so the service events of an earlier boot are not in it.
 */
function timeline(node: SimNode, bootId: string): Entry[] {
  const bootedAt = node.state.bootId === bootId ? (node.state.bootedAt ?? 0) : 0;
  const log = node.state.eventLog.filter((e) => e.ts >= bootedAt);
  const runtime = runtimeEvents(node, bootId);
  if (runtime.length === 0) return log.map((service) => ({ service }));
  const known = new Set(log.map((e) => e.id));
  const entries: Entry[] = runtime.filter((r) => !r.after || !known.has(r.after)).map((r) => ({ runtime: r }));
  const byAfter = new Map<string, RuntimeEvent[]>();
  for (const r of runtime)
    if (r.after && known.has(r.after)) byAfter.set(r.after, [...(byAfter.get(r.after) ?? []), r]);
  for (const service of log) {
    entries.push({ service });
    for (const r of byAfter.get(service.id) ?? []) entries.push({ runtime: r });
  }
  return entries;
}

function payload(entry: Entry): { data: { type_url: string; value: Buffer }; id: string; actorId: string } {
  if ('runtime' in entry) {
    const { typeUrl, value } = encodeRuntimeEvent(entry.runtime);
    return { data: { type_url: typeUrl, value }, id: entry.runtime.id, actorId: entry.runtime.actorId };
  }
  const event = entry.service;
  const value = new ProtoWriter()
    .string(1, event.service)
    .uint(2, SERVICE_ACTIONS[event.state] ?? 0)
    .string(3, event.msg)
    .message(4, serviceHealth(event.health))
    .finish();
  return { data: { type_url: 'talos/runtime/machine.ServiceStateEvent', value }, id: event.id, actorId: '' };
}

export interface EventsRequest {
  tailEvents?: number;
  tailSeconds?: number;
  withActorId?: string;
}

/** Where a watcher starts in the timeline `entries` (Watch's initial position, v1alpha1_events.go@v1.13.9:126-156). */
function tailStart(entries: Entry[], req: EventsRequest): number {
  const oldest = Math.max(0, entries.length - 990);
  const tail = req.tailEvents ?? 0;
  if (tail !== 0) return tail < 0 ? oldest : Math.max(oldest, entries.length - tail);
  const seconds = req.tailSeconds ?? 0;
  if (seconds === 0) return entries.length;
  // the events published after now minus that many seconds
  const since = Date.now() - seconds * 1000;
  const i = entries.findIndex((e) => entryTs(e) > since);
  return i < 0 ? entries.length : Math.max(oldest, i);
}

export async function events(node: SimNode, req: EventsRequest, ctx: CallContext, send: Send): Promise<void> {
  // the hello carries the actor id asked for (sendEmptyEvent, v1alpha1_server.go@v1.13.9:1510-1517)
  await send({ data: {}, id: randomUUID(), actorId: req.withActorId ?? '' });
  // the boot this stream belongs to: once the node goes down (or is seen up again with another boot id) it ends,
  // as apid's stream ends when stopAllServices stops apid
  const bootId = node.state.bootId;
  const first = timeline(node, bootId);
  const history = (req.tailEvents ?? 0) !== 0 || (req.tailSeconds ?? 0) !== 0;
  let next = tailStart(first, req);
  let lastId = first[next - 1] ? entryId(first[next - 1]!) : undefined;
  const actor = req.withActorId ?? '';
  // the machine status: a tail replays the latest one published, then each change is sent as it happens
  let status = machineStatus(node);
  let statusSent = history ? '' : statusKey(status);
  const sendStatus = async (asOf?: string): Promise<void> => {
    if (actor) return;
    status = machineStatus(node, asOf);
    if (statusKey(status) === statusSent) return;
    statusSent = statusKey(status);
    await send({
      data: { type_url: 'talos/runtime/machine.MachineStatusEvent', value: encodeMachineStatus(status) },
      id: randomUUID(),
      actorId: '',
    });
  };
  while (!ctx.signal.aborted) {
    // the reset's phases that stop the services were published as the node went (node.ts beginReset); a node only
    // out of reach (a network fault) has not gone down, and has published none of them
    const gone = !node.reachable || node.state.bootId !== bootId;
    // the status as it stands: still this boot's while a reset that took the node down has not finished
    const statusNow = !gone || (node.state.pendingReset !== null && node.state.bootId === bootId);
    const entries = timeline(node, bootId);
    const start = lastId ? entries.findIndex((e) => entryId(e) === lastId) + 1 : next;
    for (const entry of entries.slice(start)) {
      // going down: only the sequences' last events still reach the client, not another boot's services
      if (gone && 'service' in entry) continue;
      const message = payload(entry);
      lastId = entryId(entry);
      if (actor && message.actorId !== actor) continue;
      await send(message);
      // a sequence's START (or its FATAL end) changes the machine's stage (machine_status.go@v1.13.9:404-430): the
      // stage as of that event is published next, also when a tail replays it
      if (statusNow && 'runtime' in entry && entry.runtime.kind === 'SequenceEvent') await sendStatus(entry.runtime.id);
    }
    if (gone) return;
    await sendStatus();
    next = entries.length;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}
