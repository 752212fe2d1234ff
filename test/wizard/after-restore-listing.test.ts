/**
 * Step 10's node list when discovery cannot name the workers, at the effect (src/wizard/after-restore.ts): an empty
 * Members list (discovery disabled), a node that does not serve the call (Unimplemented), and a client without the
 * call each give the control-plane nodes only with workersListed false and one sentence saying why, so the machine
 * asks for the workers; a list with a worker merges it after the control-plane nodes.
 */
import { describe, expect, it } from 'vitest';
import { createActor, toPromise } from 'xstate';
import { afterRestoreActors } from '../../src/wizard/after-restore.js';
import type { EffectDeps } from '../../src/wizard/deps.js';
import type { AfterRestoreListing } from '../../machines/after-restore/types.js';
import type { ClusterMember, NodeResult, TalosClient } from '../../src/talos/types.js';

const CP = ['127.0.0.2', '127.0.0.3', '127.0.0.4'];

/** A client with only the discovery call (the node reads for hostnames fail, and the listing goes on without them). */
function depsWith(clusterMembers?: (node: string) => Promise<NodeResult<ClusterMember[]>>): EffectDeps {
  const client = { ...(clusterMembers ? { clusterMembers } : {}) } as unknown as TalosClient;
  return { client, connectMaintenance: null, operator: 'tester', statusTimeoutMs: 200 } as unknown as EffectDeps;
}

async function listing(deps: EffectDeps): Promise<AfterRestoreListing> {
  const actor = createActor(afterRestoreActors(deps, { pollMs: 5 } as never).listAfterRestoreNodes, {
    input: { controlPlane: CP },
  });
  actor.start();
  return toPromise(actor);
}

const controlPlaneOnly = CP.map((node) => ({ node, machineType: 'controlplane', hostname: null }));

describe('step 10 listing without discovery', () => {
  it('an empty Members list (discovery disabled): the control-plane nodes only, and why', async () => {
    const r = await listing(depsWith(async (node) => ({ node, ok: true, value: [] })));
    expect(r).toEqual({
      nodes: controlPlaneOnly,
      source: `The workers could not be listed (${CP[2]} lists no discovery members (is cluster discovery disabled?)).`,
      workersListed: false,
    });
  });

  it('a node that does not serve the call, and a client without it, say so in the sentence', async () => {
    const unimplemented = await listing(
      depsWith(async (node) => ({
        node,
        ok: false,
        error: { code: 12, codeName: 'Unimplemented', message: 'this node does not serve the COSI resource API' },
      })),
    );
    expect(unimplemented.workersListed).toBe(false);
    expect(unimplemented.source).toBe(
      `The workers could not be listed (${CP[2]}: this node does not serve the COSI resource API).`,
    );
    const without = await listing(depsWith());
    expect(without.workersListed).toBe(false);
    expect(without.source).toBe(
      'The workers could not be listed (this talos-dr cannot read the discovery members yet).',
    );
  });

  it('a discovered worker is listed after the control-plane nodes', async () => {
    const r = await listing(
      depsWith(async (node) => ({
        node,
        ok: true,
        value: [
          { id: 'w1', hostname: 'worker-1', addresses: ['127.0.0.9'], machineType: 'worker' } as ClusterMember,
          { id: 'c1', hostname: 'cp-1', addresses: [CP[0] as string], machineType: 'controlplane' } as ClusterMember,
        ],
      })),
    );
    expect(r.workersListed).toBe(true);
    expect(r.nodes).toEqual([...controlPlaneOnly, { node: '127.0.0.9', machineType: 'worker', hostname: 'worker-1' }]);
  });
});
