import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTalosClient, TalosRpcError, type GrpcTalosClient } from '../../src/talos/client.js';
import * as errorsModule from '../../src/talos/errors.js';
import { classifyFailure, describeFailure, failureFromMetadata } from '../../src/talos/errors.js';
import { issueClientCert } from '../../src/talos/pki.js';
import { loadTalosconfig } from '../../src/talos/talosconfig.js';
import type { NodeResult } from '../../src/talos/types.js';
import {
  closedPort,
  makePki,
  NO_ANSWER,
  NodeFailure,
  startFakeTalos,
  writeTalosconfig,
  type FakeTalos,
  type TestPki,
} from './fake-talos.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let pki: TestPki;
let talos: FakeTalos;
let client: GrpcTalosClient;
/** what the bench streams as the "snapshot": odd-sized chunks, as the node's chunker may produce */
const snapshotBytes = randomBytes(300_000);

function clientFor(endpoints: string[], options = {}): GrpcTalosClient {
  return createTalosClient(loadTalosconfig({ talosconfig: writeTalosconfig(pki, endpoints) }, {}), options);
}

async function* chunked(bytes: Buffer, size: number) {
  for (let offset = 0; offset < bytes.length; offset += size) yield bytes.subarray(offset, offset + size);
}

beforeAll(async () => {
  pki = await makePki();
  talos = await startFakeTalos(pki, {
    unary: {
      Version: (node) => {
        if (node === 'no-rbac') throw new NodeFailure(7, 'not authorized');
        if (node === 'silent') throw NO_ANSWER;
        return { version: { tag: 'v1.11.6', sha: 'abc', goVersion: 'go1.24', os: 'linux', arch: 'amd64' } };
      },
      EtcdMemberList: (node, request) => {
        if (!request.queryLocal) throw new NodeFailure(9, 'query_local was not set');
        if (node === 'worker') {
          throw new NodeFailure(12, 'member list is only available on control plane nodes');
        }
        return {
          members: [
            { id: '18446744073709551615', hostname: 'cp-1', peerUrls: ['https://10.0.0.2:2380'], isLearner: false },
            { id: '2', hostname: 'cp-2', peerUrls: ['https://10.0.0.3:2380'], isLearner: true },
          ],
        };
      },
      EtcdStatus: async (node) => {
        if (node === 'no-quorum') await sleep(5_000);
        return {
          memberStatus: {
            memberId: '10276657743932975437',
            leader: '0',
            raftIndex: '9007199254740993',
            raftAppliedIndex: '9007199254740993',
            raftTerm: '7',
            dbSize: '20480',
            dbSizeInUse: '16384',
            protocolVersion: '3.6.4',
            storageVersion: '3.6.0',
            errors: ['etcdserver: no leader'],
          },
        };
      },
      ServiceList: () => ({
        services: [
          {
            id: 'etcd',
            state: 'Preparing',
            events: {
              events: [{ msg: 'Running pre state', state: 'Preparing', ts: { seconds: '1700000000', nanos: 5e8 } }],
            },
            health: { unknown: true, lastChange: { seconds: '-62135596800', nanos: 0 } },
          },
        ],
      }),
      Bootstrap: (node, request) => {
        if (node === 'direct') throw NO_ANSWER;
        if (request.recoverEtcd) throw new NodeFailure(6, 'etcd data directory is not empty');
        return {};
      },
      Reset: (_node, request) => {
        const labels = (request.systemPartitionsToWipe as { label: string; wipe: boolean }[]).map(
          (p) => `${p.label}:${p.wipe}`,
        );
        return { actorId: `${request.graceful}/${request.reboot}/${request.mode}/${labels.join(',')}` };
      },
      ApplyConfiguration: (_node, request) => ({
        mode: request.mode,
        modeDetails: `got ${(request.data as Buffer).length} bytes`,
        warnings: ['w1'],
      }),
      EtcdRemoveMemberByID: (_node, request) => {
        if (request.memberId !== '18446744073709551615') throw new NodeFailure(5, 'etcdserver: member not found');
        return {};
      },
    },
    streams: {
      EtcdSnapshot: (node) =>
        (async function* () {
          if (node === 'worker') throw new NodeFailure(12, 'etcd snapshot is only available on control plane nodes');
          if (node === 'stuck') {
            yield snapshotBytes.subarray(0, 1024);
            await sleep(10_000);
          }
          if (node === 'slow') {
            for await (const chunk of chunked(snapshotBytes, 1024)) {
              yield chunk;
              await sleep(5);
            }
            return;
          }
          yield* chunked(snapshotBytes, 1000);
        })(),
      Copy: (_node, request) =>
        (async function* () {
          yield Buffer.from(`tar of ${request.rootPath}`);
          yield { metadata: { error: 'open /var/lib/etcd/member/snap/db: permission denied' } };
        })(),
    },
    upload: (node) => {
      if (node === 'not-ready') throw new NodeFailure(9, 'etcd service is not ready for recovery yet');
      return {};
    },
    cosiGet: (node, request) => {
      const key = `${request.namespace}/${request.type}/${request.id}`;
      if (key === 'config/MachineTypes.config.talos.dev/machine-type') {
        return node === 'proto-only'
          ? { spec: { protoSpec: Buffer.from([0x08, 0x02]) } }
          : { spec: { yamlSpec: node === 'init-node' ? 'init\n' : 'controlplane\n' } };
      }
      if (key === 'config/MachineConfigs.config.talos.dev/v1alpha1') {
        return { spec: { yamlSpec: `version: v1alpha1\nmachine:\n  type: controlplane\n# ${node}\n` } };
      }
      if (key === 'runtime/VolumeStatuses.block.talos.dev/ETCD') {
        if (node === 'talos-1.9')
          throw new NodeFailure(5, "resource VolumeStatuses.block.talos.dev(runtime/ETCD) doesn't exist");
        if (node === 'dir') return { spec: { yamlSpec: 'phase: ready\ntype: directory\nparentId: /var/lib\n' } };
        if (node === 'part') return { spec: { yamlSpec: 'phase: ready\ntype: partition\nlocation: /dev/sda5\n' } };
        return { spec: { yamlSpec: 'phase: ready\nlocation: /dev/sda6\n' } };
      }
      throw new NodeFailure(5, `resource ${key} doesn't exist`);
    },
  });
  client = clientFor([talos.address]);
});

