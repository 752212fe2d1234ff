/**
 * A drill ground's client that loses answers on purpose, for the Reset checks (reset-resume-check and
 * reset-silence-check): the first `failures` Version reads of `node` time out as a loaded machine's do, and with
 * `swallowReset` the node answers the Reset and never acts on it (a node that has not wiped yet, for as long as the
 * check looks). For the checks of a destructive call whose answer was lost (the *-interrupted-landed tests):
 * losingFirstAnswer. And the effect deps that run the effects with it.
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
export function losingFirstAnswer(
  client: TalosClient,
  call: DestructiveCall,
  failure: RpcFailure = DEADLINE,
): TalosClient {
  let lose = 1;
  return new Proxy(client, {
    get(target, prop, receiver) {
      const real = Reflect.get(target, prop, receiver) as unknown;
      if (prop !== call || typeof real !== 'function') return real;
      return async (...args: unknown[]): Promise<NodeResult<unknown>> => {
        const answer = (await real.apply(target, args)) as NodeResult<unknown>;
        return lose-- > 0 ? { node: answer.node, ok: false, error: failure } : answer;
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
  let left = failures;
  return new Proxy(client, {
    get(target, prop, receiver) {
      if (prop === 'reset' && opts.swallowReset) {
        const reset: TalosClient['reset'] = async () => ({ node, ok: true as const, value: { actorId: '' } });
        return reset;
      }
      if (prop !== 'version') return Reflect.get(target, prop, receiver) as unknown;
      const version: TalosClient['version'] = async (nodes, callOpts) => {
        const results = await target.version(nodes, callOpts);
        return results.map((r) =>
          r.node === node && left-- > 0
            ? {
                node,
                ok: false as const,
                error: { code: 4, codeName: 'DeadlineExceeded', message: 'context deadline exceeded' },
              }
            : r,
        );
      };
      return version;
    },
  });
}

export function effectDepsOf(g: Ground, client: TalosClient): EffectDeps {
  return {
    client,
    connectMaintenance: null,
    incident: g.incident,
    journal: g.journal,
    operator: g.operator,
    statusTimeoutMs: 1000,
  };
}
