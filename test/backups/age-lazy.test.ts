/**
 * age-encryption is loaded only when an age file is imported: the wizard's snapshot step (and so every drill and
 * recovery, and ~45 test files) imports the import pipeline, and loading the age library there cost ~0.1 s of CPU a
 * process for a backup most runs never open. Checked in a child process on the built modules, as the CLI loads them,
 * with a resolve hook that sees every module the process loads (ESM has no require.cache to look in).
 */
import { execFile } from 'node:child_process';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const dist = resolve(import.meta.dirname, '../../dist/src');
const url = (module: string) => JSON.stringify(pathToFileURL(join(dist, module)).href);

const HOOK = `let port;
export function initialize(data) { port = data.port; }
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  port.postMessage(r.url);
  return r;
}`;

describe('age-encryption is loaded only for an age file', () => {
  it('a drill, a recovery and the wizard snapshot step load without it; the identity loader loads it', async () => {
    const script = `
      import { register } from 'node:module';
      import { MessageChannel } from 'node:worker_threads';
      const { port1, port2 } = new MessageChannel();
      const seen = [];
      port1.on('message', (u) => seen.push(u));
      port1.unref();
      register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(HOOK)}), { data: { port: port2 }, transferList: [port2] });
      const settle = () => new Promise((r) => setTimeout(r, 100));
      const ageLoaded = () => seen.some((u) => u.includes('/age-encryption/'));
      await import(${url('commands/drill.js')});
      await import(${url('commands/recover.js')});
      await import(${url('wizard/snapshot.js')});
      await settle();
      const atStart = ageLoaded();
      await import(${url('backups/identity.js')});
      await settle();
      console.log(JSON.stringify({ atStart, afterIdentity: ageLoaded(), modules: seen.length > 20 }));`;
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { timeout: 60_000 });
    const seen = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as Record<string, unknown>;
    expect(seen).toEqual({ atStart: false, afterIdentity: true, modules: true });
  });
});
