/**
 * A scenario's starting state on real etcd members, written through etcd's API, then its faults applied for real
 * (members stopped, write-ahead logs damaged, data removed).
 */
import { randomBytes } from 'node:crypto';
import { cp, mkdir, open, readdir, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { HistoryEvent } from '../etcd/writer.js';
import type { EtcdMemberInfo } from './etcd-backend.js';
import type { RealEtcd } from './real-etcd.js';
import { b64, etcdctl, etcdWords, gateway, sleep, type GatewayHeader } from './real-etcd-calls.js';
import type { Cache } from './real-etcd-process.js';

export type RealFate = 'run' | 'stop' | 'crash' | 'wipe';

export interface RealSeedNode {
  backend: RealEtcd;
  hostname: string;
  /** Part of the original etcd cluster (a control-plane node). */
  member: boolean;
  /** Revisions (events) this member misses at the outage. */
  behind: number;
  /** What the outage did to it: keeps running, stopped, data damaged (crash-loops), data gone. */
  fate: RealFate;
}

export interface RealSeedResult {
  members: EtcdMemberInfo[];
  lastWriteRevision: number;
}

/** Damages the write-ahead log as a crash does (the database file stays intact, so a raw copy still works). */
async function damageWal(dataDir: string): Promise<void> {
  const walDir = join(dataDir, 'member', 'wal');
  const files = (await readdir(walDir).catch(() => [] as string[])).filter((f) => f.endsWith('.wal')).sort();
  const last = files.at(-1);
  if (!last) return;
  const path = join(walDir, last);
  const size = (await stat(path)).size;
  const handle = await open(path, 'r+');
  try {
    // Garbage over the first records after the header: etcd fails to replay the log ("crc mismatch").
    await handle.write(randomBytes(Math.min(4096, Math.max(0, size - 64))), 0, undefined, 64);
  } finally {
    await handle.close();
  }
}

async function put(writer: RealEtcd, event: HistoryEvent): Promise<number> {
  const answer =
    event.kind === 'put'
      ? await gateway<{ header?: GatewayHeader }>(
          writer.clientUrl,
          '/v3/kv/put',
          { key: b64(event.key), value: b64(event.value) },
          5000,
        )
      : await gateway<{ header?: GatewayHeader }>(
          writer.clientUrl,
          '/v3/kv/deleterange',
          { key: b64(event.key) },
          5000,
        );
  return Number(answer.header?.revision ?? '0');
}

/**
 * Builds the scenario's etcd cluster for real: every original member starts in one new cluster, the history is
 * written through etcd's API (one change per revision, so revisions equal the scenario's), members that are behind
 * are stopped at their revision (their data directory kept as it was then), the trainee's older snapshot is taken
 * with `etcdctl snapshot save` at its revision, then the outage: members stopped, WALs damaged, data removed.
 */
export async function seedRealCluster(opts: {
  nodes: RealSeedNode[];
  history: HistoryEvent[];
  /** Take the given snapshot after the event with this revision (null: the scenario gives none). */
  givenSnapshotRevision: number | null;
  givenSnapshotPath: string;
}): Promise<RealSeedResult> {
  const members = opts.nodes.filter((n) => n.member);
  if (members.length === 0) return { members: [], lastWriteRevision: opts.history.at(-1)?.revision ?? 0 };
  const token = `talos-dr-${randomBytes(6).toString('hex')}`;
  const initialCluster = members.map((n) => `${n.hostname}=${n.backend.peerUrl}`).join(',');
  for (const n of members) {
    await rm(n.backend.dataDir, { recursive: true, force: true });
    n.backend.seedPending({ state: 'new', initialCluster, token }, n.hostname);
    n.backend.start();
  }
  for (const n of members) {
    if (!(await n.backend.waitReady())) throw new Error(`etcd on ${n.hostname} did not start (see its etcd.log)`);
  }
  // The freshest member writes; the others follow by raft. Members behind stop at their point, keep that data dir.
  const writer = [...members].sort((a, b) => a.behind - b.behind)[0] as RealSeedNode;
  const stash = new Map<RealSeedNode, { dir: string; cache: Cache }>();
  const total = opts.history.length;
  const checkpoints = members
    .filter((n) => n.behind > 0 && n !== writer)
    .map((n) => ({ node: n, after: Math.max(0, total - n.behind) }));
  let written = 0;
  let revision = 1;
  const takeGiven = async (): Promise<void> => {
    await mkdir(dirname(opts.givenSnapshotPath), { recursive: true });
    const result = await etcdctl(['--endpoints', writer.backend.clientUrl, 'snapshot', 'save', opts.givenSnapshotPath]);
    if (!result.ok) throw new Error(`etcdctl snapshot save failed: ${etcdWords(result.stderr)}`);
  };
  const atCheckpoint = async (): Promise<void> => {
    for (const { node } of checkpoints.filter((c) => c.after === written)) {
      await waitRevision(node.backend, revision);
      await rereadSeeded(node);
      node.backend.stop();
      await node.backend.settled();
      const dir = `${node.backend.dataDir}.at-${revision}`;
      await rm(dir, { recursive: true, force: true });
      await cp(node.backend.dataDir, dir, { recursive: true });
      stash.set(node, { dir, cache: node.backend.rememberCache() });
      node.backend.start();
      await node.backend.waitReady();
    }
    if (opts.givenSnapshotRevision !== null && revision === opts.givenSnapshotRevision) await takeGiven();
  };
  await atCheckpoint();
  for (const event of opts.history) {
    revision = await put(writer.backend, event);
    written++;
    await atCheckpoint();
  }
  for (const n of members) {
    await waitRevision(n.backend, revision);
    await rereadSeeded(n);
  }
  const originalMembers = writer.backend.members();
  // The outage: members die (killed, data damaged or gone); a member that keeps running is never restarted, since a
  // restarted etcd without quorum would not serve clients at all (it cannot publish itself through raft).
  const down = members.filter((n) => n.fate !== 'run' || stash.has(n));
  for (const n of down) n.backend.stop();
  for (const n of down) await n.backend.settled();
  for (const [node, kept] of stash) {
    await rm(node.backend.dataDir, { recursive: true, force: true });
    await cp(kept.dir, node.backend.dataDir, { recursive: true });
    await rm(kept.dir, { recursive: true, force: true });
    node.backend.restoreCache(kept.cache);
  }
  for (const n of members) {
    if (n.fate === 'crash') await damageWal(n.backend.dataDir);
    if (n.fate === 'wipe') {
      await rm(n.backend.dataDir, { recursive: true, force: true });
      n.backend.forgetCache();
    }
  }
  return { members: originalMembers, lastWriteRevision: revision };
}

/**
 * What a seeded member holds, read until it answers: a member stopped by the outage is never asked again, so what it
 * said here is what its node shows for the whole drill (its revision, its keys). One read lost on a busy machine left
 * it at the revision and keys of its first answer, before the history was written.
 */
async function rereadSeeded(n: RealSeedNode): Promise<void> {
  if (!(await n.backend.reread({ keys: true }))) {
    throw new Error(`etcd on ${n.hostname} did not answer after the scenario's data were written (see its etcd.log)`);
  }
}

async function waitRevision(backend: RealEtcd, revision: number): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    try {
      const status = await gateway<{ header?: GatewayHeader }>(backend.clientUrl, '/v3/maintenance/status', {});
      if (Number(status.header?.revision ?? '0') >= revision) return;
    } catch {
      // not up yet
    }
    await sleep(50);
  }
  throw new Error(`etcd at ${backend.clientUrl} did not reach revision ${revision}`);
}