afterAll(async () => {
  client?.close();
  await talos?.stop();
});

const okValue = <T>(result: NodeResult<T> | undefined): T => {
  if (!result?.ok) throw new Error(`expected an answer, got ${JSON.stringify(result)}`);
  return result.value;
};

describe('fan-out with nodes metadata', () => {
  it('keeps every node apart: answers, in-band refusals and a node apid never answered for', async () => {
    const results = await client.version(['10.0.0.2', 'no-rbac', 'silent', '10.0.0.4']);
    expect(results.map((r) => [r.node, r.ok])).toEqual([
      ['10.0.0.2', true],
      ['no-rbac', false],
      ['silent', false],
      ['10.0.0.4', true],
    ]);
    expect(okValue(results[0]).tag).toBe('v1.11.6');
    const refused = results[1];
    expect(refused?.ok === false && refused.error).toMatchObject({
      code: 7,
      codeName: 'PermissionDenied',
      message: 'not authorized',
    });
    // each node asked in its own call with `nodes` metadata (never `node`), so a slow node cannot stall the rest
    const asked = talos.seen.slice(-4);
    expect(asked.every((s) => s.method === 'Version' && s.node.length === 0)).toBe(true);
    expect(asked.map((s) => s.nodes).sort()).toEqual([['10.0.0.2'], ['10.0.0.4'], ['no-rbac'], ['silent']]);
  });

  it('keeps the answer of a fast node when another node hangs past the deadline', async () => {
    const [slow, fast] = await client.etcdStatus(['no-quorum', 'cp-1'], { timeoutMs: 400 });
    expect(slow).toMatchObject({ node: 'no-quorum', ok: false, error: { codeName: 'DeadlineExceeded' } });
    expect(fast?.ok).toBe(true);
  });

  it('turns uint64 member ids into 16 hex digits without losing precision', async () => {
    const [result, worker] = await client.etcdMemberList(['cp-1', 'worker'], true);
    expect(okValue(result)).toEqual([
      {
        id: 'ffffffffffffffff',
        hostname: 'cp-1',
        peerUrls: ['https://10.0.0.2:2380'],
        clientUrls: [],
        isLearner: false,
      },
      {
        id: '0000000000000002',
        hostname: 'cp-2',
        peerUrls: ['https://10.0.0.3:2380'],
        clientUrls: [],
        isLearner: true,
      },
    ]);
    expect(worker?.ok).toBe(false);
    if (worker && !worker.ok) {
      expect(classifyFailure(worker.error)).toBe('not-control-plane');
      expect(describeFailure(worker.node, worker.error, 'the member list')).toMatch(
        /^worker is not a control-plane node/,
      );
    }
  });

  it('reads etcd status with raft indices beyond 2^53 as exact bigints and leader 0 as no leader', async () => {
    const status = okValue((await client.etcdStatus(['cp-1']))[0]);
    expect(status.memberId).toBe('8e9e05c52164694d');
    expect(status.leader).toBe('0000000000000000');
    expect(status.raftAppliedIndex).toBe(9007199254740993n);
    expect(status.dbSize).toBe(20480n);
    expect(status.errors).toEqual(['etcdserver: no leader']);
  });

  it('maps service events with their times and treats Go zero time as none', async () => {
    const [services] = await client.serviceList(['cp-1']);
    const etcd = okValue(services)[0];
    expect(etcd).toMatchObject({ id: 'etcd', state: 'Preparing', health: { unknown: true, lastChange: null } });
    expect(etcd?.events[0]).toEqual({ msg: 'Running pre state', state: 'Preparing', ts: 1_700_000_000_500 });
  });

  it('sends Reset, Bootstrap, ApplyConfiguration and RemoveMember fields as the node expects', async () => {
    const reset = await client.reset('cp-1', { graceful: false, reboot: true, labels: ['EPHEMERAL', 'ETCD'] });
    expect(okValue(reset).actorId).toBe('false/true/ALL/EPHEMERAL:true,ETCD:true');
    const bootstrap = await client.bootstrap('cp-1', { recoverEtcd: true, recoverSkipHashCheck: false });
    expect(bootstrap.ok).toBe(false);
    if (!bootstrap.ok) expect(classifyFailure(bootstrap.error)).toBe('already-bootstrapped');
    // a node answering directly (no apid) may send an empty response: success for a call without payload
    expect(await client.bootstrap('direct', { recoverEtcd: false, recoverSkipHashCheck: false })).toEqual({
      node: 'direct',
      ok: true,
      value: undefined,
    });
    const applied = await client.applyConfiguration('cp-1', { data: Buffer.from('abc'), mode: 'STAGED' });
    expect(okValue(applied)).toEqual({ mode: 'STAGED', modeDetails: 'got 3 bytes', warnings: ['w1'] });
    expect((await client.etcdRemoveMemberById('cp-1', 'ffffffffffffffff')).ok).toBe(true);
    const unknown = await client.etcdRemoveMemberById('cp-1', '0000000000000003');
    expect(unknown.ok === false && unknown.error.codeName).toBe('NotFound');
  });
});

