/**
 * The AWS SDK is loaded only for an S3 location: `import FILE`, `recover` and the wizard's snapshot step tell an S3
 * location from a path without it (src/backups/s3-url.ts), and a local backup is opened without it — about half a
 * second of start-up under load that a local file never needs (issue 16's import ratio). Checked in a child process
 * on the built modules, as the CLI loads them.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const dist = resolve(import.meta.dirname, '../../dist/src');
const url = (module: string) => JSON.stringify(pathToFileURL(join(dist, module)).href);

describe('the AWS SDK is loaded only for S3', () => {
  it('a local backup is opened without it; an s3:// location loads it', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'talos-dr-s3-lazy-')), 'prod-2026-12-03T08:00:00Z.snap.zst.age');
    writeFileSync(file, 'age-encryption.org/v1\n');
    const script = `
      import { createRequire } from 'node:module';
      const sdkLoaded = () => Object.keys(createRequire(import.meta.url).cache).some((f) => f.includes('@aws-sdk/'));
      await import(${url('commands/import.js')});
      await import(${url('commands/recover.js')});
      const { openBackup, checkBackups } = await import(${url('backups/source.js')});
      const atImport = sdkLoaded();
      const opened = await openBackup(process.argv[1], { cwd: '/', env: {} });
      const afterFile = sdkLoaded();
      const env = { AWS_ENDPOINT_URL: 'http://127.0.0.1:9', AWS_ACCESS_KEY_ID: 'x', AWS_SECRET_ACCESS_KEY: 'y' };
      await checkBackups('s3://backups/prod', { env, now: new Date() }).catch(() => undefined);
      console.log(JSON.stringify({ atImport, afterFile, afterS3: sdkLoaded(), file: opened.source.file }));`;
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script, '--', file], {
      timeout: 60_000,
    });
    const seen = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as Record<string, unknown>;
    expect(seen).toEqual({ atImport: false, afterFile: false, afterS3: true, file });
  });
});
