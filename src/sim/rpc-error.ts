import { status } from '@grpc/grpc-js';
import { CODE_NAMES, codeName } from '../talos/errors.js';

/** A gRPC failure a simulated node returns: the status code and the bare message, exactly as Talos words it. */
export class RpcError extends Error {
  constructor(
    readonly code: status,
    message: string,
  ) {
    super(message);
  }

  /** The Go `err.Error()` form apid puts into `metadata.error` during `nodes` fan-out. */
  goText(): string {
    return `rpc error: code = ${codeName(this.code)} desc = ${this.message}`;
  }
}

// One table of gRPC status names for the client and the simulator: Go's `codes.Code.String()` spelling.
export { codeName };

export function codeFromName(name: string): status {
  const index = CODE_NAMES.indexOf(name as (typeof CODE_NAMES)[number]);
  return index >= 0 ? (index as status) : status.UNKNOWN;
}

export const unknown = (message: string): RpcError => new RpcError(status.UNKNOWN, message);
export const failedPrecondition = (message: string): RpcError => new RpcError(status.FAILED_PRECONDITION, message);
export const unimplemented = (message: string): RpcError => new RpcError(status.UNIMPLEMENTED, message);
export const invalidArgument = (message: string): RpcError => new RpcError(status.INVALID_ARGUMENT, message);
export const permissionDenied = (message: string): RpcError => new RpcError(status.PERMISSION_DENIED, message);
export const notFound = (message: string): RpcError => new RpcError(status.NOT_FOUND, message);
export const alreadyExists = (message: string): RpcError => new RpcError(status.ALREADY_EXISTS, message);
export const unavailable = (message: string): RpcError => new RpcError(status.UNAVAILABLE, message);
export const deadlineExceeded = (message = 'context deadline exceeded'): RpcError =>
  new RpcError(status.DEADLINE_EXCEEDED, message);
