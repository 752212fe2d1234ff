/**
 * Events: the node's service state changes (ServiceStateEvent) and its machine status (MachineStatusEvent), after
 * one empty event that tells the client the stream is open. A tail replays the last `tailEvents` events (a negative
 * tail: the whole ring, at most 990 here) and the latest status; then each change is sent as it happens, until the
 * caller goes or the node does.
 */
import { randomUUID } from 'node:crypto';
import type { CallContext, Send } from './api.js';
import { encodeMachineStatus, machineStatus, statusKey } from './machine-status.js';
import type { SimNode } from './node.js';
import type { NodeState } from './node-state.js';
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

export async function events(node: SimNode, req: { tailEvents?: number }, ctx: CallContext, send: Send): Promise<void> {
  await send({ data: {}, id: randomUUID(), actorId: '' });
  const log = node.state.eventLog;
  const tail = req.tailEvents ?? 0;
  let next = tail < 0 ? Math.max(0, log.length - 990) : Math.max(0, log.length - tail);
  let lastId = log[next - 1]?.id;
  // the machine status: a tail replays the latest one published, then each change is sent as it happens
  let status = machineStatus(node);
  let statusSent = tail === 0 ? statusKey(status) : '';
  const sendStatus = async (): Promise<void> => {
    status = machineStatus(node);
    if (statusKey(status) === statusSent) return;
    statusSent = statusKey(status);
    await send({
      data: { type_url: 'talos/runtime/machine.MachineStatusEvent', value: encodeMachineStatus(status) },
      id: randomUUID(),
      actorId: '',
    });
  };
  while (!ctx.signal.aborted && node.reachable) {
    const start = lastId ? log.findIndex((e) => e.id === lastId) + 1 : next;
    for (const event of log.slice(start)) {
      const value = new ProtoWriter()
        .string(1, event.service)
        .uint(2, SERVICE_ACTIONS[event.state] ?? 0)
        .string(3, event.msg)
        .message(4, serviceHealth(event.health))
        .finish();
      await send({
        data: { type_url: 'talos/runtime/machine.ServiceStateEvent', value },
        id: event.id,
        actorId: '',
      });
      lastId = event.id;
    }
    await sendStatus();
    next = log.length;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}
