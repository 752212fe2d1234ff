/**
 * Dmesg: the node's kernel log, one common.Data per record, laid out as machined sends it,
 * `<facility>: <priority %7s>: [<RFC3339Nano>]: <message>` (talos:
 * internal/app/machined/internal/server/v1alpha1/v1alpha1_server.go@v1.14.1:1681-1728), the message keeping the
 * record's newline. machined logs to the kernel log with the "[talos]" prefix (v1alpha1_controller.go@v1.14.1:108),
 * at facility user, priority warning, and every service state change as `service[<id>](<state>): <msg>`
 * (pkg/system/service_runner.go@v1.14.1:92): those are the simulated node's records. `tail` starts after the last
 * record, `follow` keeps the stream open for new ones until the caller goes (go-kmsg reader.go).
 */
import type { CallContext, Send } from './api.js';
import type { SimNode } from './node.js';

interface LogRecord {
  service: string;
  state: string;
  msg: string;
  ts: number;
}

/** Go's time.RFC3339Nano in UTC: trailing zeros of the fraction dropped, no fraction when it is zero. */
export function rfc3339Nano(ms: number): string {
  const iso = new Date(ms).toISOString();
  const [head, fraction = ''] = iso.slice(0, -1).split('.');
  const trimmed = fraction.replace(/0+$/, '');
  return `${head}${trimmed ? `.${trimmed}` : ''}Z`;
}

export function kmsgLine(record: LogRecord): string {
  const message = `[talos] service[${record.service}](${record.state}): ${record.msg}\n`;
  return `user: ${'warning'.padStart(7)}: [${rfc3339Nano(record.ts)}]: ${message}`;
}

/** The records of the current boot, oldest first: every service's state changes. */
function bootRecords(node: SimNode): LogRecord[] {
  return Object.values(node.state.services)
    .flatMap((svc) => svc.events.map((e) => ({ service: svc.id, state: e.state, msg: e.msg, ts: e.ts })))
    .sort((a, b) => a.ts - b.ts);
}

const FOLLOW_POLL_MS = 50;

export async function dmesg(
  node: SimNode,
  req: { follow?: boolean; tail?: boolean },
  ctx: CallContext,
  send: Send,
): Promise<void> {
  const log = node.state.eventLog;
  let lastId = log.at(-1)?.id;
  if (!req.tail) {
    for (const record of bootRecords(node)) await send({ bytes: Buffer.from(kmsgLine(record)) });
  }
  while (req.follow && !ctx.signal.aborted && node.reachable) {
    const start = lastId ? log.findIndex((e) => e.id === lastId) + 1 : 0;
    for (const event of log.slice(start)) {
      await send({ bytes: Buffer.from(kmsgLine(event)) });
      lastId = event.id;
    }
    await new Promise((resolve) => setTimeout(resolve, FOLLOW_POLL_MS));
  }
}
