/**
 * `talos-dr import` and `talos-dr inspect` on talos-backup files as a user runs them: the built CLI (dist/, `npm run
 * build` first) on files made with Debian's `age` and `zstd`, the way talos-backup makes them.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { createReadStream, existsSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { findPackageRoot } from '../../src/paths.js';
import { createHash, randomBytes } from 'node:crypto';
import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Encrypter } from 'age-encryption';
import { SNAPSHOT, cli, content, makeBackup, makeKey, toolsMissing } from './fixtures.js';
import { buildEtcdSnapshot } from '../../src/etcd/writer.js';
import type { importSnapshot as importSnapshotType } from '../../src/backups/decode.js';
import { importSnapshot } from '../../src/backups/decode.js';
import { loadIdentity } from '../../src/backups/identity.js';
import type { AgeKey } from './fixtures.js';

const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');
const NAME = 'prod-1-2026-12-02T10:00:00Z.snap';

let dir = '';
let key: AgeKey;
let otherKey: AgeKey;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'talos-dr-import-'));
  if (toolsMissing) return;
  key = makeKey(dir, 'key.txt');
  otherKey = makeKey(dir, 'other-key.txt');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function importCli(cwd: string, args: string[], env: NodeJS.ProcessEnv = {}) {
  return spawnSync(process.execPath, [cli, 'import', ...args], {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, TALOS_DR_IDENTITY_PASSPHRASE: '', ...env },
  });
}

/** A fresh folder to import into, so "no partial file kept" is checked by listing it. */
function outDir(name: string): string {
  const out = join(dir, name);
  mkdirSync(out);
  return out;
}

const expectOneSentence = (r: { status: number | null; stderr: string; stdout: string }, sentence: RegExp): void => {
  expect(r.status).toBe(1);
  expect(r.stdout).toBe('');
  const lines = r.stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(sentence);
  expect(r.stderr).not.toMatch(/\n\s+at |Error:/);
};

