/**
 * Step 3's transfers report their progress as they go, for the screen's bytes, rate and ETA (issue 16: "downloads with
 * progress and ETA, then imports"; issue 12 item 7: the bytes/s of the wizard's snapshot download): the newest backup
 * from a real S3-compatible server on 127.0.0.1 (gofakes3), then its verification, and an EtcdSnapshot from a
 * simulated node. A download from S3 that stops sending is given up after a bounded time with one sentence, and not
 * tried again unchanged (the step offers the next source), as a node's snapshot that sends no byte is.
 * Before: takeSnapshot reported nothing while it downloaded, and a stalled S3 download waited for ever.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createServer, request } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeBackup, makeKey, rfc3339, s3Missing, s3TestEnv, startFakeS3 } from './fixtures.js';
import type { FakeS3 } from './fixtures.js';
import { buildEtcdSnapshot } from '../../src/etcd/writer.js';
import { createIncidentDir } from '../../src/journal/incident.js';
import { Journal } from '../../src/journal/journal.js';
import { takeSnapshot } from '../../src/wizard/snapshot.js';
import type { SnapshotProgress } from '../../src/wizard/snapshot.js';
import { ActionError } from '../../src/wizard/ledger.js';
import type { TalosClient } from '../../src/talos/types.js';
import type { SnapshotOption } from '../../machines/recovery-types.js';
import { closeGrounds, startGround } from '../drill/harness.js';

const HOUR = 3600_000;
const name = `prod-1-${rfc3339(Date.now() - HOUR)}.snap.zst.age`;
/** about 8 MiB of values that do not compress: the download takes many chunks */
const BIG = buildEtcdSnapshot({
  history: Array.from({ length: 2000 }, (_, i) => ({
    kind: 'put' as const,
    revision: i + 2,
    key: `/registry/blob/${i}`,
    value: randomBytes(4096),
    createRevision: i + 2,
    version: 1,
  })),
  consistentIndex: 2001,
  members: [{ id: '8e9e05c52164694d', name: 'cp-1', peerURLs: ['https://127.0.0.2:2380'], clientURLs: [] }],
});

let dir = '';
let server: FakeS3 | null = null;
let stalling: Server | null = null;
let stallingEndpoint = '';
let objectBytes = 0;
const saved = { ...process.env };

/**
 * A loopback HTTP hop in front of the S3 server that passes every request on, but of an object's body sends only the
 * first 64 KiB and then nothing more, keeping the connection open: a download that hangs mid-way.
 */
function startStallingHop(endpoint: string): Promise<Server> {
  const target = new URL(endpoint);
  const hop = createServer((req, res) => {
    const upstream = request(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        if (req.method !== 'GET' || !/\.snap/.test(req.url ?? '')) {
          answer.pipe(res);
          return;
        }
        let sent = 0;
        answer.on('data', (chunk: Buffer) => {
          if (sent >= 64 * 1024) return;
          res.write(chunk.subarray(0, 64 * 1024 - sent));
          sent += chunk.length;
        });
      },
    );
    req.pipe(upstream);
  });
  return new Promise((resolve) => hop.listen(0, '127.0.0.1', () => resolve(hop)));
}

beforeAll(async () => {
  if (s3Missing) return;
  dir = mkdtempSync(join(tmpdir(), 'talos-dr-progress-'));
  const key = makeKey(dir, 'key.txt');
  server = await startFakeS3();
  stalling = await startStallingHop(server.endpoint);
  stallingEndpoint = `http://127.0.0.1:${(stalling.address() as AddressInfo).port}`;
  Object.assign(process.env, { ...s3TestEnv(dir), AWS_ENDPOINT_URL_S3: server.endpoint, TALOS_DR_IDENTITY: key.file });
  const src = join(dir, 'src');
  mkdirSync(src);
  const encrypted = readFileSync(makeBackup(src, name.replace(/\.zst\.age$/, ''), BIG, { zstd: true, age: key }));
  objectBytes = encrypted.length;
  await server.put(`prod-1/${name}`, encrypted);
}, 120_000);

