/**
 * The node's boot id as the client reads it (Read of /proc/sys/kernel/random/boot_id, as talosctl does:
 * cmd/talosctl/pkg/talos/action/tracker.go@v1.13.9:356-378) and what two of them say about a boot in between
 * (bootSinceByBootId): like for like, no clocks compared.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bootSinceByBootId, bootstrapLanded } from '../../machines/decisions.js';
import { caFromJson, issueClientCert } from '../../src/talos/pki.js';
import { createTalosClient, type GrpcTalosClient } from '../../src/talos/client.js';
import { loadTalosconfig } from '../../src/talos/talosconfig.js';
import { startBench, type Bench } from '../sim/helpers.js';

describe('bootSinceByBootId', () => {
  it('a different boot id is a boot since the send, the same one none, whatever the clocks say', () => {
    expect(bootSinceByBootId('a', 'b')).toBe('rebooted');
    expect(bootSinceByBootId('a', 'a')).toBe('same boot');
  });
  it('a read that failed now shows nothing', () => {
    expect(bootSinceByBootId('a', null)).toBe('unknown');
  });
  it('no boot id before the send (an older journal), or a node that refuses Read now: the boot ids cannot tell', () => {
    expect(bootSinceByBootId(null, 'b')).toBeNull();
    expect(bootSinceByBootId('a', 'refused')).toBeNull();
  });
});

describe('bootstrapLanded with the etcd history witnessed before the send (the node dates both)', () => {
  const sentAt = Date.parse('2026-12-03T12:00:00Z');
  // the node's clock is 10 min behind: its dates are all before our send time
  const before = sentAt - 10 * 60_000 - 30_000;
  const view = (etcdHistoryStart: number) => ({ reachable: true, etcdService: 'Preparing', etcdHistoryStart });
  it('another history than the witnessed one is the new runner: landed', () => {
    expect(bootstrapLanded(view(sentAt - 10 * 60_000 + 2_000), sentAt, before)).toBe(true);
  });
  it('the witnessed history is the old runner: not landed', () => {
    expect(bootstrapLanded(view(before), sentAt, before)).toBe(false);
  });
  it('without a witness (an older journal) the send time decides, as before', () => {
    expect(bootstrapLanded(view(sentAt - 10 * 60_000 + 2_000), sentAt)).toBe(false);
    expect(bootstrapLanded(view(sentAt + 2_000), sentAt)).toBe(true);
  });
});

describe('the boot id over the wire (simulator)', () => {
  let bench: Bench;
  let client: GrpcTalosClient;
  beforeAll(async () => {
    bench = await startBench('lost-quorum', { speed: 200 });
    client = createTalosClient(loadTalosconfig({ talosconfig: bench.sim.talosconfigPath }, {}), {
      defaultTimeoutMs: 3000,
    });
  });
  afterAll(async () => {
    client?.close();
    await bench?.close();
  });

  it('is a UUID without the kernel newline, the same until the node reboots, then a new one', async () => {
    const node = bench.sim.nodes[1]!;
    const first = await client.bootId(node);
    expect(first).toMatchObject({
      ok: true,
      value: expect.stringMatching(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/),
    });
    expect(await client.bootId(node)).toEqual(first);
    expect((await client.reboot(node)).ok).toBe(true);
    let after = await client.bootId(node, { timeoutMs: 500 });
    for (let i = 0; i < 200 && !(after.ok && first.ok && after.value !== first.value); i++) {
      await new Promise((r) => setTimeout(r, 50));
      after = await client.bootId(node, { timeoutMs: 500 });
    }
    expect(after, JSON.stringify(after)).toMatchObject({ ok: true });
    expect(after).not.toEqual(first);
  }, 30_000);

  it('is refused with PermissionDenied to a role without os:admin (Read is os:admin only)', async () => {
    const statePath = join(bench.dir, 'boot-id-roles.json');
    await bench.sim.saveState(statePath);
    const ca = await caFromJson((JSON.parse(readFileSync(statePath, 'utf8')) as { ca: string }).ca);
    const operator = await issueClientCert(ca, { roles: ['os:operator'] });
    const config = loadTalosconfig({ talosconfig: bench.sim.talosconfigPath }, {});
    const asOperator = createTalosClient(
      { ...config, certPem: operator.certPem, keyPem: operator.keyPem },
      { defaultTimeoutMs: 3000 },
    );
    try {
      const r = await asOperator.bootId(bench.sim.nodes[0]!);
      expect(r).toMatchObject({ ok: false, error: { code: 7, codeName: 'PermissionDenied', method: 'Read' } });
    } finally {
      asOperator.close();
    }
  });

  it('of a node that is down fails for that node alone: the next call to another node still goes through', async () => {
    // quorum-intact: cp-3 is powered off; apid cannot reach it
    const other = await startBench('quorum-intact', { speed: 200 });
    const c = createTalosClient(loadTalosconfig({ talosconfig: other.sim.talosconfigPath }, {}), {
      defaultTimeoutMs: 3000,
    });
    try {
      const [, cp2, cp3] = other.sim.nodes as [string, string, string];
      expect(await c.bootId(cp3)).toMatchObject({ ok: false, error: { codeName: 'Unavailable', method: 'Read' } });
      expect(await c.reboot(cp2)).toMatchObject({ ok: true });
    } finally {
      c.close();
      await other.close();
    }
  });
});
