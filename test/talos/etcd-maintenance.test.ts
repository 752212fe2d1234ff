/**
 * The calls a member replacement and a NOSPACE clean-up need (issue 15), over the wire to the loopback bench: what
 * each sends (the `nodes` target, the request fields), what it reads back, and how a refusal reads. Messages and
 * field numbers are checked against siderolabs/talos api/machine/machine.proto@v1.12.0:1067-1101 and :426-437.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTalosClient, type GrpcTalosClient } from '../../src/talos/client.js';
import { describeFailure } from '../../src/talos/errors.js';
import { loadTalosconfig } from '../../src/talos/talosconfig.js';
import type { NodeResult } from '../../src/talos/types.js';
import { makePki, NodeFailure, startFakeTalos, writeTalosconfig, type FakeTalos } from './fake-talos.js';

let talos: FakeTalos;
let client: GrpcTalosClient;
/** the alarms the bench's etcd holds, as etcd ids (decimal strings on the wire) */
let alarms: { memberId: string; alarm: string }[] = [];
const requests: { method: string; node: string; request: Record<string, unknown> }[] = [];

const value = <T>(result: NodeResult<T> | undefined): T => {
  if (!result?.ok) throw new Error(`expected success, got ${JSON.stringify(result)}`);
  return result.value;
};

beforeAll(async () => {
  const pki = await makePki();
  const seen = (method: string) => (node: string, request: Record<string, unknown>) => {
    requests.push({ method, node, request });
  };
  talos = await startFakeTalos(pki, {
    unary: {
      EtcdAlarmList: (node, request) => {
        seen('EtcdAlarmList')(node, request);
        // checkControlplane (siderolabs/talos: internal/app/machined/internal/server/v1alpha1/v1alpha1_server.go@v1.12.0:140)
        if (node === 'worker') throw new NodeFailure(12, 'etcd alarm list is only available on control plane nodes');
        return { memberAlarms: alarms };
      },
      EtcdAlarmDisarm: (node, request) => {
        seen('EtcdAlarmDisarm')(node, request);
        const disarmed = alarms;
        alarms = [];
        return { memberAlarms: disarmed };
      },
      EtcdDefragment: (node, request) => {
        seen('EtcdDefragment')(node, request);
        if (node === 'busy') throw new NodeFailure(2, 'failed to defragment etcd: context deadline exceeded');
        return {};
      },
      ServiceRestart: (node, request) => {
        seen('ServiceRestart')(node, request);
        if (request.id !== 'etcd') throw new NodeFailure(2, `service "${String(request.id)}" not found`);
        return { resp: 'Service "etcd" restarted' };
      },
      EtcdLeaveCluster: (node, request) => {
        seen('EtcdLeaveCluster')(node, request);
        return {};
      },
      EtcdForfeitLeadership: (node, request) => {
        seen('EtcdForfeitLeadership')(node, request);
        return { member: 'cp-1' };
      },
    },
  });
  client = createTalosClient(loadTalosconfig({ talosconfig: writeTalosconfig(pki, [talos.address]) }, {}));
});

afterAll(async () => {
  client.close();
  await talos.stop();
});

describe('etcd alarms', () => {
  it('lists the alarms per node with 16-hex-digit member ids, then disarms them all through one node', async () => {
    alarms = [
      { memberId: '18446744073709551615', alarm: 'NOSPACE' },
      { memberId: '2', alarm: 'CORRUPT' },
    ];
    const listed = await client.etcdAlarmList(['cp-1', 'cp-2', 'worker']);
    expect(value(listed[0])).toEqual([
      { memberId: 'ffffffffffffffff', alarm: 'NOSPACE' },
      { memberId: '0000000000000002', alarm: 'CORRUPT' },
    ]);
    expect(value(listed[1])).toHaveLength(2);
    const worker = listed[2];
    expect(worker?.ok).toBe(false);
    if (worker && !worker.ok) expect(describeFailure('worker', worker.error)).toMatch(/is not a control-plane node/);

    const disarmed = await client.etcdAlarmDisarm('cp-2');
    expect(value(disarmed).map((a) => a.alarm)).toEqual(['NOSPACE', 'CORRUPT']);
    expect(value((await client.etcdAlarmList(['cp-1']))[0])).toEqual([]);
    // the disarm went to cp-2 alone
    expect(talos.seen.filter((s) => s.method === 'EtcdAlarmDisarm').map((s) => s.nodes)).toEqual([['cp-2']]);
  });
});

describe('defragment, restart, leave, forfeit', () => {
  it('defragments one node per call and explains a failure', async () => {
    expect(await client.etcdDefragment('cp-3', { timeoutMs: 60_000 })).toEqual({
      node: 'cp-3',
      ok: true,
      value: undefined,
    });
    const busy = await client.etcdDefragment('busy');
    expect(busy.ok).toBe(false);
    if (!busy.ok)
      expect(describeFailure('busy', busy.error, 'the defragmentation')).toMatch(
        /^busy failed the defragmentation: failed to defragment etcd/,
      );
    expect(talos.seen.filter((s) => s.method === 'EtcdDefragment').map((s) => s.nodes)).toEqual([['cp-3'], ['busy']]);
  });

  it("restarts a service by id and returns the node's reply", async () => {
    expect(value(await client.serviceRestart('cp-1', 'etcd'))).toBe('Service "etcd" restarted');
    expect(requests.find((r) => r.method === 'ServiceRestart')?.request).toEqual({ id: 'etcd' });
    const missing = await client.serviceRestart('cp-1', 'nope');
    expect(missing.ok).toBe(false);
  });

  it('sends leave and forfeit to the node named, once, and reads who leads afterwards', async () => {
    expect(await client.etcdLeaveCluster('cp-3')).toEqual({ node: 'cp-3', ok: true, value: undefined });
    expect(value(await client.etcdForfeitLeadership('cp-1'))).toEqual({ member: 'cp-1' });
    const sent = talos.seen.filter((s) => s.method === 'EtcdLeaveCluster' || s.method === 'EtcdForfeitLeadership');
    expect(sent.map((s) => [s.method, s.nodes])).toEqual([
      ['EtcdLeaveCluster', ['cp-3']],
      ['EtcdForfeitLeadership', ['cp-1']],
    ]);
  });
});
