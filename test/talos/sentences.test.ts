/**
 * The sentence a user reads names the right cause (issue 18 item 15, issue 12): a refused endpoint is the
 * endpoint's fault, a Version timeout is not "no quorum", a certificate not valid yet is a clock problem, and
 * grpc-js's debug notes ("Deadline exceeded after 4.005s,metadata filters: …,LB pick: …") never reach a sentence or a
 * failure's message. Every case goes over the real wire to the loopback bench.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTalosClient } from '../../src/talos/client.js';
import { describeFailure, withoutDebugNotes } from '../../src/talos/errors.js';
import { issueClientCert } from '../../src/talos/pki.js';
import { loadTalosconfig } from '../../src/talos/talosconfig.js';
import type { NodeResult, RpcFailure } from '../../src/talos/types.js';
import {
  closedPort,
  makePki,
  NodeFailure,
  startFakeTalos,
  writeTalosconfig,
  type FakeTalos,
  type TestPki,
} from './fake-talos.js';

let pki: TestPki;
let talos: FakeTalos;
/** calls the bench holds open until the test ends (a node that never answers) */
const held: (() => void)[] = [];
const VERSION = { version: { tag: 'v1.12.4', sha: 'a', goVersion: 'go1.25', os: 'linux', arch: 'amd64' } };

beforeAll(async () => {
  pki = await makePki();
  talos = await startFakeTalos(pki, {
    unary: {
      Version: async (node) => {
        if (node === 'silent') await new Promise<void>((resolve) => held.push(resolve));
        return VERSION;
      },
      EtcdStatus: async () => {
        await new Promise<void>((resolve) => held.push(resolve));
        return {};
      },
    },
    streams: {
      // a node whose local etcd client could not dial answers DeadlineExceeded in-band (behaviour-facts §2)
      // eslint-disable-next-line require-yield
      EtcdSnapshot: async function* () {
        throw new NodeFailure(4, 'context deadline exceeded');
      },
      // eslint-disable-next-line require-yield
      Copy: async function* () {
        throw new NodeFailure(4, 'context deadline exceeded');
      },
    },
  });
});

afterAll(async () => {
  for (const release of held) release();
  await talos.stop();
});

const failureOf = <T>(result: NodeResult<T> | undefined): RpcFailure => {
  if (!result || result.ok) throw new Error('expected a failure');
  return result.error;
};

function contextFile(fields: Record<string, string | string[]>): string {
  const lines = Object.entries(fields).map(([key, value]) =>
    Array.isArray(value) ? `    ${key}: [${value.join(', ')}]` : `    ${key}: ${value}`,
  );
  const path = join(mkdtempSync(join(tmpdir(), 'talos-dr-sent-')), 'talosconfig');
  writeFileSync(path, `context: t\ncontexts:\n  t:\n${lines.join('\n')}\n`);
  return path;
}
const b64 = (text: string) => Buffer.from(text).toString('base64');

