/**
 * `talos-dr backups list` and `talos-dr import s3://…` against a real S3-compatible server on 127.0.0.1 (gofakes3,
 * built from its Go module by scripts/build-s3.sh), with the AWS SDK on both sides: the objects are uploaded with
 * PutObject as talos-backup uploads them, under `<prefix>/<file>`.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SNAPSHOT, cli, makeBackup, makeKey, rfc3339, s3Missing, s3TestEnv, startFakeS3 } from './fixtures.js';
import type { AgeKey, FakeS3 } from './fixtures.js';

const skipReason = s3Missing;

let dir = '';
let server: FakeS3 | null = null;
let endpoint = '';
let key: AgeKey;
const HOUR = 3600_000;
const now = Date.now();
const names = {
  newest: `prod-1-${rfc3339(now - 2 * HOUR)}.snap.zst.age`,
  older: `prod-1-${rfc3339(now - 26 * HOUR)}.snap.zst.age`,
  plain: `prod-1-${rfc3339(now - 50 * HOUR)}.snap`,
};

/** Credentials the SDK finds in the environment; the instance-metadata lookup is off (it would leave loopback). */
const awsEnv = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = { ...process.env, ...s3TestEnv(dir), ...extra };
  for (const [name, value] of Object.entries(env)) if (value === undefined) delete env[name];
  return env;
};

function run(command: string, args: string[], cwd: string, env = awsEnv()) {
  return spawnSync(process.execPath, [cli, command, ...args], { cwd, encoding: 'utf8', env });
}

beforeAll(async () => {
  if (skipReason) return;
  dir = mkdtempSync(join(tmpdir(), 'talos-dr-s3-'));
  key = makeKey(dir, 'key.txt');
  server = await startFakeS3();
  endpoint = server.endpoint;
  const src = join(dir, 'src');
  mkdirSync(src);
  const put = async (objectKey: string, file: string) => server?.put(objectKey, readFileSync(file));
  await put(
    `prod-1/${names.newest}`,
    makeBackup(src, names.newest.replace(/\.zst\.age$/, ''), SNAPSHOT, { zstd: true, age: key }),
  );
  const olderBytes = Buffer.from(SNAPSHOT);
  await put(
    `prod-1/${names.older}`,
    makeBackup(src, names.older.replace(/\.zst\.age$/, ''), olderBytes, { zstd: true, age: key }),
  );
  await put(`prod-1/${names.plain}`, makeBackup(src, names.plain, SNAPSHOT, {}));
  writeFileSync(join(src, 'notes.txt'), 'not a backup');
  await put('prod-1/notes.txt', join(src, 'notes.txt'));
  await put(`staging/staging-${rfc3339(now)}.snap`, join(src, names.plain));
}, 60_000);

