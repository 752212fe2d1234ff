/**
 * The snapshot download and the recovery upload go over raw HTTP/2 (h2stream.ts) and must not load @grpc/grpc-js:
 * it held about 13 MB of every such process, against issue 16's 100 MB peak (bench/RESULTS.md, transfer). grpc-js
 * loads with the first unary call. Run in a child process against the compiled client: `npm run build` first, as
 * `npm test` does.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { makePki, startFakeTalos, writeTalosconfig, type FakeTalos, type TestPki } from './fake-talos.js';

const run = promisify(execFile);
const dist = join(process.cwd(), 'dist', 'src', 'talos');
let pki: TestPki;
let talos: FakeTalos;

beforeAll(async () => {
  pki = await makePki();
  talos = await startFakeTalos(pki, {
    unary: { Version: () => ({ version: { tag: 'v1.11.6' } }) },
    streams: {
      EtcdSnapshot: () =>
        (async function* () {
          yield Buffer.alloc(1024, 1);
          yield Buffer.alloc(1024, 2);
        })(),
    },
    upload: () => ({}),
  });
});
afterAll(() => talos?.stop());

/** Downloads and uploads with the built client, then (with `then`) one more call; prints what was loaded. */
async function child(
  then: string,
): Promise<{ bytes: number; uploaded: boolean; grpcAfterData: boolean; grpcAtEnd: boolean }> {
  expect(existsSync(join(dist, 'client.js')), 'run "npm run build" first').toBe(true);
  const url = (file: string) => pathToFileURL(join(dist, file)).href;
  const script = `
    import { createRequire } from 'node:module';
    import { Readable } from 'node:stream';
    const { loadTalosconfig } = await import(${JSON.stringify(url('talosconfig.js'))});
    const { createTalosClient } = await import(${JSON.stringify(url('client.js'))});
    const grpcLoaded = () => Object.keys(createRequire(import.meta.url).cache).some((f) => f.includes('@grpc/grpc-js'));
    const client = createTalosClient(loadTalosconfig({ talosconfig: process.argv[1] }, {}));
    let bytes = 0;
    for await (const chunk of client.etcdSnapshot('127.0.0.1')) bytes += chunk.length;
    const upload = await client.etcdRecover('127.0.0.1', Readable.from([Buffer.alloc(4096, 3)]));
    const grpcAfterData = grpcLoaded();
    ${then}
    client.close();
    console.log(JSON.stringify({ bytes, uploaded: upload.ok, grpcAfterData, grpcAtEnd: grpcLoaded() }));`;
  const { stdout } = await run(
    process.execPath,
    ['--input-type=module', '-e', script, '--', writeTalosconfig(pki, [talos.address])],
    {
      timeout: 20_000,
    },
  );
  return JSON.parse(stdout.trim().split('\n').pop() ?? '{}');
}

it('a download and an upload do not load grpc-js', async () => {
  const seen = await child('');
  expect(seen).toEqual({ bytes: 2048, uploaded: true, grpcAfterData: false, grpcAtEnd: false });
});

it('(control) a unary call afterwards does load it, and answers, so the check above can fail', async () => {
  const seen = await child(
    `const version = await client.version(['127.0.0.1']); if (!version[0]?.ok) throw new Error('no version');`,
  );
  expect(seen).toEqual({ bytes: 2048, uploaded: true, grpcAfterData: false, grpcAtEnd: true });
});
