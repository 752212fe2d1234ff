/**
 * A drill ground's client that loses answers on purpose. For the checks of a destructive call whose answer was lost
 * (the *-interrupted-landed tests): losingFirstAnswer (the node got it), losingFirstRequest (it never left). For reads
 * that time out as a loaded machine's do: losingReads, and losingVersionReads for the Reset checks
 * (reset-resume-check and reset-silence-check), whose `swallowReset` node answers the Reset and never acts on it (a
 * node that has not wiped yet, for as long as the check looks). And the effect deps that run the effects with it.
 */
import type { EffectDeps } from '../../src/wizard/deps.js';
import type { NodeResult, RpcFailure, TalosClient } from '../../src/talos/types.js';
import type { Ground } from './harness.js';

/** grpc-js's failure for a call past its deadline, as a loaded link gives it. */
export const DEADLINE: RpcFailure = { code: 4, codeName: 'DeadlineExceeded', message: 'context deadline exceeded' };
/** grpc-js's failures when the connection is cut mid-call, and when the call is cancelled */
export const CUT: RpcFailure = { code: 14, codeName: 'Unavailable', message: 'read ECONNRESET' };
export const CANCELLED: RpcFailure = { code: 1, codeName: 'Cancelled', message: 'Call cancelled' };

/** The calls to one node that change it, whose answer a test loses. */
type DestructiveCall =
  | 'reset'
  | 'reboot'
  | 'serviceRestart'
  | 'etcdAlarmDisarm'
  | 'etcdDefragment'
  | 'etcdRemoveMemberById'
  | 'etcdLeaveCluster';

/**
 * The client with the answer to the first `call` lost: the call reaches the node, which acts on it, and `failure`
 * comes back instead of its answer (a deadline, a cancellation, a connection cut mid-call).
 */
export const losingFirstAnswer = (client: TalosClient, call: DestructiveCall, failure = DEADLINE): TalosClient =>
  losingFirst(client, call, failure, true);

/** The client with the first `call` lost before it left (a deadline before the request was written): never sent. */
export const losingFirstRequest = (client: TalosClient, call: DestructiveCall, failure = DEADLINE): TalosClient =>
  losingFirst(client, call, failure, false);

function losingFirst(client: TalosClient, call: DestructiveCall, failure: RpcFailure, reached: boolean): TalosClient {
  let lose = 1;
  return new Proxy(client, {
    get(target, prop, receiver) {
      const real = Reflect.get(target, prop, receiver) as unknown;
      if (prop !== call || typeof real !== 'function') return real;
      return async (node: string, ...rest: unknown[]): Promise<NodeResult<unknown>> => {
        if (lose-- <= 0) return (await real.call(target, node, ...rest)) as NodeResult<unknown>;
        if (reached) await real.call(target, node, ...rest);
        return { node, ok: false, error: failure };
      };
    },
  });
}

/**
 * The client of a run killed right after it sent `call`: every such call reaches the node, which acts on it, and its
 * answer never comes (the process is gone before the "after" line; the pending call is never settled).
 */
export function answerNeverComes(client: TalosClient, call: DestructiveCall | 'bootstrap'): TalosClient {
  return new Proxy(client, {
    get(target, prop, receiver) {
      const real = Reflect.get(target, prop, receiver) as unknown;
      if (prop !== call || typeof real !== 'function') return real;
      return async (...args: unknown[]): Promise<never> => {
        await real.apply(target, args);
        return new Promise<never>(() => {});
      };
    },
  });
}

/** The reads of several nodes at once whose answers a test can lose. */
type Read = 'version' | 'serviceList' | 'etcdMemberList';

/** How many more reads to lose; a test may set it again later (a read lost only on a retry). */
export interface Losses {
  left: number;
}

/**
 * The client with the next `losses.left` answers of `read` lost as a loaded machine's read times out (DEADLINE): of
 * `node` only, or of every node asked; with `when`, only reads made while it holds (asked as the read is sent).
 */
export function losingReads(
  client: TalosClient,
  read: Read,
  losses: Losses,
  opts: { node?: string; when?: () => boolean } = {},
): TalosClient {
  return new Proxy(client, {
    get(target, prop, receiver) {
      const real = Reflect.get(target, prop, receiver) as unknown;
      if (prop !== read || typeof real !== 'function') return real;
      return async (...args: unknown[]): Promise<NodeResult<unknown>[]> => {
        const now = opts.when?.() ?? true;
        const results = (await real.apply(target, args)) as NodeResult<unknown>[];
        return results.map((r) =>
          now && (opts.node === undefined || r.node === opts.node) && losses.left-- > 0
            ? { node: r.node, ok: false, error: DEADLINE }
            : r,
        );
      };
    },
  });
}

export function losingVersionReads(
  client: TalosClient,
  node: string,
  failures: number,
  opts: { swallowReset?: boolean } = {},
): TalosClient {
  const lossy = losingReads(client, 'version', { left: failures }, { node });
  if (!opts.swallowReset) return lossy;
  return new Proxy(lossy, {
    get(target, prop, receiver) {
      if (prop !== 'reset') return Reflect.get(target, prop, receiver) as unknown;
      const reset: TalosClient['reset'] = async () => ({ node, ok: true as const, value: { actorId: '' } });
      return reset;
    },
  });
}

/** Talos's answer to a call the certificate's role does not allow (Read needs os:admin): src/sim/rbac.ts's. */
export const NOT_AUTHORIZED: RpcFailure = { code: 7, codeName: 'PermissionDenied', message: 'not authorized' };

/**
 * The client with `node` answering, but with nothing that dates its last boot: it lists no services (as a node does
 * before its services are loaded), so no service history says when it booted, and it refuses every read of its boot
 * id (any call named for the boot id, e.g. Read of /proc/sys/kernel/random/boot_id) as a certificate without os:admin
 * is refused. Every other call is the node's own.
 */
export function undatable(client: TalosClient, node: string): TalosClient {
  return new Proxy(client, {
    get(target, prop, receiver) {
      const real = Reflect.get(target, prop, receiver) as unknown;
      if (typeof real !== 'function') return real;
      if (prop === 'serviceList') {
        const serviceList: TalosClient['serviceList'] = async (nodes, opts) =>
          (await target.serviceList(nodes, opts)).map((r) => (r.node === node ? { node, ok: true, value: [] } : r));
        return serviceList;
      }
      if (typeof prop !== 'string' || !/boot.?id|^read$/i.test(prop)) return real;
      return async (n: string, ...rest: unknown[]): Promise<NodeResult<unknown>> =>
        n === node
          ? { node, ok: false, error: NOT_AUTHORIZED }
          : ((await real.call(target, n, ...rest)) as NodeResult<unknown>);
    },
  });
}

/**
 * The effects' deps over `client`. statusTimeoutMs is the deadline of every status read: 1 s unless a test says
 * otherwise (a read that misses it is no evidence, and costs the check one more poll).
 */
export function effectDepsOf(g: Ground, client: TalosClient, statusTimeoutMs = 1000): EffectDeps {
  return {
    client,
    connectMaintenance: null,
    incident: g.incident,
    journal: g.journal,
    operator: g.operator,
    statusTimeoutMs,
  };
}
