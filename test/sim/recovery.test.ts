import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { collect, concatBytes, etcdState, eventually, startBench, unary, upload, type Bench } from './helpers.js';

let bench: Bench | undefined;
afterEach(async () => {
  await bench?.close();
  bench = undefined;
});

interface Members {
  messages: { members: { id: string; hostname: string }[] }[];
}

async function snapshotFrom(b: Bench, address: string): Promise<Buffer> {
  return concatBytes(await collect(b.machine(address), 'EtcdSnapshot', {}, { node: address }));
}

async function wipeAll(b: Bench): Promise<void> {
  for (const address of b.sim.nodes) {
    await unary(b.machine(address), 'Reset', {
      graceful: false,
      reboot: true,
      systemPartitionsToWipe: [{ label: 'EPHEMERAL', wipe: true }],
    });
  }
  for (const address of b.sim.nodes) {
    await eventually(
      () => etcdState(b, address).catch(() => 'unreachable'),
      (s) => s === 'Preparing',
    );
  }
}

/** EtcdRecover refuses until EPHEMERAL is mounted; retry as talosctl's integration test does. */
async function uploadWithRetry(b: Bench, address: string, bytes: Buffer): Promise<void> {
  await eventually(
    () =>
      upload(b.machine(address), bytes).then(
        () => 'ok',
        (e: { details?: string }) => e.details ?? 'error',
      ),
    (r) => r === 'ok',
  );
}

