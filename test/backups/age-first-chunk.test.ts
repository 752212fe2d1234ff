/**
 * Issue 16: with the age program on PATH, age-encryption (JavaScript) reads only the header and the first 64 KiB chunk,
 * to give the same sentences for a wrong key or a damaged header and to see what lies inside; the age program does
 * the payload. It was given the file in 1 MiB reads and decrypted every chunk of each (16 in JavaScript, 100-250 ms
 * under load before age could start); now it is given slices of 16 KiB until the first chunk is out. A damaged second
 * chunk is the age program's to refuse (with the same sentence as ever); a damaged first one is refused here.
 */
import { afterAll, describe, expect, test } from 'vitest';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decrypt } from '../../src/backups/age.js';
import { loadIdentity } from '../../src/backups/identity.js';
import { makeBackup, makeKey, toolsMissing } from './fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'talos-dr-age-first-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const CHUNK = 64 * 1024 + 16;

async function* once(bytes: Buffer): AsyncIterable<Uint8Array> {
  yield bytes;
}

describe.skipIf(toolsMissing !== null)('the age header and first chunk, read here before the age program', () => {
  test('a damaged second chunk is the age program’s to refuse: decrypt hands over the first chunk', async () => {
    const key = makeKey(dir, 'key.txt');
    const plain = randomBytes(5 * 64 * 1024);
    const file = readFileSync(makeBackup(dir, 'p.snap', plain, { age: key }));
    // The payload: after the header's last line ("--- " and its MAC) comes a 16-byte nonce, then the chunks.
    const payload = file.indexOf('\n', file.indexOf('\n---') + 1) + 1 + 16;
    const damaged = Buffer.from(file);
    const at = payload + CHUNK + 100;
    damaged[at] = (damaged[at] as number) ^ 0xff;
    const identity = await loadIdentity(key.file);
    const decryption = await decrypt(once(damaged), identity, 'p.snap.age', undefined);
    expect(decryption.payload).not.toBeNull();
    expect(Buffer.from(decryption.payload?.head ?? [])).toEqual(plain.subarray(0, 64 * 1024));
  });

  test('age-encryption is given the header and about the first chunk, not the whole 1 MiB read', async () => {
    const key = makeKey(dir, 'key3.txt');
    const file = readFileSync(makeBackup(dir, 'r.snap', randomBytes(1024 * 1024), { age: key }));
    const identity = await loadIdentity(key.file);
    // One read of the whole file, as the local file's stream gives 1 MiB at a time.
    const decryption = await decrypt(once(file), identity, 'r.snap.age', undefined);
    const payload = file.indexOf('\n', file.indexOf('\n---') + 1) + 1 + 16;
    // The first chunk needs the next byte after it to be known as not the last: at most two chunks' worth.
    expect(decryption.payload?.handed).toBeGreaterThan(payload + CHUNK);
    expect(decryption.payload?.handed).toBeLessThanOrEqual(payload + 2 * CHUNK);
  });

  test('a damaged first chunk is still refused here, with the one sentence', async () => {
    const key = makeKey(dir, 'key2.txt');
    const file = readFileSync(makeBackup(dir, 'q.snap', randomBytes(5 * 64 * 1024), { age: key }));
    const payload = file.indexOf('\n', file.indexOf('\n---') + 1) + 1 + 16;
    const damaged = Buffer.from(file);
    damaged[payload + 100] = (damaged[payload + 100] as number) ^ 0xff;
    const identity = await loadIdentity(key.file);
    await expect(decrypt(once(damaged), identity, 'q.snap.age', undefined)).rejects.toThrow(
      /^q\.snap\.age is damaged or truncated: its encrypted data does not authenticate; use another copy of the backup \(no file was kept\)\.$/,
    );
  });
});