describe('error sentences', () => {
  it('says what an etcd without leader means and what to do', () => {
    const failure = { code: 2, codeName: 'Unknown', message: 'etcdserver: no leader' };
    expect(classifyFailure(failure)).toBe('etcd-no-leader');
    expect(describeFailure('10.0.0.2', failure, 'the etcd member list')).toBe(
      "10.0.0.2's etcd has no leader (the etcd member list): quorum is lost or an election is under way; if it stays so, etcd must be recovered from a snapshot (talos-dr recover).",
    );
  });

  it('reads the code of an in-band error from its Go text when no status came with it', async () => {
    expect(
      failureFromMetadata('rpc error: code = AlreadyExists desc = etcd data directory is not empty', null),
    ).toEqual({ code: 6, codeName: 'AlreadyExists', message: 'etcd data directory is not empty' });
    expect(failureFromMetadata('open /var/lib/etcd/member/snap/db: permission denied', null).codeName).toBe('Unknown');
  });

  it('treats waiting conditions as retryable and refusals as final', () => {
    const { isRetryable } = errorsModule;
    expect(isRetryable({ code: 9, codeName: 'FailedPrecondition', message: 'time is not in sync yet' })).toBe(true);
    expect(isRetryable({ code: 9, codeName: 'FailedPrecondition', message: 'bootstrap is not available yet' })).toBe(
      true,
    );
    expect(isRetryable({ code: 6, codeName: 'AlreadyExists', message: 'etcd data directory is not empty' })).toBe(
      false,
    );
    expect(isRetryable({ code: 7, codeName: 'PermissionDenied', message: 'not authorized' })).toBe(false);
    expect(
      isRetryable({
        code: 14,
        codeName: 'Unavailable',
        message: 'No connection established. Last error: self-signed certificate in certificate chain',
      }),
    ).toBe(false);
  });
});

