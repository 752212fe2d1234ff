/**
 * Nothing but our sentences may reach stderr. Node prints DEP0123 when a TLS servername is an IP address, which
 * grpc-js's own credentials do for IP endpoints; our credentials must not. Run in a child process (warnings are
 * printed once per process) against the compiled client: `npm run build` first, as `npm test` does.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
  });
});
afterAll(() => talos?.stop());

async function child(script: string, ...args: string[]) {
  const { stdout, stderr } = await run(process.execPath, ['--input-type=module', '-e', script, '--', ...args], {
    timeout: 20_000,
  });
  return { stdout: stdout.trim(), stderr };
}

describe('stderr stays clean', () => {
  it('connects to an IP endpoint without Node warnings (no IP servername), for calls and raw HTTP/2 streams', async () => {
    expect(existsSync(join(dist, 'client.js')), 'run "npm run build" first').toBe(true);
    const url = (file: string) => pathToFileURL(join(dist, file)).href;
    const script = `
      const { loadTalosconfig } = await import(${JSON.stringify(url('talosconfig.js'))});
      const { createTalosClient } = await import(${JSON.stringify(url('client.js'))});
      const client = createTalosClient(loadTalosconfig({ talosconfig: process.argv[1] }, {}));
      const results = await client.version(['127.0.0.1']);
      let bytes = 0;
      for await (const chunk of client.etcdSnapshot('127.0.0.1')) bytes += chunk.length;
      client.close();
      console.log(results.map((r) => r.ok).join(), bytes);`;
    const { stdout, stderr } = await child(script, writeTalosconfig(pki, [talos.address]));
    expect(stdout).toBe('true 2048');
    expect(stderr).toBe('');
  });

  it('(control) grpc-js createSsl to the same IP does print DEP0123, so the check above can fail', async () => {
    const script = `
      import * as grpc from '@grpc/grpc-js';
      import { readFileSync } from 'node:fs';
      const [ca, cert, key, address] = process.argv.slice(1);
      const client = new grpc.Client(address, grpc.credentials.createSsl(readFileSync(ca), readFileSync(key), readFileSync(cert)));
      await new Promise((resolve) => client.waitForReady(Date.now() + 5000, resolve));
      client.close();`;
    const { writeFileSync, mkdtempSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(join(tmpdir(), 'talos-dr-dep-'));
    const files = { ca: pki.ca.certPem, cert: pki.client.certPem, key: pki.client.keyPem };
    for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
    const { stderr } = await child(script, join(dir, 'ca'), join(dir, 'cert'), join(dir, 'key'), talos.address);
    expect(stderr).toContain('DEP0123');
  });
});
