/**
 * Acquisition end to end: the real client over mTLS against the simulated cluster (the shipped scenarios), files on
 * disk, and — where etcdctl is installed — the simulator's snapshots read back by etcd's own status.
 */
import { afterEach, describe, expect, test } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { acquireSnapshot } from '../../src/etcd/acquire.js';
import { startSimulator } from '../../src/sim/index.js';
import type { SimCluster } from '../../src/sim/types.js';
import { createTalosClient } from '../../src/talos/client.js';
import type { GrpcTalosClient, TalosClientOptions } from '../../src/talos/client.js';
import { loadTalosconfig } from '../../src/talos/talosconfig.js';
import { UserError } from '../../src/errors.js';
import { ETCD_TOOLS_PRESENT, etcdctlStatus } from './etcd-fixture.js';

let sim: SimCluster | null = null;
let client: GrpcTalosClient | null = null;
let dir = '';

/** The first-byte watchdog made short: the faithful simulator keeps a non-serving etcd's snapshot open forever. */
const FIRST_BYTE_MS = 400;
/** What a snapshot that never streams a byte must say (talos#14212): why, and which source comes next. */
const NO_BYTE_SENTENCE =
  /sent no byte of the etcd snapshot in 0\.4 s, so the call was stopped: its etcd is probably not serving; take a raw copy of its database or a snapshot from another member instead/;

async function start(
  scenario: string,
  clientOptions: TalosClientOptions = {},
): Promise<{ sim: SimCluster; client: GrpcTalosClient; out: string }> {
  dir = mkdtempSync(join(tmpdir(), 'talos-dr-acq-sim-'));
  const base = `127.${1 + Math.floor(Math.random() * 250)}.${1 + Math.floor(Math.random() * 250)}.2`;
  sim = await startSimulator({ scenario, dir: join(dir, 'sim'), port: 0, addressBase: base, speed: 1000 });
  client = createTalosClient(loadTalosconfig({ talosconfig: sim.talosconfigPath }, {}), clientOptions);
  const out = join(dir, 'out');
  mkdirSync(out);
  return { sim, client, out };
}

afterEach(async () => {
  client?.close();
  await sim?.stop();
  client = null;
  sim = null;
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('acquisition against the simulated cluster', () => {
  test('lost-quorum: a consistent snapshot from the survivor, verified; etcd reads it the same', async () => {
    const { sim, client, out } = await start('lost-quorum');
    const survivor = sim.nodes[0]!;
    const got = await acquireSnapshot(client, survivor, { dir: out, raw: false });
    expect(got.report).toMatchObject({ integrity: 'verified', usable: true, needsSkipHashCheck: false });
    expect(readdirSync(out).sort()).toEqual([expect.stringMatching(/\.snapshot$/), expect.stringMatching(/\.sha256$/)]);
    if (ETCD_TOOLS_PRESENT) {
      expect(etcdctlStatus(got.file)).toEqual({
        hash: parseInt(got.report.hash!, 16),
        revision: got.report.revision,
        totalKey: got.report.totalKeys,
        totalSize: got.report.totalSize,
      });
    }
  });

  test('etcd-down-raw-copy: the snapshot that never streams a byte is stopped with nothing kept; the raw copy works and needs skip-hash-check', async () => {
    const { sim, client, out } = await start('etcd-down-raw-copy', { snapshotFirstByteTimeoutMs: FIRST_BYTE_MS });
    const node = sim.nodes[1]!;
    const error = await acquireSnapshot(client, node, { dir: out, raw: false }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UserError);
    expect((error as Error).message).toMatch(NO_BYTE_SENTENCE);
    expect(readdirSync(out)).toEqual([]);
    const got = await acquireSnapshot(client, node, { dir: out, raw: true });
    expect(got.file).toMatch(/\.db$/);
    expect(got.report).toMatchObject({ integrity: 'absent', needsSkipHashCheck: true, usable: true });
  });

  test('flaky-network: a cut stream keeps no file; trying again from zero gets a verified one', async () => {
    const { sim, client, out } = await start('flaky-network');
    const node = sim.nodes[0]!;
    let got = null;
    const failures: string[] = [];
    for (let attempt = 0; attempt < 5 && got === null; attempt++) {
      try {
        got = await acquireSnapshot(client, node, { dir: out, raw: false, outFile: `attempt-${attempt}.snapshot` });
      } catch (error) {
        expect(error).toBeInstanceOf(UserError);
        failures.push((error as Error).message);
        expect(readdirSync(out)).toEqual([]);
      }
    }
    expect(failures.length).toBeGreaterThan(0);
    expect(failures.join(' ')).toMatch(/cut|ended early|does not match/);
    expect(got?.report.integrity).toBe('verified');
    expect(existsSync(`${got!.file}.part`)).toBe(false);
  });

  test("single-node: a raw copy of a database that is not there fails with the node's own text; nothing is kept", async () => {
    const { sim, client, out } = await start('single-node');
    const node = sim.nodes[0]!;
    const error = await acquireSnapshot(client, node, { dir: out, raw: true }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UserError);
    expect((error as Error).message).toContain('lstat /var/lib/etcd/member/snap/db: no such file or directory');
    expect(readdirSync(out)).toEqual([]);
  });

  test('etcd-down-raw-copy: the snapshot call reports why (no byte: its etcd is not serving) and names the next sources', async () => {
    const { sim, client, out } = await start('etcd-down-raw-copy', { snapshotFirstByteTimeoutMs: FIRST_BYTE_MS });
    const node = sim.nodes[0]!;
    const error = await acquireSnapshot(client, node, { dir: out, raw: false }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UserError);
    // Talos keeps the call open with no byte while its local etcd client waits for a serving etcd (talos#14212)
    expect((error as Error).message).toMatch(new RegExp(`^${node.replace(/\./g, '\\.')} ${NO_BYTE_SENTENCE.source}`));
    expect((error as Error).message).not.toMatch(/did not answer .* in time|try again in a moment/);
    expect(readdirSync(out)).toEqual([]);
  });
});
