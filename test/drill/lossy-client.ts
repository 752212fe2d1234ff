/**
 * A drill ground's client that loses answers on purpose, for the Reset checks (reset-resume-check and
 * reset-silence-check): the first `failures` Version reads of `node` time out as a loaded machine's do, and with
 * `swallowReset` the node answers the Reset and never acts on it (a node that has not wiped yet, for as long as the
 * check looks). And the effect deps that run resetNode with it.
 */
import type { EffectDeps } from '../../src/wizard/deps.js';
import type { TalosClient } from '../../src/talos/types.js';
import type { Ground } from './harness.js';

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