describe.skipIf(toolsMissing !== null)(
  `import talos-backup files${toolsMissing ? ` (skipped: ${toolsMissing})` : ''}`,
  () => {
    test.each([
      ['.snap', {}],
      ['.snap.zst', { zstd: true }],
      ['.snap.age', { age: true }],
      ['.snap.zst.age', { zstd: true, age: true }],
    ] as const)('%s: a new 0600 snapshot equal to the original, verified, with the sha256 chain', (suffix, layers) => {
      const src = outDir(`src${suffix}`);
      const file = makeBackup(src, NAME, SNAPSHOT, { zstd: 'zstd' in layers, age: 'age' in layers ? key : undefined });
      const out = outDir(`out${suffix}`);
      const r = importCli(out, [file, ...('age' in layers ? ['--identity', key.file] : [])]);
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      const plain = join(out, NAME);
      expect(readFileSync(plain).equals(SNAPSHOT)).toBe(true);
      expect(statSync(plain).mode & 0o777).toBe(0o600);
      expect(readFileSync(`${plain}.sha256`, 'utf8')).toBe(`${sha256(SNAPSHOT)}  ${NAME}\n`);
      expect(r.stdout).toContain(`source    ${sha256(readFileSync(file))}  ${file}`);
      expect(r.stdout).toContain(`plain     ${sha256(SNAPSHOT)}  ${plain}`);
      // the two ends only: the file as stored, the plain snapshot
      expect(r.stdout.match(/^ {2}\w+ +[0-9a-f]{64} /gm)).toHaveLength(2);
      expect(r.stdout).toMatch(/^integrity: verified/m);
      expect(r.stdout).toMatch(/^verdict: usable for recovery$/m);
      expect(readdirSync(out).sort()).toEqual([NAME, `${NAME}.sha256`]);
    });

    test('--json -o OUT: the chain and the report', () => {
      const file = makeBackup(outDir('json-src'), NAME, SNAPSHOT, { zstd: true, age: key });
      const out = outDir('json-out');
      const r = importCli(out, [file, '-i', key.file, '-o', 'restore-me.db', '--json']);
      expect(r.status).toBe(0);
      const result = JSON.parse(r.stdout) as {
        file: string;
        layers: string[];
        chain: { stage: string }[];
        report: { usable: boolean; file: string };
      };
      expect(result.file).toBe(join(out, 'restore-me.db'));
      expect(result.layers).toEqual(['age', 'zstd']);
      expect(result.chain.map((c) => c.stage)).toEqual(['source', 'plain']);
      expect(result.report).toMatchObject({ usable: true, file: join(out, 'restore-me.db') });
    });

    test('a wrong key: one sentence naming the key, no file kept', () => {
      const file = makeBackup(outDir('wrong-src'), NAME, SNAPSHOT, { zstd: true, age: key });
      const out = outDir('wrong-out');
      const r = importCli(out, [file, '--identity', otherKey.file]);
      expectOneSentence(
        r,
        new RegExp(`was not encrypted to the identity in .*other-key\\.txt \\(public key ${otherKey.recipient}\\)`),
      );
      expect(readdirSync(out)).toEqual([]);
    });

    test('an age file without --identity: one sentence saying to give it', () => {
      const file = makeBackup(outDir('noid-src'), NAME, SNAPSHOT, { age: key });
      const out = outDir('noid-out');
      expectOneSentence(importCli(out, [file]), /is age-encrypted: give the identity .* with --identity KEYFILE\.$/);
      expect(readdirSync(out)).toEqual([]);
    });

    test('a truncated .zst.age (an upload cut short): one sentence, no partial file', () => {
      const file = makeBackup(outDir('cut-src'), NAME, SNAPSHOT, { zstd: true, age: key });
      truncateSync(file, statSync(file).size - 40);
      const out = outDir('cut-out');
      expectOneSentence(
        importCli(out, [file, '-i', key.file]),
        /is damaged or truncated: its encrypted data does not authenticate/,
      );
      expect(readdirSync(out)).toEqual([]);
    });

    test('a damaged byte in the encrypted data: one sentence, no partial file', () => {
      const file = makeBackup(outDir('flip-src'), NAME, SNAPSHOT, { age: key });
      const bytes = readFileSync(file);
      bytes.writeUInt8(bytes.readUInt8(bytes.length - 500) ^ 0x40, bytes.length - 500);
      writeFileSync(file, bytes);
      const out = outDir('flip-out');
      expectOneSentence(
        importCli(out, [file, '-i', key.file]),
        /is damaged or truncated: its encrypted data does not authenticate/,
      );
      expect(readdirSync(out)).toEqual([]);
    });

    test('a truncated .zst: one sentence, no partial file', () => {
      const big = Buffer.concat([SNAPSHOT, randomBytes(256 * 1024)]);
      const file = makeBackup(outDir('zcut-src'), NAME, big, { zstd: true });
      truncateSync(file, Math.floor(statSync(file).size / 2));
      const out = outDir('zcut-out');
      expectOneSentence(importCli(out, [file]), /is damaged or truncated: its zstd-compressed data does not decode/);
      expect(readdirSync(out)).toEqual([]);
    });

    test('not a snapshot after decoding: one sentence, no file kept', () => {
      const file = makeBackup(outDir('junk-src'), NAME, randomBytes(100_000), { zstd: true, age: key });
      const out = outDir('junk-out');
      expectOneSentence(
        importCli(out, [file, '-i', key.file]),
        /is not an etcd snapshot after decryption and decompression \(.*\); check that it is a talos-backup file\.$/,
      );
      expect(readdirSync(out)).toEqual([]);
    });

    test('a damaged snapshot inside an intact .zst: one sentence naming the damage, no file kept', () => {
      const damaged = Buffer.from(SNAPSHOT);
      damaged.writeUInt8(damaged.readUInt8(damaged.length - 1) ^ 1, damaged.length - 1);
      const file = makeBackup(outDir('bad-inner-src'), NAME, damaged, { zstd: true });
      const out = outDir('bad-inner-out');
      expectOneSentence(
        importCli(out, [file]),
        /holds a damaged snapshot after decompression \(The sha256 trailer does not match the contents.*\); do not restore from it\.$/,
      );
      expect(readdirSync(out)).toEqual([]);
    });

    test('an existing output is never replaced', () => {
      const file = makeBackup(outDir('exists-src'), NAME, SNAPSHOT, { zstd: true });
      const out = outDir('exists-out');
      writeFileSync(join(out, NAME), 'keep me');
      expectOneSentence(importCli(out, [file]), /already exists; choose another file with -o/);
      expect(readFileSync(join(out, NAME), 'utf8')).toBe('keep me');
    });

    describe('a passphrase-protected identity (age -p on the key file)', () => {
      /** The key file sealed with a passphrase (age-encryption's scrypt recipient; `age -p` needs a terminal). */
      const sealKey = async (passphrase: string): Promise<string> => {
        const encrypter = new Encrypter();
        encrypter.setPassphrase(passphrase);
        encrypter.setScryptWorkFactor(10);
        const sealed = join(dir, `sealed-${passphrase}.age`);
        writeFileSync(sealed, await encrypter.encrypt(readFileSync(key.file)));
        return sealed;
      };

      test('with the passphrase: imported', async () => {
        const sealed = await sealKey('correct horse');
        const file = makeBackup(outDir('pp-src'), NAME, SNAPSHOT, { zstd: true, age: key });
        const out = outDir('pp-out');
        const r = importCli(out, [file, '-i', sealed], { TALOS_DR_IDENTITY_PASSPHRASE: 'correct horse' });
        expect(r.stderr).toBe('');
        expect(r.status).toBe(0);
        expect(readFileSync(join(out, NAME)).equals(SNAPSHOT)).toBe(true);
      });

      test('a wrong passphrase, or none without a terminal: one sentence each, nothing written', async () => {
        const sealed = await sealKey('battery staple');
        const file = makeBackup(outDir('pp-bad-src'), NAME, SNAPSHOT, { age: key });
        const out = outDir('pp-bad-out');
        expectOneSentence(
          importCli(out, [file, '-i', sealed], { TALOS_DR_IDENTITY_PASSPHRASE: 'wrong' }),
          /The passphrase for the identity .* is wrong/,
        );
        expectOneSentence(
          importCli(out, [file, '-i', sealed]),
          /is protected by a passphrase: run in a terminal to type it, or set TALOS_DR_IDENTITY_PASSPHRASE\.$/,
        );
        expect(readdirSync(out)).toEqual([]);
      });

      test('an identity file age would not read as it is stays on age-encryption, with the age program on PATH', async () => {
        const bin = outDir('age-bin-skipped');
        const calls = join(bin, 'calls');
        const real = spawnSync('sh', ['-c', 'command -v age'], { encoding: 'utf8' }).stdout.trim();
        writeFileSync(join(bin, 'age'), `#!/bin/sh\necho "$@" >> '${calls}'\nexec '${real}' "$@"\n`, { mode: 0o755 });
        const sealed = await sealKey('tr0ub4dor');
        // talos-dr skips a public-key line; age -i refuses it (unknown identity type)
        const withPublic = join(dir, 'with-public-key.txt');
        writeFileSync(withPublic, `${key.recipient}\n${readFileSync(key.file, 'utf8')}`);
        const file = makeBackup(outDir('skip-src'), NAME, SNAPSHOT, { zstd: true, age: key });
        const open = { name: file, open: () => createReadStream(file) as AsyncIterable<Uint8Array> };
        const path = process.env.PATH;
        process.env.PATH = `${bin}:${path ?? ''}`;
        try {
          for (const identity of [
            await loadIdentity(sealed, () => Promise.resolve('tr0ub4dor')),
            await loadIdentity(withPublic),
          ]) {
            const out = outDir(`skip-out-${String(identity.passphraseProtected)}`);
            const r = await importSnapshot(open, { out: join(out, NAME), identity });
            expect(r.report.usable).toBe(true);
            expect(readFileSync(join(out, NAME)).equals(SNAPSHOT)).toBe(true);
          }
        } finally {
          process.env.PATH = path;
        }
        expect(existsSync(calls)).toBe(false);
      });
    });

    describe('talos-dr inspect on a talos-backup file', () => {
      const inspectCli = (args: string[]) =>
        spawnSync(process.execPath, [cli, 'inspect', ...args], {
          encoding: 'utf8',
          env: { ...process.env, TMPDIR: dir },
        });

      test("with --identity: the chain, then the plain snapshot's report; nothing left behind", () => {
        const src = outDir('inspect-src');
        const file = makeBackup(src, NAME, SNAPSHOT, { zstd: true, age: key });
        const before = readdirSync(dir).length;
        const r = inspectCli([file, '--identity', key.file]);
        expect(r.stderr).toBe('');
        expect(r.status).toBe(0);
        expect(r.stdout).toMatch(/^decoded: .* \(zstd-compressed, age-encrypted\)/m);
        expect(r.stdout).toContain(`source    ${sha256(readFileSync(file))}  ${file}`);
        expect(r.stdout).toContain(`plain     ${sha256(SNAPSHOT)}`);
        expect(r.stdout).toMatch(/^snapshot info: hash [0-9a-f]{8}, revision 4,/m);
        expect(r.stdout).toMatch(/^verdict: usable for recovery$/m);
        expect(readdirSync(dir).length).toBe(before);
        const json = JSON.parse(inspectCli([file, '-i', key.file, '--json']).stdout) as Record<string, unknown>;
        expect(json).toMatchObject({ file, kind: 'bbolt', revision: 4, usable: true, layers: ['age', 'zstd'] });
      });

      test('.zst needs no identity; .age without one: one sentence', () => {
        const zst = makeBackup(outDir('inspect-zst-src'), NAME, SNAPSHOT, { zstd: true });
        expect(inspectCli([zst]).status).toBe(0);
        const aged = makeBackup(outDir('inspect-age-src'), NAME, SNAPSHOT, { age: key });
        expectOneSentence(inspectCli([aged]), /is age-encrypted: give the identity .* with --identity KEYFILE\.$/);
      });
    });

    test('Ctrl-C in the middle: exit 3, one sentence, no partial file', async () => {
      const big = Buffer.concat([SNAPSHOT, randomBytes(48 * 1024 * 1024)]);
      const file = makeBackup(outDir('stop-src'), NAME, big, { zstd: true, age: key });
      const out = outDir('stop-out');
      const child = spawn(process.execPath, [cli, 'import', file, '-i', key.file], {
        cwd: out,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
      // Interrupt once the partial file exists (the decoding has started writing).
      while (!readdirSync(out).some((name) => name.includes('.importing-'))) {
        if (child.exitCode !== null) break;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      child.kill('SIGINT');
      expect(await exited).toBe(3);
      expect(stderr.trim().split('\n')).toHaveLength(1);
      expect(stderr.trim()).toMatch(/^Stopped before the import finished; no file was kept\.$/);
      expect(readdirSync(out)).toEqual([]);
    });

    test('zstd on its own thread (built code: the worker is compiled JavaScript) gives what one thread gives', async () => {
      type Decode = { importSnapshot: typeof importSnapshotType };
      const { importSnapshot } = (await import(
        pathToFileURL(join(findPackageRoot(), 'dist/src/backups/decode.js')).href
      )) as Decode;
      // A few MiB of etcd history, so the decoder sends several pieces across.
      const history = Array.from({ length: 6000 }, (_, i) => ({
        kind: 'put' as const,
        revision: i + 2,
        key: `/registry/pods/default/pod-${i % 700}`,
        value: randomBytes(600),
        createRevision: i + 2,
        version: 1,
      }));
      const big = buildEtcdSnapshot({ ...content, history });
      const src = outDir('thread-src');
      const zst = makeBackup(src, NAME, big, { zstd: true });
      const cut = join(src, 'cut.snap.zst');
      writeFileSync(cut, readFileSync(zst).subarray(0, 2 * 1024 * 1024));
      const outcomes: unknown[] = [];
      for (const zstdInWorker of [true, false]) {
        const out = outDir(`thread-${zstdInWorker}`);
        const open = (file: string) => ({
          name: file,
          open: () => createReadStream(file) as AsyncIterable<Uint8Array>,
        });
        const whole = await importSnapshot(open(zst), { out: join(out, NAME), zstdInWorker }).then(
          (r) => ({ chain: r.chain.map((link) => link.sha256), usable: r.report.usable }),
          (e: Error) => e.message,
        );
        const truncated = await importSnapshot(open(cut), { out: join(out, 'cut.snap'), zstdInWorker }).catch(
          (e: Error) => e.message,
        );
        outcomes.push({ whole, truncated, left: readdirSync(out).sort() });
      }
      expect(outcomes[0]).toEqual(outcomes[1]);
      expect(outcomes[0]).toMatchObject({
        whole: { usable: true },
        truncated: expect.stringMatching(/zstd-compressed data does not decode/),
        left: [NAME, `${NAME}.sha256`],
      });
    });

    test('the zstd program on PATH decodes (the fast native decoder), with the same results and refusals as fzstd', async () => {
      // A zstd on PATH that notes each call, then runs the real one: the import must go through it.
      const bin = outDir('zstd-bin');
      const calls = join(bin, 'calls');
      const real = spawnSync('sh', ['-c', 'command -v zstd'], { encoding: 'utf8' }).stdout.trim();
      writeFileSync(join(bin, 'zstd'), `#!/bin/sh\necho "$@" >> '${calls}'\nexec '${real}' "$@"\n`, { mode: 0o755 });
      const history = Array.from({ length: 3000 }, (_, i) => ({
        kind: 'put' as const,
        revision: i + 2,
        key: `/registry/configmaps/default/cm-${i % 400}`,
        value: randomBytes(500),
        createRevision: i + 2,
        version: 1,
      }));
      const big = buildEtcdSnapshot({ ...content, history });
      const src = outDir('program-src');
      const zstAge = makeBackup(src, NAME, big, { zstd: true, age: key });
      const zst = join(src, `${NAME}.zst`);
      const cut = join(src, 'cut.snap.zst');
      writeFileSync(cut, readFileSync(zst).subarray(0, Math.floor(statSync(zst).size / 2)));
      const flipped = join(src, 'flipped.snap.zst.age');
      const bytes = readFileSync(zstAge);
      bytes.writeUInt8(bytes.readUInt8(bytes.length - 5000) ^ 0x40, bytes.length - 5000);
      writeFileSync(flipped, bytes);
      const identity = await loadIdentity(key.file);
      const open = (file: string) => ({ name: file, open: () => createReadStream(file) as AsyncIterable<Uint8Array> });
      const outcomes: unknown[] = [];
      const path = process.env.PATH;
      process.env.PATH = `${bin}:${path ?? ''}`;
      try {
        for (const zstdDecoder of ['fzstd', undefined] as const) {
          const out = outDir(`program-${zstdDecoder ?? 'default'}`);
          const run = (file: string, name: string) =>
            importSnapshot(open(file), { out: join(out, name), identity, zstdDecoder }).then(
              (r) => ({ chain: r.chain.map((link) => link.sha256), usable: r.report.usable }),
              (e: Error) => e.message,
            );
          outcomes.push({
            whole: await run(zstAge, NAME),
            truncated: await run(cut, 'cut.snap'),
            flipped: await run(flipped, 'flipped.snap'),
            left: readdirSync(out).sort(),
          });
        }
      } finally {
        process.env.PATH = path;
      }
      expect(outcomes[1]).toEqual(outcomes[0]);
      expect(outcomes[1]).toMatchObject({
        whole: { usable: true, chain: [sha256(readFileSync(zstAge)), sha256(big)] },
        truncated: expect.stringMatching(/is damaged or truncated: its zstd-compressed data does not decode/),
        flipped: expect.stringMatching(/is damaged or truncated: its encrypted data does not authenticate/),
        left: [NAME, `${NAME}.sha256`],
      });
      // fzstd when asked for; the program for each of the three files by default
      expect(readFileSync(calls, 'utf8').trim().split('\n')).toEqual(['-d -c -q', '-d -c -q', '-d -c -q']);
    });

    test('the age program on PATH decrypts the payload, with the same results and the same sentences as age-encryption', async () => {
      // An age on PATH that notes each call, then runs the real one.
      const bin = outDir('age-bin');
      const calls = join(bin, 'calls');
      const real = spawnSync('sh', ['-c', 'command -v age'], { encoding: 'utf8' }).stdout.trim();
      writeFileSync(join(bin, 'age'), `#!/bin/sh\necho "$@" >> '${calls}'\nexec '${real}' "$@"\n`, { mode: 0o755 });
      const history = Array.from({ length: 3000 }, (_, i) => ({
        kind: 'put' as const,
        revision: i + 2,
        key: `/registry/configmaps/default/cm-${i % 400}`,
        value: randomBytes(500),
        createRevision: i + 2,
        version: 1,
      }));
      const big = buildEtcdSnapshot({ ...content, history });
      const src = outDir('age-program-src');
      const zstAge = makeBackup(src, NAME, big, { zstd: true, age: key });
      const bytes = readFileSync(zstAge);
      const cut = join(src, 'cut.snap.zst.age');
      writeFileSync(cut, bytes.subarray(0, Math.floor(bytes.length / 2)));
      const flipped = join(src, 'flipped.snap.zst.age');
      const damaged = Buffer.from(bytes);
      damaged.writeUInt8(damaged.readUInt8(damaged.length - 5000) ^ 0x40, damaged.length - 5000);
      writeFileSync(flipped, damaged);
      const notAge = join(src, 'not-age.snap.zst.age');
      writeFileSync(
        notAge,
        Buffer.concat([Buffer.from('age-encryption.org/v1\nthis is no stanza\n'), randomBytes(4000)]),
      );
      const identity = await loadIdentity(key.file);
      const wrongIdentity = await loadIdentity(otherKey.file);
      const open = (file: string) => ({ name: file, open: () => createReadStream(file) as AsyncIterable<Uint8Array> });
      const outcomes: Record<string, unknown> = {};
      const path = process.env.PATH;
      const runs = [
        ['js', 'js', `${bin}:${path ?? ''}`],
        ['system', 'system', `${bin}:${path ?? ''}`],
        ['default', undefined, `${bin}:${path ?? ''}`],
        ['no age on PATH', undefined, '/nonexistent'],
      ] as const;
      try {
        for (const [label, ageDecoder, searchPath] of runs) {
          process.env.PATH = searchPath;
          const out = outDir(`age-program-${label.replace(/ /g, '-')}`);
          const run = (file: string, name: string, id = identity) =>
            importSnapshot(open(file), { out: join(out, name), identity: id, ageDecoder }).then(
              (r) => ({ chain: r.chain.map((link) => link.sha256), usable: r.report.usable }),
              (e: Error) => e.message,
            );
          outcomes[label] = {
            whole: await run(zstAge, NAME),
            wrongKey: await run(zstAge, 'wrong.snap', wrongIdentity),
            truncated: await run(cut, 'cut.snap'),
            flipped: await run(flipped, 'flipped.snap'),
            notAge: await run(notAge, 'not-age.snap'),
            left: readdirSync(out).sort(),
          };
        }
      } finally {
        process.env.PATH = path;
      }
      expect(outcomes.js).toMatchObject({
        whole: { usable: true, chain: [sha256(bytes), sha256(big)] },
        wrongKey: expect.stringMatching(/was not encrypted to the identity in .*other-key.txt \(public key age1/),
        truncated: expect.stringMatching(/is damaged or truncated: its encrypted data does not authenticate/),
        flipped: expect.stringMatching(/is damaged or truncated: its encrypted data does not authenticate/),
        notAge: expect.stringMatching(/not-age.snap.zst.age is not a readable age file \(/),
        left: [NAME, `${NAME}.sha256`],
      });
      expect(outcomes.system).toEqual(outcomes.js);
      expect(outcomes.default).toEqual(outcomes.js);
      expect(outcomes['no age on PATH']).toEqual(outcomes.js);
      // Called for the payloads only (a wrong key or a header that is not age is refused before), never by 'js' or
      // without an age on PATH; the key file is named, the key never is.
      const expected = Array.from({ length: 6 }, () => `-d -i ${key.file}`);
      expect(readFileSync(calls, 'utf8').trim().split('\n')).toEqual(expected);
    });
  },
);
