/**
 * What apid decides before a call reaches a node (talos-api-facts §4.1): which node(s) the `node`/`nodes` metadata
 * name, the targets it refuses, the errors a client sees when a target cannot be dialled, and how a handler's
 * RpcError becomes a grpc-js status. The wire (wire-calls.ts) applies them around every handler.
 */
import * as grpc from '@grpc/grpc-js';
import { invalidArgument, RpcError, unavailable } from './rpc-error.js';

export type Route = { kind: 'local' } | { kind: 'one'; target: string } | { kind: 'many'; targets: string[] };

const COSI_PREFIX = '/cosi.';

export function route(metadata: grpc.Metadata, path: string): Route {
  // Node's HTTP/2 layer joins repeated headers with ", "; grpc-go (apid) sees them apart, so split them again.
  const nodes = metadata
    .get('nodes')
    .flatMap((v) => String(v).split(','))
    .map((v) => v.trim())
    .filter((v) => v !== '');
  if (nodes.length > 0) {
    if (path.startsWith(COSI_PREFIX)) throw invalidArgument('one-2-many proxying is not supported for COSI methods');
    nodes.forEach(refuseTargetWithPort);
    return { kind: 'many', targets: nodes };
  }
  const node = metadata
    .get('node')
    .flatMap((v) => String(v).split(','))
    .map((v) => v.trim());
  if (node.length > 1) throw invalidArgument('node metadata must be single-valued');
  if (node.length === 1) {
    refuseTargetWithPort(node[0] ?? '');
    return { kind: 'one', target: node[0] ?? '' };
  }
  return { kind: 'local' };
}

/**
 * apid builds a backend per target and refuses an empty one or one with a port (talos:
 * internal/app/apid/pkg/backend/apid.go@v1.14.1:101-105, `invalid target %q`); the director turns that into
 * Internal (director/director.go@v1.14.1:132-135 and :146-152).
 */
function refuseTargetWithPort(target: string): void {
  const withPort = /^\[[^\]]*\]:\d*$/.test(target) || /^[^:]*:\d*$/.test(target);
  if (target === '' || withPort) throw new RpcError(grpc.status.INTERNAL, `invalid target "${target}"`);
}

export function connectionRefused(target: string): RpcError {
  const host = target.includes(':') ? target : `${target}:50000`;
  return unavailable(
    `connection error: desc = "transport: Error while dialing: dial tcp ${host}: connect: connection refused"`,
  );
}

export function maintenanceHandshakeFailure(): RpcError {
  return unavailable(
    'connection error: desc = "transport: authentication handshake failed: tls: failed to verify certificate: x509: certificate signed by unknown authority"',
  );
}

export function asRpcError(error: unknown): RpcError {
  if (error instanceof RpcError) return error;
  return new RpcError(grpc.status.UNKNOWN, error instanceof Error ? error.message : String(error));
}

export function toServiceError(error: unknown): Partial<grpc.StatusObject> & Error {
  const e = asRpcError(error);
  return Object.assign(new Error(e.message), { code: e.code, details: e.message, metadata: new grpc.Metadata() });
}

export function deadlineOf(call: { getDeadline(): grpc.Deadline }): number {
  const deadline = call.getDeadline();
  if (deadline instanceof Date) return deadline.getTime();
  return Number.isFinite(deadline) ? deadline : Infinity;
}

export function abortOnCancel(call: { on(event: 'cancelled', fn: () => void): unknown }): AbortController {
  const controller = new AbortController();
  call.on('cancelled', () => controller.abort());
  return controller;
}
