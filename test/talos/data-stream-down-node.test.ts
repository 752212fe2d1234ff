/**
 * A data stream (Copy, EtcdSnapshot) of a node apid cannot reach: apid answers the call with its headers and an in-band
 * error ("Error while dialing … connection refused"). That is the endpoint's answer for that node. It used to count as
 * no answer (the tap hands the message over before node:http2 reports the headers), so the client tried every other
 * endpoint and kept the last one that answered, a powered-off node's in the simulator, where the next Reboot of a
 * healthy node then failed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTalosClient, type GrpcTalosClient } from '../../src/talos/client.js';
import { loadTalosconfig } from '../../src/talos/talosconfig.js';
import { startBench, type Bench } from '../sim/helpers.js';

describe('a raw copy of a node that is down (quorum-intact: cp-3 powered off)', () => {
  let bench: Bench;
  let client: GrpcTalosClient;
  beforeAll(async () => {
    bench = await startBench('quorum-intact', { speed: 200 });
    client = createTalosClient(loadTalosconfig({ talosconfig: bench.sim.talosconfigPath }, {}), {
      defaultTimeoutMs: 3000,
    });
  });
  afterAll(async () => {
    client?.close();
    await bench?.close();
  });

  it("fails with apid's answer for that node, and the next call to a healthy node goes through", async () => {
    const [, cp2, cp3] = bench.sim.nodes as [string, string, string];
    const copy = async () => {
      for await (const chunk of client.copy(cp3, '/var/lib/etcd/member/snap/db')) void chunk;
    };
    await expect(copy()).rejects.toThrow(`Nothing answers on ${cp3}'s Talos API port (connection refused)`);
    // the pool stays on an endpoint that answers, not the powered-off node's
    expect(client.endpointInUse?.startsWith(`${cp3}:`)).toBe(false);
    expect(await client.reboot(cp2)).toMatchObject({ ok: true });
    expect(bench.sim.destructiveCalls().reboot[cp2]).toBe(1);
  });
});
