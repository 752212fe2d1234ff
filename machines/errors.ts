/**
 * How the machine reads a failed actor: the effect layer throws errors carrying a sentence and whether trying again
 * may help. The machine keeps only strings and booleans (they must survive JSON.stringify), never the Error.
 */
import type { Timing } from './recovery-types.js';

export interface ErrorInfo {
  /** one sentence for the user */
  message: string;
  /** a transient failure: worth another attempt after a pause */
  retryable: boolean;
  /** the call may have reached the node (a cut connection after sending): never re-send a destructive one blindly */
  mayHaveLanded: boolean;
  /** the node itself did not answer (rebooting, refused, unreachable): wait for it to answer again, then retry */
  unanswered: boolean;
  /** a restore that did not finish left the node's etcd data directory non-empty: it needs a new wipe and upload */
  restoreFailed?: boolean;
}

export function errorInfo(error: unknown): ErrorInfo {
  if (error && typeof error === 'object') {
    const e = error as {
      message?: unknown;
      retryable?: unknown;
      mayHaveLanded?: unknown;
      unanswered?: unknown;
      restoreFailed?: unknown;
    };
    return {
      message: typeof e.message === 'string' && e.message ? e.message : 'the action failed without saying why',
      retryable: e.retryable === true,
      mayHaveLanded: e.mayHaveLanded === true,
      unanswered: e.unanswered === true,
      ...(e.restoreFailed === true ? { restoreFailed: true } : {}),
    };
  }
  return {
    message: typeof error === 'string' ? error : 'the action failed without saying why',
    retryable: false,
    mayHaveLanded: false,
    unanswered: false,
  };
}

/** Exponential backoff from the first retry delay, capped at 30 s. */
export function backoffDelay(timing: Pick<Timing, 'backoffMs'>, attempts: number): number {
  return Math.min(timing.backoffMs * 2 ** Math.max(0, attempts - 1), 30_000);
}