describe('who is at fault', () => {
  it('a refused -e localhost:PORT is the endpoint, and the node behind it was not asked', async () => {
    const port = await closedPort();
    const client = createTalosClient(
      loadTalosconfig({ talosconfig: writeTalosconfig(pki, [`localhost:${port}`]) }, {}),
    );
    try {
      const failure = failureOf((await client.version(['10.5.0.2']))[0]);
      expect(failure.endpoint).toBe(`localhost:${port}`);
      const sentence = describeFailure('10.5.0.2', failure);
      expect(sentence).toBe(
        `Nothing answers at the endpoint localhost:${port} (connection refused), so 10.5.0.2 was not asked; check the endpoint (-e, the tunnel or port-forward) and try again.`,
      );
    } finally {
      client.close();
    }
  });

  it('a Version that times out is not blamed on quorum, and no grpc-js debug text survives', async () => {
    const client = createTalosClient(loadTalosconfig({ talosconfig: writeTalosconfig(pki, [talos.address]) }, {}));
    try {
      const failure = failureOf((await client.version(['silent'], { timeoutMs: 300 }))[0]);
      expect(failure.message).toBe('Deadline exceeded');
      const sentence = describeFailure('silent', failure);
      expect(sentence).not.toMatch(/quorum|etcd/);
      expect(sentence).toBe(
        'silent did not answer in time: it may be rebooting, overloaded or hard to reach from the endpoint; try again in a moment.',
      );
      // an etcd call that times out may well be a non-serving etcd
      const etcd = failureOf((await client.etcdStatus(['cp-1'], { timeoutMs: 300 }))[0]);
      expect(etcd.message).toBe('Deadline exceeded');
      expect(describeFailure('cp-1', etcd)).toMatch(/its etcd may not be serving \(no quorum\)/);
    } finally {
      client.close();
    }
  });

  it('a snapshot that times out may be etcd not serving; a copy that times out is not blamed on etcd', async () => {
    const client = createTalosClient(loadTalosconfig({ talosconfig: writeTalosconfig(pki, [talos.address]) }, {}));
    const drain = async (stream: AsyncIterable<Buffer>) => {
      try {
        for await (const chunk of stream) void chunk;
      } catch (error) {
        return (error as Error).message;
      }
      throw new Error('expected a failure');
    };
    try {
      expect(await drain(client.etcdSnapshot('cp-1'))).toMatch(
        /^cp-1 did not answer the etcd snapshot in time: its etcd may not be serving/,
      );
      const copy = await drain(client.copy('cp-1', '/var/lib/etcd/member/snap/db'));
      expect(copy).toMatch(/^cp-1 did not answer the copy of \/var\/lib\/etcd\/member\/snap\/db in time/);
      expect(copy).not.toMatch(/quorum/);
    } finally {
      client.close();
    }
  });

  it('a client certificate not valid yet is a clock problem, not a network one', async () => {
    const future = new Date(Date.now() + 3 * 24 * 3600 * 1000);
    const early = await issueClientCert(pki.ca, { roles: ['os:admin'], notBefore: future });
    const client = createTalosClient(
      loadTalosconfig({ talosconfig: writeTalosconfig({ ca: pki.ca, client: early }, [talos.address]) }, {}),
    );
    try {
      const sentence = describeFailure('cp-1', failureOf((await client.version(['cp-1']))[0]));
      expect(sentence).toMatch(/disagree about the time: a certificate is not valid yet/);
      expect(sentence).toMatch(/check this computer's clock and the node's/);
      expect(sentence).not.toMatch(/Cannot reach|network/);
    } finally {
      client.close();
    }
  });

  it('a context without crt and key is told so when the node asks for a client certificate', async () => {
    const path = contextFile({ endpoints: [talos.address], ca: b64(pki.ca.certPem) });
    const client = createTalosClient(loadTalosconfig({ talosconfig: path }, {}));
    try {
      const sentence = describeFailure('cp-1', failureOf((await client.version(['cp-1']))[0]));
      expect(sentence).toMatch(/the talosconfig context has no client certificate \(crt and key\)/);
    } finally {
      client.close();
    }
  });

  it("a context without ca checks the node against the system's roots, and says so when they do not vouch for it", async () => {
    const path = contextFile({
      endpoints: [talos.address],
      crt: b64(pki.client.certPem),
      key: b64(pki.client.keyPem),
    });
    const client = createTalosClient(loadTalosconfig({ talosconfig: path }, {}));
    try {
      const sentence = describeFailure('cp-1', failureOf((await client.version(['cp-1']))[0]));
      expect(sentence).toMatch(/the system's trusted roots do not vouch for, and the talosconfig context has no ca/);
    } finally {
      client.close();
    }
  });
});

describe('grpc-js debug notes', () => {
  it.each([
    [
      'Deadline exceeded after 4.005s,metadata filters: 0.001s,LB pick: 0.002s,remote_addr=10.0.0.2:50000',
      'Deadline exceeded',
    ],
    ['Deadline exceeded after 15.001s,name resolution: 0.001s,waiting for metadata filters', 'Deadline exceeded'],
    ['Waiting for LB pick', 'Deadline exceeded'],
    [
      'Response message parsing error: index out of range: 9 + 10 > 12',
      'the answer could not be decoded (index out of range: 9 + 10 > 12)',
    ],
    [
      'Received RST_STREAM with code 2 triggered by internal client error: Protocol error',
      'the call was cut (Protocol error)',
    ],
    ['Received RST_STREAM with code 8', 'the call was cut by the other side'],
    ['etcdserver: no leader', 'etcdserver: no leader'],
  ])('%s → %s', (raw, clean) => {
    expect(withoutDebugNotes(raw)).toBe(clean);
  });
});

describe('texts of newer Talos versions', () => {
  it('1.14 refusing the REBOOT apply mode is named, not "check that it runs Talos 1.7"', () => {
    const failure = {
      code: 12,
      codeName: 'Unimplemented',
      message: 'the REBOOT mode is not supported, please use AUTO or NO_REBOOT modes instead',
    };
    const sentence = describeFailure('cp-1', failure, 'the configuration');
    expect(sentence).toMatch(/^cp-1 refused the configuration in REBOOT mode, which Talos 1\.14 no longer accepts/);
    expect(sentence).not.toMatch(/1\.7 or newer/);
  });

  it('1.14 refusing Bootstrap on a node without etcd says it is not a control-plane node', () => {
    const failure = {
      code: 3,
      codeName: 'InvalidArgument',
      message: 'etcd is not configured, bootstrap is not possible',
    };
    expect(describeFailure('w-1', failure, 'bootstrap')).toMatch(
      /^w-1 is not a control-plane node, so bootstrap cannot run there/,
    );
  });
});

describe('what apid says about the node behind it', () => {
  it('a blank node (maintenance mode) reached through an endpoint is named as such, not "cannot reach"', () => {
    const failure = {
      code: 14,
      codeName: 'Unavailable',
      message:
        'connection error: desc = "transport: authentication handshake failed: tls: failed to verify certificate: x509: certificate signed by unknown authority"',
    };
    const sentence = describeFailure('10.5.0.4', failure);
    expect(sentence).toMatch(
      /^The endpoint could not talk to 10\.5\.0\.4 securely .* probably a blank machine in maintenance mode/,
    );
    expect(sentence).not.toMatch(/Cannot reach/);
  });
});

describe('Omni', () => {
  it("a machine managed by Omni refusing a plain call is sent to Omni's restore", () => {
    const failure = { code: 7, codeName: 'PermissionDenied', message: 'no access is permitted' };
    const sentence = describeFailure('192.168.1.200', failure, 'the reset');
    expect(sentence).toMatch(
      /^192\.168\.1\.200 refused the reset with "no access is permitted", as machines managed by Omni do/,
    );
    expect(sentence).toContain('restore-etcd-of-a-cluster-managed-by-cluster-templates');
    expect(sentence).not.toMatch(/os:admin/);
  });
});
