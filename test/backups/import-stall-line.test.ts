/**
 * `talos-dr import s3://…` on a terminal while the download stalls (a loopback server that sends the first 64 KiB of
 * the object and then nothing, keeping the connection open): the progress line keeps being drawn, the same bytes at a
 * falling rate, instead of looking frozen; and once the import ends (here stopped by the user) nothing more is drawn.
 * Before: one line when the bytes came, then nothing until the end.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import run from '../../src/commands/import.js';
import { s3TestEnv } from './fixtures.js';

const SIZE = 4 * 1024 * 1024;
let server: Server | null = null;
let endpoint = '';
let dir = '';
const saved = { ...process.env };

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'talos-dr-stall-line-'));
  // the S3 client reads its credentials from the process's environment
  Object.assign(process.env, s3TestEnv(dir));
  server = createServer((req, res) => {
    res.writeHead(200, {
      'content-length': String(SIZE),
      'content-type': 'application/octet-stream',
      etag: '"0123456789abcdef"',
      'last-modified': new Date().toUTCString(),
    });
    if (req.method === 'GET') res.write(Buffer.alloc(64 * 1024, 1));
    else res.end();
  });
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(() => {
  for (const variable of Object.keys(process.env)) if (!(variable in saved)) delete process.env[variable];
  Object.assign(process.env, saved);
  server?.closeAllConnections();
  server?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('the import line while an S3 download stalls', () => {
  test('drawn again with the same bytes and a lower rate; nothing after the end', async () => {
    const writes: string[] = [];
    const stderr = Object.assign(
      new Writable({
        write(chunk: Buffer, _encoding, done) {
          writes.push(chunk.toString());
          done();
        },
      }),
      { isTTY: true },
    );
    const stdout = new Writable({ write: (_c, _e, done) => done() });
    const stop = new AbortController();
    const importing = run({
      args: ['s3://backups/prod-1-2026-12-02T10:00:00Z.snap', '--endpoint', endpoint, '-o', join(dir, 'out.db')],
      global: {} as never,
      io: { stdout, stderr, stdinIsTTY: false, env: process.env, cwd: dir },
      signal: stop.signal,
    }).catch((error: unknown) => error);
    // the first bytes arrive, then nothing: wait until the stalled line has been drawn three times (once a second; on
    // a loaded machine the timer may fire later, so the wait is bounded generously, not timed)
    const stalled = () => writes.filter((w) => w.includes('downloading: 64.0 KiB of 4.0 MiB'));
    const until = Date.now() + 20_000;
    while (stalled().length < 3 && Date.now() < until) await sleep(50);
    const lines = stalled();
    expect(lines.length).toBeGreaterThanOrEqual(3);
    const rates = lines.map((l) => /, ([\d.]+ \w+)\/s/.exec(l)?.[1]);
    expect(new Set(rates).size).toBeGreaterThanOrEqual(3);
    stop.abort();
    const ended = await importing;
    expect(String(ended)).toMatch(/Stopped before the import finished/);
    const count = writes.length;
    await sleep(1500);
    expect(writes).toHaveLength(count);
    expect(writes.at(-1)).toBe('\r\x1b[2K');
  }, 30_000);
});