afterAll(() => {
  server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const outDir = (name: string): string => {
  const out = join(dir, name);
  mkdirSync(out);
  return out;
};

describe.skipIf(skipReason !== null)(`S3${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  test("backups list: the prefix's talos-backup objects newest first, with size and age; others counted", () => {
    const r = run('backups', ['list', 's3://backups/prod-1', '--endpoint', endpoint], dir);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toBe('3 talos-backup snapshots under s3://backups/prod-1/, newest first:');
    expect(lines[1]).toMatch(/^TAKEN\s+AGE\s+SIZE\s+LAYERS\s+OBJECT$/);
    expect(lines[2]).toMatch(
      new RegExp(
        `^${rfc3339(now - 2 * HOUR)}\\s+2 h( \\d+ min)? ago\\s+\\S+ (B|KiB)\\s+zstd\\+age\\s+s3://backups/prod-1/${names.newest}$`,
      ),
    );
    expect(lines[3]).toMatch(new RegExp(`26 h( \\d+ min)? ago .*s3://backups/prod-1/${names.older}$`));
    expect(lines[4]).toMatch(new RegExp(`2 d 2 h ago\\s+12\\.0 KiB\\s+plain\\s+s3://backups/prod-1/${names.plain}$`));
    expect(r.stdout).toContain('(1 other objects under the prefix are not talos-backup snapshots)');
    expect(lines.at(-1)).toMatch(/^The newest backup is 2 h( \d+ min)? old \(/);
  });

  test('backups list --json, the endpoint from AWS_ENDPOINT_URL and the credentials from a profile file', () => {
    const credentials = join(dir, 'credentials');
    writeFileSync(credentials, '[ops]\naws_access_key_id = talosdr\naws_secret_access_key = talosdr-secret\n');
    const env = awsEnv({
      AWS_ACCESS_KEY_ID: undefined,
      AWS_SECRET_ACCESS_KEY: undefined,
      AWS_PROFILE: 'ops',
      AWS_SHARED_CREDENTIALS_FILE: credentials,
      AWS_ENDPOINT_URL: endpoint,
    });
    const r = run('backups', ['list', 's3://backups/prod-1/', '--json'], dir, env);
    expect(r.stderr).toBe('');
    const listing = JSON.parse(r.stdout) as {
      backups: { key: string; size: number; layers: string[] }[];
      newest: { verdict: string };
    };
    expect(listing.backups.map((b) => b.key)).toEqual([
      `prod-1/${names.newest}`,
      `prod-1/${names.older}`,
      `prod-1/${names.plain}`,
    ]);
    expect(listing.backups[0]?.layers).toEqual(['zstd', 'age']);
    expect(listing.newest.verdict).toBe('fresh');
  });

  test('no credentials anywhere: one sentence saying where to put them', () => {
    const env = awsEnv({ AWS_ACCESS_KEY_ID: undefined, AWS_SECRET_ACCESS_KEY: undefined });
    const r = run('backups', ['list', 's3://backups/prod-1', '--endpoint', endpoint], dir, env);
    expect(r.status).toBe(1);
    expect(r.stderr.trim()).toBe(
      'No AWS credentials were found; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE for ~/.aws/credentials.',
    );
  });

  test('import s3://bucket/key: downloaded, decrypted, decompressed, verified; the chain starts at the object', () => {
    const out = outDir('one');
    const url = `s3://backups/prod-1/${names.older}`;
    const r = run('import', [url, '--identity', key.file, '--endpoint', endpoint], out);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const plain = names.older.replace(/\.zst\.age$/, '');
    expect(readFileSync(join(out, plain)).equals(SNAPSHOT)).toBe(true);
    expect(r.stdout).toMatch(
      new RegExp(`^  source    [0-9a-f]{64}  ${url.replace(/[+.]/g, '\\$&')}, zstd-compressed, age-encrypted`, 'm'),
    );
    expect(r.stdout).toMatch(/^verdict: usable for recovery$/m);
  });

  test('import s3://bucket/prefix --newest: the newest backup', () => {
    const out = outDir('newest');
    const r = run('import', ['s3://backups/prod-1', '--newest', '-i', key.file, '--endpoint', endpoint, '--json'], out);
    expect(r.stderr).toBe('');
    const result = JSON.parse(r.stdout) as { source: string; report: { usable: boolean } };
    expect(result.source).toBe(`s3://backups/prod-1/${names.newest}`);
    expect(result.report.usable).toBe(true);
    expect(readdirSync(out).sort()).toEqual([
      names.newest.replace(/\.zst\.age$/, ''),
      `${names.newest.replace(/\.zst\.age$/, '')}.sha256`,
    ]);
  });

  test.each([
    [
      'a key that is not there',
      ['s3://backups/prod-1/nope.snap.age'],
      /^There is no object at s3:\/\/backups\/prod-1\/nope\.snap\.age; list the backups with talos-dr backups list\.$/,
    ],
    [
      'a bucket that is not there',
      ['s3://nobucket/prod-1/x.snap'],
      /^There is no bucket nobucket; check the name, the endpoint and the region\.$/,
    ],
    [
      'a prefix without --newest',
      ['s3://backups/prod-1/'],
      /names a prefix, not a backup; give the object's full key .* or add --newest\.$/,
    ],
  ])('%s: one sentence, nothing written', (_what, args, sentence) => {
    const out = outDir(`missing-${args[0]?.length}`);
    const r = run('import', [...args, '--endpoint', endpoint], out);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr.trim()).toMatch(sentence);
    expect(readdirSync(out)).toEqual([]);
  });

  test('an endpoint nobody answers on: one sentence naming the endpoint setting', () => {
    const r = run('backups', ['list', 's3://backups/prod-1', '--endpoint', 'http://127.0.0.1:9'], dir);
    expect(r.status).toBe(1);
    expect(r.stderr.trim()).toMatch(
      /^The S3 endpoint cannot be reached for s3:\/\/backups\/prod-1 \(ECONNREFUSED\); check the endpoint/,
    );
  });
});
