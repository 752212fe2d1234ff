/** age decryption as a stream: the header checked by age-encryption here, the payload by the age program or here. */
import { Readable } from 'node:stream';
import { Decrypter, identityToRecipient } from 'age-encryption';
import { UserError } from '../errors.js';
import type { LoadedIdentity } from './identity.js';
import { AgeProgramError, ageInProcess, ageProgramFor } from './programs.js';

/** What decrypt gives: the plain bytes as a stream, and when the age program does the payload, what it needs. */
export interface Decryption {
  plain: AsyncIterable<Uint8Array>;
  /**
   * for the age program: the whole age file again (`ciphertext`, from its first byte), the program and key file,
   * and the first plain bytes (`head`, decrypted here), to tell what lies inside before the program starts
   */
  payload: {
    ciphertext: AsyncIterable<Uint8Array>;
    program: string;
    keyFile: string;
    head: Uint8Array;
    /** bytes of the file age-encryption was given, for the header and the first chunk (tests, benchmarks) */
    handed: number;
  } | null;
}

/**
 * age decryption as a stream: the header is read (and the key tried) here before this returns, by age-encryption
 * whichever decrypter then does the payload, so a wrong key, a damaged header or a file that is not age give one and
 * the same sentence. The payload goes to the age program on PATH when there is one (see ageProgramFor): it decrypts
 * about 8 times faster than age-encryption's JavaScript ChaCha20-Poly1305 (bench/RESULTS.md, import rows). Its first
 * chunk (64 KiB) is also decrypted here, so the caller knows what the program will give before starting it.
 */
export async function decrypt(
  stream: AsyncIterable<Uint8Array>,
  identity: LoadedIdentity,
  name: string,
  decoder: 'system' | 'js' | undefined,
): Promise<Decryption> {
  const decrypter = new Decrypter();
  for (const key of identity.keys) decrypter.addIdentity(key);
  const program = decoder === 'js' ? null : await ageProgramFor(identity);
  if (!program) {
    const web = Readable.toWeb(Readable.from(stream, { objectMode: false })) as ReadableStream<Uint8Array>;
    const plain = await decrypter.decrypt(web).catch((error: unknown) => ageHeaderFailure(error, identity, name));
    return { plain: ageErrors(plain, name), payload: null };
  }
  // The bytes age-encryption takes to read the header and the first chunk are kept, to be given to age again.
  const iterator = stream[Symbol.asyncIterator]();
  const taken: Uint8Array[] = [];
  let detached = false;
  let pulling: Promise<unknown> = Promise.resolve();
  // a failure of the source itself (a stalled or cut download) is told as such, never as data that does not decrypt
  let sourceFailure: unknown = null;
  // What arrives is handed over in slices of HANDED_BYTES: age-encryption decrypts every whole chunk of what it is
  // given at once, so a 1 MiB read (16 chunks, in JavaScript) cost 100-250 ms before age could start, for one chunk.
  let unhanded: Uint8Array | null = null;
  let handed = 0;
  const hand = (controller: ReadableStreamDefaultController<Uint8Array>, bytes: Uint8Array): void => {
    const slice = bytes.subarray(0, HANDED_BYTES);
    handed += slice.length;
    controller.enqueue(slice);
    unhanded = bytes.length > HANDED_BYTES ? bytes.subarray(HANDED_BYTES) : null;
  };
  const recorded = new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        // Once the first chunk is read, age-encryption's payload stream gets nothing more (it is never read again).
        if (detached) return new Promise<void>(() => undefined);
        if (unhanded) {
          hand(controller, unhanded);
          return;
        }
        const next = iterator.next().then((item) => {
          if (item.done) controller.close();
          else {
            taken.push(item.value);
            hand(controller, item.value);
          }
        });
        pulling = next.catch((error: unknown) => {
          sourceFailure = error;
        });
        return next;
      },
    },
    { highWaterMark: 0 },
  );
  const payload = await decrypter.decrypt(recorded).catch((error: unknown) => ageHeaderFailure(error, identity, name));
  const first = await payload
    .getReader()
    .read()
    .catch(async () => {
      await pulling;
      throw sourceFailure ?? notAuthentic(name);
    });
  detached = true;
  await pulling;
  async function* again(): AsyncIterable<Uint8Array> {
    yield* taken;
    for (;;) {
      const next = await iterator.next();
      if (next.done) return;
      yield next.value;
    }
  }
  const ciphertext = again();
  return {
    plain: ageErrors(ageInProcess(ciphertext, program, identity.file), name),
    payload: { ciphertext, program, keyFile: identity.file, head: first.value ?? new Uint8Array(0), handed },
  };
}

/** Slices age-encryption is given the file in, for the header and first chunk (a chunk is 64 KiB + 16). */
const HANDED_BYTES = 16 * 1024;

/** The sentence for a payload that does not decrypt. */
export function notAuthentic(name: string): UserError {
  return new UserError(
    `${name} is damaged or truncated: its encrypted data does not authenticate; use another copy of the backup (no file was kept).`,
  );
}

/** The sentence for a header age-encryption refused. */
async function ageHeaderFailure(error: unknown, identity: LoadedIdentity, name: string): Promise<never> {
  const message = error instanceof Error ? error.message : '';
  if (/no identity matched/.test(message)) {
    const recipients = await Promise.all(identity.keys.map((key) => identityToRecipient(key).catch(() => '?')));
    throw new UserError(
      `${name} was not encrypted to the identity in ${identity.file} (public key ${recipients.join(', ')}); use the secret key whose public key talos-backup has as AGE_X25519_PUBLIC_KEY.`,
    );
  }
  if (/invalid header HMAC/.test(message)) {
    throw new UserError(`${name} has a damaged age header (its MAC does not match); use another copy of the backup.`);
  }
  throw new UserError(
    `${name} is not a readable age file (${message || 'bad header'}); use another copy of the backup.`,
  );
}

export async function* ageErrors(
  plain: ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>,
  name: string,
): AsyncIterable<Uint8Array> {
  try {
    for await (const chunk of plain as unknown as AsyncIterable<Uint8Array>) yield chunk;
  } catch (error) {
    if (error instanceof UserError || error instanceof AgeProgramError) throw error;
    throw notAuthentic(name);
  }
}
