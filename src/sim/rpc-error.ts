import { status } from '@grpc/grpc-js';

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

const CODE_NAMES: Record<number, string> = {
  [status.OK]: 'OK',
  [status.CANCELLED]: 'Canceled',
  [status.UNKNOWN]: 'Unknown',
  [status.INVALID_ARGUMENT]: 'InvalidArgument',
  [status.DEADLINE_EXCEEDED]: 'DeadlineExceeded',
  [status.NOT_FOUND]: 'NotFound',
  [status.ALREADY_EXISTS]: 'AlreadyExists',
  [status.PERMISSION_DENIED]: 'PermissionDenied',
  [status.RESOURCE_EXHAUSTED]: 'ResourceExhausted',
  [status.FAILED_PRECONDITION]: 'FailedPrecondition',
  [status.ABORTED]: 'Aborted',
  [status.OUT_OF_RANGE]: 'OutOfRange',
  [status.UNIMPLEMENTED]: 'Unimplemented',
  [status.INTERNAL]: 'Internal',
  [status.UNAVAILABLE]: 'Unavailable',
  [status.DATA_LOSS]: 'DataLoss',
  [status.UNAUTHENTICATED]: 'Unauthenticated',
};

export const codeName = (code: number): string => CODE_NAMES[code] ?? `Code(${code})`;

export function codeFromName(name: string): status {
  const entry = Object.entries(CODE_NAMES).find(([, n]) => n === name);
  return entry ? (Number(entry[0]) as status) : status.UNKNOWN;
}

export const unknown = (message: string): RpcError => new RpcError(status.UNKNOWN, message);
export const failedPrecondition = (message: string): RpcError => new RpcError(status.FAILED_PRECONDITION, message);
export const unimplemented = (message: string): RpcError => new RpcError(status.UNIMPLEMENTED, message);
export const invalidArgument = (message: string): RpcError => new RpcError(status.INVALID_ARGUMENT, message);
export const permissionDenied = (message: string): RpcError => new RpcError(status.PERMISSION_DENIED, message);
export const notFound = (message: string): RpcError => new RpcError(status.NOT_FOUND, message);
export const alreadyExists = (message: string): RpcError => new RpcError(status.ALREADY_EXISTS, message);
export const unavailable = (message: string): RpcError => new RpcError(status.UNAVAILABLE, message);
export const deadlineExceeded = (): RpcError => new RpcError(status.DEADLINE_EXCEEDED, 'context deadline exceeded');