describe('lost-quorum recovery over the wire', () => {
  it('converges with five control-plane nodes: every node that rejoins becomes a member', async () => {
    bench = await startBench('lost-quorum-5');
    const nodes = bench.sim.nodes;
    expect(nodes).toHaveLength(5);
    const cp1 = nodes[0]!;
    const snapshot = await snapshotFrom(bench, cp1);
    await wipeAll(bench);
    await uploadWithRetry(bench, cp1, snapshot);
    await unary(bench.machine(cp1), 'Bootstrap', { recoverEtcd: true });
    for (const address of nodes) {
      await eventually(
        () => etcdState(bench!, address),
        (s) => s === 'Running',
        20_000,
      );
    }
    const lists = await eventually(
      () =>
        Promise.all(
          nodes.map((n) =>
            unary<Members>(bench!.machine(n), 'EtcdMemberList', { queryLocal: true }).catch(
              () => ({ messages: [] }) as Members,
            ),
          ),
        ),
      (all) => all.every((r) => r.messages[0]?.members.length === 5),
      20_000,
    );
    expect(lists[0]?.messages[0]?.members.map((m) => m.hostname).sort()).toEqual([
      'cp-1',
      'cp-2',
      'cp-3',
      'cp-4',
      'cp-5',
    ]);
  });

  it('snapshot from the survivor, wipe all, bootstrap: all three rejoin with exactly the snapshot data', async () => {
    bench = await startBench('lost-quorum');
    const [cp1, cp2, cp3] = bench.sim.nodes as [string, string, string];
    const snapshot = await snapshotFrom(bench, cp1);
    expect(snapshot.length % 512).toBe(32);
    const db = snapshot.subarray(0, snapshot.length - 32);
    expect(createHash('sha256').update(db).digest().equals(snapshot.subarray(-32))).toBe(true);

    await wipeAll(bench);
    // Nothing joins while there is no quorum: all three wait in Preparing for the bootstrap.
    const stillPreparing = await etcdState(bench, cp2);
    expect(stillPreparing).toBe('Preparing');

    await uploadWithRetry(bench, cp1, snapshot);
    const boot = await unary<{ messages: { metadata: { hostname: string; error: string } }[] }>(
      bench.machine(cp1),
      'Bootstrap',
      { recoverEtcd: true },
      { nodes: [cp1] },
    );
    expect(boot.messages[0]?.metadata.error).toBe('');

    for (const address of [cp1, cp2, cp3]) {
      await eventually(
        () => etcdState(bench!, address),
        (s) => s === 'Running',
      );
    }
    const lists = await eventually(
      () =>
        unary<Members>(bench!.machine(cp1), 'EtcdMemberList', { queryLocal: true }, { nodes: [cp1, cp2, cp3] }).catch(
          () => ({ messages: [] }) as Members,
        ),
      (r) => r.messages.length === 3 && r.messages.every((m) => m.members?.length === 3),
    );
    const ids = lists.messages.map((m) =>
      m.members
        .map((x) => x.id)
        .sort()
        .join(','),
    );
    expect(new Set(ids).size).toBe(1);
    expect(lists.messages[0]?.members.map((m) => m.hostname).sort()).toEqual(['cp-1', 'cp-2', 'cp-3']);

    const report = bench.sim.dataReport();
    expect(report.keysMatchSnapshot).toBe(true);
    expect(report.lostRevisions).toBe(0);
    expect(report.restoredRevision).toBe(report.lastWriteRevision);

    // A second bootstrap after the recovery is refused, in-band, with Talos's text.
    const again = await unary<{ messages: { metadata: { error: string; status: { code: number } } }[] }>(
      bench.machine(cp1),
      'Bootstrap',
      { recoverEtcd: true },
      { nodes: [cp1] },
    );
    expect(again.messages[0]?.metadata.error).toBe(
      'rpc error: code = AlreadyExists desc = etcd data directory is not empty',
    );
    expect(again.messages[0]?.metadata.status.code).toBe(6);
    const calls = bench.sim.destructiveCalls();
    expect(calls.reset).toEqual({ [cp1]: 1, [cp2]: 1, [cp3]: 1, [bench.sim.allNodes[3]!]: 0 });
    expect(calls.bootstrap[cp1]).toBe(2);
    expect(calls.recover[cp1]).toBeGreaterThanOrEqual(1);
  });

  it("fails the restore inside the etcd service with etcd's texts: missing hash, wrong hash", async () => {
    bench = await startBench('lost-quorum');
    const [cp1, cp2] = bench.sim.nodes as [string, string];
    const snapshot = await snapshotFrom(bench, cp1);
    await wipeAll(bench);

    const raw = snapshot.subarray(0, snapshot.length - 32);
    await uploadWithRetry(bench, cp1, raw);
    await unary(bench.machine(cp1), 'Bootstrap', { recoverEtcd: true });
    await eventually(
      () => etcdState(bench!, cp1),
      (s) => s === 'Failed',
    );
    const services = await unary<{ messages: { services: { id: string; events: { events: { msg: string }[] } }[] }[] }>(
      bench.machine(cp1),
      'ServiceList',
      {},
    );
    const etcd = services.messages[0]?.services.find((s) => s.id === 'etcd');
    expect(etcd?.events.events.at(-1)?.msg).toBe(
      'Failed to run pre stage: error recovering from the snapshot: snapshot missing hash but --skip-hash-check=false',
    );
    // etcd left its partial copy behind: the data directory is no longer empty.
    await expect(unary(bench.machine(cp1), 'Bootstrap', { recoverEtcd: true })).rejects.toMatchObject({
      code: 6,
      details: 'etcd data directory is not empty',
    });

    const damaged = Buffer.from(snapshot);
    damaged[damaged.length - 1] = (damaged[damaged.length - 1] ?? 0) ^ 0xff;
    await uploadWithRetry(bench, cp2, damaged);
    await unary(bench.machine(cp2), 'Bootstrap', { recoverEtcd: true });
    await eventually(
      () => etcdState(bench!, cp2),
      (s) => s === 'Failed',
    );
    const after = await unary<{ messages: { services: { id: string; events: { events: { msg: string }[] } }[] }[] }>(
      bench.machine(cp2),
      'ServiceList',
      {},
    );
    const msg = after.messages[0]?.services.find((s) => s.id === 'etcd')?.events.events.at(-1)?.msg ?? '';
    expect(msg).toMatch(
      /^Failed to run pre stage: error recovering from the snapshot: expected sha256 \[(\d+ ){31}\d+\], got \[(\d+ ){31}\d+\]$/,
    );
  });

  it('a raw database restores with skip-hash-check', async () => {
    bench = await startBench('lost-quorum');
    const [cp1] = bench.sim.nodes as [string];
    const snapshot = await snapshotFrom(bench, cp1);
    await wipeAll(bench);
    await uploadWithRetry(bench, cp1, snapshot.subarray(0, snapshot.length - 32));
    await unary(bench.machine(cp1), 'Bootstrap', { recoverEtcd: true, recoverSkipHashCheck: true });
    await eventually(
      () => etcdState(bench!, cp1),
      (s) => s === 'Running',
    );
    expect(bench.sim.dataReport().keysMatchSnapshot).toBe(true);
  });
});