afterAll(async () => {
  for (const variable of Object.keys(process.env)) if (!(variable in saved)) delete process.env[variable];
  Object.assign(process.env, saved);
  await closeGrounds();
  stalling?.closeAllConnections();
  stalling?.close();
  server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const backupOption = (spec: string): SnapshotOption =>
  ({ id: `backup:${spec}`, method: 'backup', node: null, file: spec, label: spec, failed: null }) as SnapshotOption;

function incidentWithoutCluster(folder: string) {
  const incident = createIncidentDir(join(dir, folder));
  return {
    client: {} as TalosClient,
    connectMaintenance: null,
    incident,
    journal: new Journal(incident.dir),
    operator: 't',
  };
}

/** Each progress report, with whether the imported snapshot was already in the incident folder at that moment. */
interface Seen extends SnapshotProgress {
  imported: boolean;
}

describe.skipIf(s3Missing !== null)(`S3 download progress${s3Missing ? ` (skipped: ${s3Missing})` : ''}`, () => {
  test('the newest backup in S3: bytes of the object as they arrive, then the verification, before the import is done', async () => {
    const deps = incidentWithoutCluster('s3-progress');
    const seen: Seen[] = [];
    const imported = () => readdirSync(deps.incident.snapshots).some((f) => /^backup-.*\.snap$/.test(f));
    const info = await takeSnapshot(deps, backupOption('s3://backups/prod-1'), 'snapshot:backup:0', {
      onProgress: (p) => seen.push({ ...p, imported: imported() }),
    });
    const downloading = `Downloading s3://backups/prod-1/${name}`;
    const download = seen.filter((p) => p.label === downloading);
    const verify = seen.filter((p) => p.label === `Verifying backup-${name.replace(/\.zst\.age$/, '')}`);
    // it starts at 0 of the object's size (the screen shows the bar and 0 B/s before the first byte)
    expect(download[0]).toMatchObject({ bytes: 0, total: objectBytes });
    // bytes part-way, growing, ending at the object's size: the screen's bar, rate and ETA move
    expect(download.filter((p) => p.bytes > 0 && p.bytes < objectBytes).length).toBeGreaterThan(3);
    expect(download.map((p) => p.bytes)).toEqual([...download.map((p) => p.bytes)].sort((a, b) => a - b));
    expect(download.at(-1)?.bytes).toBe(objectBytes);
    // then the verification of the plain file read back, of its size
    expect(verify.at(-1)).toMatchObject({ bytes: info.bytes, total: info.bytes });
    expect(seen.indexOf(verify[0] as Seen)).toBeGreaterThan(seen.indexOf(download.at(-1) as Seen));
    // all of it while the import was still under way: the snapshot is placed only once verified
    expect(seen.every((p) => !p.imported)).toBe(true);
    expect(info).toMatchObject({ usable: true, integrity: 'verified' });
  }, 60_000);

  test('a download that stops sending: one sentence after the bounded wait, no file kept, not retried unchanged', async () => {
    const deps = incidentWithoutCluster('s3-stall');
    process.env.AWS_ENDPOINT_URL_S3 = stallingEndpoint;
    const seen: SnapshotProgress[] = [];
    try {
      const error = await takeSnapshot(deps, backupOption('s3://backups/prod-1'), 'snapshot:backup:0', {
        onProgress: (p) => seen.push(p),
        s3StallMs: 700,
      }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ActionError);
      expect((error as Error).message).toBe(
        `The download of s3://backups/prod-1/${name} stalled: no byte came for 0.7 s, so it was stopped; check the connection to the S3 endpoint, then try again or choose another source.`,
      );
      // the step marks this source failed and offers the next one instead of trying it again at once
      expect((error as ActionError).retryable).toBe(false);
      // what came before the stall was on screen
      expect(seen.some((p) => p.bytes >= 64 * 1024 && p.bytes < objectBytes)).toBe(true);
      expect(readdirSync(deps.incident.snapshots)).toEqual([]);
    } finally {
      process.env.AWS_ENDPOINT_URL_S3 = server?.endpoint;
    }
  }, 60_000);
});

test("a node's EtcdSnapshot: its bytes from 0 as they arrive (no total is known), with the node named", async () => {
  const g = await startGround('quorum-intact');
  const node = g.sim.nodes[0] as string;
  const seen: SnapshotProgress[] = [];
  const option: SnapshotOption = { id: `api:${node}`, method: 'api', node, file: null, label: '', failed: null };
  const info = await takeSnapshot({ ...g, connectMaintenance: null, statusTimeoutMs: 1000 }, option, 'snap:0', {
    onProgress: (p) => seen.push(p),
  });
  expect(new Set(seen.map((p) => p.label))).toEqual(new Set([`Downloading the etcd snapshot from ${node}`]));
  expect(seen[0]).toMatchObject({ bytes: 0, total: 0 });
  expect(seen.at(-1)?.bytes).toBe(info.bytes);
  expect(existsSync(info.file)).toBe(true);
}, 60_000);
