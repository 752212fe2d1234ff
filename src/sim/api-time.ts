/**
 * TimeService as machined serves it (talos: internal/app/machined/internal/server/v1alpha1/v1alpha1_time.go@v1.14.1):
 * Time asks the first configured time server (machine.time.servers, else constants.DefaultNTPServer,
 * "time.cloudflare.com": pkg/machinery/constants/constants.go@v1.14.1:1088) and answers with that server's name, the
 * node's clock and the server's time; TimeCheck asks the server the caller names and refuses an empty one (:65-67).
 * The simulator reaches no NTP server (loopback only): the host's clock stands in for the server's answer.
 */
import { parseAllDocuments } from 'yaml';
import type { Payload } from './api.js';
import type { SimNode } from './node.js';
import { timestamp } from './pb.js';
import { invalidArgument } from './rpc-error.js';

const DEFAULT_NTP_SERVER = 'time.cloudflare.com';

/** The first server of machine.time.servers in the node's configuration, if any. */
function configuredTimeServer(node: SimNode): string | undefined {
  if (!node.state.config) return undefined;
  try {
    for (const doc of parseAllDocuments(node.state.config)) {
      if (!('toJS' in doc)) continue;
      const servers = (doc.toJS() as { machine?: { time?: { servers?: unknown } } } | null)?.machine?.time?.servers;
      if (Array.isArray(servers) && typeof servers[0] === 'string') return servers[0];
    }
  } catch {
    // an unreadable configuration has no time servers: the default applies, as in Talos
  }
  return undefined;
}

function timeAnswer(node: SimNode, server: string): Payload[] {
  const now = Date.now();
  // localtime is the node's clock (off by its clockOffsetMs), remotetime the server's (the host's here)
  return [{ server, localtime: timestamp(now + (node.state.clockOffsetMs ?? 0)), remotetime: timestamp(now) }];
}

export function time(node: SimNode): Payload[] {
  return timeAnswer(node, configuredTimeServer(node) ?? DEFAULT_NTP_SERVER);
}

export function timeCheck(node: SimNode, req: { server?: string }): Payload[] {
  if (!req.server) throw invalidArgument('ntp server is required');
  return timeAnswer(node, req.server);
}