describe('COSI reads with node metadata', () => {
  it('reads the machine type from yaml_spec, or from proto_spec when that is all there is', async () => {
    expect(okValue(await client.machineType('cp-1'))).toBe('controlplane');
    expect(okValue(await client.machineType('init-node'))).toBe('init');
    expect(okValue(await client.machineType('proto-only'))).toBe('controlplane');
    expect(talos.seen.at(-1)).toMatchObject({ method: 'Get', node: ['proto-only'], nodes: [] });
  });

  it('tells where etcd data lives: NotFound or a directory is EPHEMERAL, partition or no type is a partition', async () => {
    expect(okValue(await client.etcdVolume('talos-1.9'))).toBe('ephemeral');
    expect(okValue(await client.etcdVolume('dir'))).toBe('ephemeral');
    expect(okValue(await client.etcdVolume('part'))).toBe('partition');
    expect(okValue(await client.etcdVolume('untyped'))).toBe('partition');
  });

  it('returns the machine configuration text', async () => {
    expect(okValue(await client.machineConfig('cp-1'))).toContain('type: controlplane\n# cp-1');
  });
});

async function collect(stream: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return Buffer.concat(chunks);
}

describe('streams', () => {
  it('reassembles a snapshot stream byte for byte', async () => {
    expect((await collect(client.etcdSnapshot('cp-1'))).equals(snapshotBytes)).toBe(true);
  });

  it('throws on an in-band error in a Copy stream after the data, instead of ending quietly', async () => {
    const received: Buffer[] = [];
    const error = await (async () => {
      try {
        for await (const chunk of client.copy('cp-1', '/var/lib/etcd/member/snap/db')) received.push(chunk);
      } catch (e) {
        return e;
      }
    })();
    expect(Buffer.concat(received).toString()).toBe('tar of /var/lib/etcd/member/snap/db');
    expect(error).toBeInstanceOf(TalosRpcError);
    expect((error as TalosRpcError).failure.message).toContain('permission denied');
    expect((error as TalosRpcError).message).toMatch(/^cp-1 failed the copy of \/var\/lib\/etcd\/member\/snap\/db/);
  });

  it('throws the node failure of a snapshot from a worker', async () => {
    await expect(collect(client.etcdSnapshot('worker'))).rejects.toMatchObject({
      node: 'worker',
      failure: { codeName: 'Unimplemented' },
    });
  });

  it('cuts a stream that stalls, reporting DeadlineExceeded', async () => {
    const started = Date.now();
    await expect(collect(client.etcdSnapshot('stuck', { idleTimeoutMs: 300 }))).rejects.toMatchObject({
      failure: { codeName: 'DeadlineExceeded' },
    });
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it('stops a stream when the signal aborts', async () => {
    const controller = new AbortController();
    let bytes = 0;
    const run = (async () => {
      for await (const chunk of client.etcdSnapshot('slow', { signal: controller.signal })) {
        bytes += chunk.length;
        if (bytes > 10_000) controller.abort();
      }
    })();
    await expect(run).rejects.toMatchObject({ failure: { codeName: 'Canceled' } });
    expect(bytes).toBeLessThan(snapshotBytes.length);
  });

  it('uploads a snapshot intact in chunks of the asked size, reporting progress to the end', async () => {
    const data = randomBytes(3 * 1024 * 1024 + 123);
    const progress: number[] = [];
    const result = await client.etcdRecover('cp-1', Readable.from(chunked(data, 100_000)), {
      chunkSize: 64 * 1024,
      totalBytes: data.length,
      onProgress: (p) => progress.push(p.bytes),
    });
    expect(result).toEqual({ node: 'cp-1', ok: true, value: undefined });
    const upload = talos.uploads.at(-1);
    expect(upload?.bytes.equals(data)).toBe(true);
    expect(Math.max(...(upload?.chunkSizes ?? []))).toBe(64 * 1024);
    expect(progress.at(-1)).toBe(data.length);
  });

  it("uploads in talosctl's 4 KiB chunks (several messages to an HTTP/2 write) with every message intact", async () => {
    const data = randomBytes(1024 * 1024 + 4096 * 3 + 17);
    const result = await client.etcdRecover('cp-1', Readable.from(chunked(data, 100_000)), { chunkSize: 4096 });
    expect(result).toEqual({ node: 'cp-1', ok: true, value: undefined });
    const upload = talos.uploads.at(-1);
    expect(upload?.bytes.equals(data)).toBe(true);
    const sizes = upload?.chunkSizes ?? [];
    expect(sizes.slice(0, -1).every((size) => size === 4096)).toBe(true);
    expect(sizes.at(-1)).toBe(17);
  });

  it('uploads through the next endpoint when the first refuses connections', async () => {
    const failover = clientFor([`127.0.0.1:${await closedPort()}`, talos.address]);
    try {
      const result = await failover.etcdRecover('cp-2', Readable.from([Buffer.from('snapshot bytes')]));
      expect(result.ok).toBe(true);
      expect(failover.endpointInUse).toBe(talos.address);
      expect(talos.uploads.at(-1)).toMatchObject({ node: 'cp-2', bytes: Buffer.from('snapshot bytes') });
    } finally {
      failover.close();
    }
  });

  it('stops an upload when the signal aborts, reporting Canceled', async () => {
    const controller = new AbortController();
    const uploadsBefore = talos.uploads.length;
    async function* endless() {
      for (let i = 0; ; i++) {
        if (i === 20) controller.abort();
        yield randomBytes(64 * 1024);
        await sleep(2);
      }
    }
    const result = await client.etcdRecover('cp-3', Readable.from(endless()), { signal: controller.signal });
    expect(result).toMatchObject({ node: 'cp-3', ok: false, error: { codeName: 'Canceled' } });
    await sleep(100);
    expect(talos.uploads.slice(uploadsBefore).some((u) => u.node === 'cp-3')).toBe(false);
  });

  it('returns the node refusal of an upload as a failed result', async () => {
    const result = await client.etcdRecover('not-ready', Readable.from([Buffer.from('x')]));
    expect(result.ok).toBe(false);
    if (!result.ok) expect(classifyFailure(result.error)).toBe('recover-not-ready');
  });
});

describe('deadlines and cancellation', () => {
  it('ends a call to a node whose etcd does not answer at the short deadline asked for', async () => {
    const started = Date.now();
    const [result] = await client.etcdStatus(['no-quorum'], { timeoutMs: 300 });
    expect(Date.now() - started).toBeLessThan(2000);
    expect(result).toMatchObject({ node: 'no-quorum', ok: false, error: { codeName: 'DeadlineExceeded' } });
  });

  it('cancels a call when the signal aborts', async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    const started = Date.now();
    const [result] = await client.etcdStatus(['no-quorum'], { signal: controller.signal });
    expect(Date.now() - started).toBeLessThan(2000);
    expect(result).toMatchObject({ ok: false, error: { codeName: 'Canceled' } });
  });
});

describe('endpoints and TLS', () => {
  it('fails over from an endpoint that refuses connections and says which endpoint answered', async () => {
    const dead = `127.0.0.1:${await closedPort()}`;
    const failover = clientFor([dead, talos.address]);
    try {
      const [result] = await failover.version(['cp-1']);
      expect(result?.ok).toBe(true);
      expect(failover.endpointInUse).toBe(talos.address);
    } finally {
      failover.close();
    }
  });

  it('reports every node failed, with a sentence, when no endpoint answers', async () => {
    const port = await closedPort();
    const dead = clientFor([`127.0.0.1:${port}`]);
    try {
      const results = await dead.version(['cp-1', 'cp-2']);
      expect(results.map((r) => r.ok)).toEqual([false, false]);
      const first = results[0];
      if (first && !first.ok) {
        // the refusal is the endpoint's (the node behind it was never asked), not cp-1's
        expect(describeFailure(first.node, first.error)).toBe(
          `Nothing answers at the endpoint 127.0.0.1:${port} (connection refused), so cp-1 was not asked; check the endpoint (-e, the tunnel or port-forward) and try again.`,
        );
      }
    } finally {
      dead.close();
    }
  });

  it('refuses a server whose certificate another CA signed, with a sentence about the talosconfig', async () => {
    const otherPki = await makePki();
    const wrong = createTalosClient(loadTalosconfig({ talosconfig: writeTalosconfig(otherPki, [talos.address]) }, {}));
    try {
      const [result] = await wrong.version(['cp-1']);
      expect(result?.ok).toBe(false);
      if (result && !result.ok) {
        expect(classifyFailure(result.error)).toBe('tls-unknown-ca');
        expect(describeFailure('cp-1', result.error)).toContain("this talosconfig's CA did not sign");
      }
    } finally {
      wrong.close();
    }
  });

  it('explains an expired client certificate', async () => {
    const expired = await issueClientCert(pki.ca, {
      roles: ['os:admin'],
      notBefore: new Date(Date.now() - 400 * 86_400_000),
      notAfter: new Date(Date.now() - 86_400_000),
    });
    const old = createTalosClient(
      loadTalosconfig({ talosconfig: writeTalosconfig({ ca: pki.ca, client: expired }, [talos.address]) }, {}),
    );
    try {
      const [result] = await old.version(['cp-1']);
      expect(result?.ok).toBe(false);
      if (result && !result.ok) {
        expect(describeFailure('cp-1', result.error)).toMatch(/client certificate because it has expired/);
      }
    } finally {
      old.close();
    }
  });

  it('checks the certificate against the server-name override for a tunnel', async () => {
    const endpoint = `localhost:${talos.port}`;
    const mismatch = clientFor([endpoint]);
    const path = writeTalosconfig(pki, [endpoint]);
    const tunnel = createTalosClient(loadTalosconfig({ talosconfig: path }, { TALOS_DR_SERVER_NAME: '127.0.0.1' }));
    try {
      const [refused] = await mismatch.version(['cp-1']);
      expect(refused?.ok).toBe(false);
      if (refused && !refused.ok) expect(describeFailure('cp-1', refused.error)).toContain('TALOS_DR_SERVER_NAME');
      const [answered] = await tunnel.version(['cp-1']);
      expect(answered?.ok).toBe(true);
    } finally {
      mismatch.close();
      tunnel.close();
    }
  });
});
