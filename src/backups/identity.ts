/**
 * The age identity a talos-backup snapshot was encrypted to: an identity file as age-keygen writes it (comments, then
 * `AGE-SECRET-KEY-1…`), or the same file encrypted with a passphrase (`age -p`, binary or armored), which age itself
 * accepts as `-i`. The key stays in this process's memory: it is never written, logged or journalled.
 */
import { readFile, stat } from 'node:fs/promises';
import { Decrypter, armor } from 'age-encryption';
import { UserError } from '../errors.js';

/** An identity file is a few hundred bytes; anything much larger is not one. */
const MAX_IDENTITY_BYTES = 64 * 1024;
const AGE_BINARY = 'age-encryption.org/v1';
const AGE_ARMORED = '-----BEGIN AGE ENCRYPTED FILE-----';

/** Asks for the passphrase of a passphrase-protected identity file; null when none can be asked for. */
export type PassphraseSource = (identityFile: string) => Promise<string | null>;

export interface LoadedIdentity {
  /** where it was read from (for sentences) */
  file: string;
  /** the secret keys, `AGE-SECRET-KEY-1…` or `AGE-SECRET-KEY-PQ-1…` */
  keys: string[];
  /** whether the file was protected by a passphrase */
  passphraseProtected: boolean;
}

export async function loadIdentity(file: string, askPassphrase?: PassphraseSource): Promise<LoadedIdentity> {
  let bytes: Buffer;
  try {
    const info = await stat(file);
    if (!info.isFile()) throw new UserError(`The identity ${file} is not a file; give the age identity file's path.`);
    if (info.size > MAX_IDENTITY_BYTES) {
      throw new UserError(
        `The identity ${file} is ${info.size} bytes, too large to be an age identity file; give the file age-keygen wrote.`,
      );
    }
    bytes = await readFile(file);
  } catch (error) {
    if (error instanceof UserError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new UserError(`There is no identity file at ${file}; check the --identity path.`);
    if (code === 'EACCES' || code === 'EPERM')
      throw new UserError(`The identity ${file} cannot be read (permission denied); run as its owner.`);
    throw new UserError(`The identity ${file} cannot be read; check the --identity path.`);
  }
  const head = bytes.subarray(0, AGE_ARMORED.length).toString('latin1');
  if (head.startsWith(AGE_BINARY) || head.startsWith(AGE_ARMORED)) {
    const text = await unlockIdentity(file, bytes, head.startsWith(AGE_ARMORED), askPassphrase);
    return sealedIdentity(file, parseIdentityText(file, text), true);
  }
  return sealedIdentity(file, parseIdentityText(file, bytes.toString('utf8')), false);
}

/**
 * The keys are not enumerable and JSON leaves them out: an identity that ends up in a journal entry, a report or a
 * log line by mistake shows its file, never its key.
 */
function sealedIdentity(file: string, keys: string[], passphraseProtected: boolean): LoadedIdentity {
  const identity = { file, passphraseProtected } as LoadedIdentity;
  Object.defineProperty(identity, 'keys', { value: keys, enumerable: false });
  Object.defineProperty(identity, 'toJSON', {
    value: () => ({ file, passphraseProtected }),
    enumerable: false,
  });
  return identity;
}

async function unlockIdentity(
  file: string,
  bytes: Buffer,
  armored: boolean,
  askPassphrase: PassphraseSource | undefined,
): Promise<string> {
  const passphrase = askPassphrase ? await askPassphrase(file) : null;
  if (passphrase === null) {
    throw new UserError(
      `The identity ${file} is protected by a passphrase: run in a terminal to type it, or set TALOS_DR_IDENTITY_PASSPHRASE.`,
    );
  }
  let sealed: Uint8Array;
  try {
    sealed = armored ? armor.decode(bytes.toString('latin1')) : bytes;
  } catch {
    throw new UserError(`The identity ${file} is a damaged age-encrypted file; give the identity file age wrote.`);
  }
  const decrypter = new Decrypter();
  decrypter.addPassphrase(passphrase);
  try {
    return await decrypter.decrypt(sealed, 'text');
  } catch (error) {
    const message = error instanceof Error ? error.message : '';
    if (/no identity matched|invalid header HMAC/.test(message)) {
      throw new UserError(`The passphrase for the identity ${file} is wrong; type the passphrase it was sealed with.`);
    }
    throw new UserError(`The identity ${file} is encrypted but damaged; give an intact copy of the identity file.`);
  }
}

/** The secret keys of an identity file's text; the sentence says what is wrong when there is none. */
export function parseIdentityText(file: string, text: string): string[] {
  const keys: string[] = [];
  let publicKeys = 0;
  let plugins = 0;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    if (line.startsWith('AGE-SECRET-KEY-1') || line.startsWith('AGE-SECRET-KEY-PQ-1')) {
      // The decrypter validates the encoding; check it here so a damaged key is said before any download.
      try {
        new Decrypter().addIdentity(line);
      } catch {
        throw new UserError(`The identity ${file} holds a damaged secret key; give the file age-keygen wrote.`);
      }
      keys.push(line);
    } else if (line.startsWith('age1')) {
      publicKeys++;
    } else if (line.startsWith('AGE-PLUGIN-')) {
      plugins++;
    } else {
      throw new UserError(
        `The identity ${file} is not an age identity file (a line is neither a comment nor AGE-SECRET-KEY-1…); give the file age-keygen wrote.`,
      );
    }
  }
  if (keys.length > 0) return keys;
  if (plugins > 0) {
    throw new UserError(
      `The identity ${file} names an age plugin, which talos-dr cannot use; decrypt with age -d and import the result.`,
    );
  }
  if (publicKeys > 0) {
    throw new UserError(
      `The identity ${file} holds a public key (age1…), not the secret key; give the file with AGE-SECRET-KEY-1….`,
    );
  }
  throw new UserError(
    `The identity ${file} holds no age secret key (AGE-SECRET-KEY-1…); give the file age-keygen wrote.`,
  );
}
