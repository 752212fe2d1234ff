/**
 * What a file is, from its first bytes: a bbolt database, or something that is not a plain etcd snapshot and must
 * never be uploaded (SAFETY rule 8). Each kind that is not bbolt comes with the sentence saying what to do.
 */
import type { SnapshotKind } from './types.js';
import { hasBoltMagic } from './bbolt.js';
import { UserError } from '../errors.js';

/** How many leading bytes detection needs (tar's "ustar" sits at 257; bbolt's meta 1 may sit up to 64 KiB in). */
export const HEAD_BYTES = 4096;

const AGE_BINARY = Buffer.from('age-encryption.org/v1');
const AGE_ARMORED = Buffer.from('-----BEGIN AGE ENCRYPTED FILE-----');
const USTAR = Buffer.from('ustar');

export interface KindVerdict {
  kind: SnapshotKind;
  /** why the file cannot be used as it is, with what to do; null for bbolt */
  problem: string | null;
}

/**
 * Recognises the file from `head` (its first bytes) and, for bbolt whose meta 0 is damaged, `page1Magic`: whether
 * a meta page sits at one of the page sizes bbolt may use.
 */
export function detectKind(head: Buffer, size: number, page1Magic = false): KindVerdict {
  if (size === 0)
    return { kind: 'empty', problem: 'The file is empty (0 bytes): it is not a snapshot; take a new one.' };
  if (startsWith(head, Buffer.from([0x1f, 0x8b]))) {
    return {
      kind: 'gzip',
      problem: 'The file is gzip-compressed: decompress it first (gunzip) and inspect the result.',
    };
  }
  if (startsWith(head, Buffer.from([0x28, 0xb5, 0x2f, 0xfd]))) {
    return {
      kind: 'zstd',
      problem:
        'The file is zstd-compressed: import it with talos-dr import FILE (or decompress it first, zstd -d) and use the plain snapshot.',
    };
  }
  if (startsWith(head, AGE_BINARY) || startsWith(head, AGE_ARMORED)) {
    return {
      kind: 'age',
      problem:
        'The file is age-encrypted: import it with talos-dr import FILE --identity KEYFILE (or decrypt it first, age -d -i KEYFILE) and use the plain snapshot.',
    };
  }
  if (head.length >= 262 && head.subarray(257, 262).equals(USTAR)) {
    return {
      kind: 'tar',
      problem: 'The file is a tar archive: extract the snapshot from it first (tar -xf) and inspect that file.',
    };
  }
  if (hasBoltMagic(head, 0) || page1Magic) return { kind: 'bbolt', problem: null };
  return {
    kind: 'unknown',
    problem:
      size < 1024
        ? `The file is only ${size} bytes and is not an etcd snapshot (no bbolt database header).`
        : 'The file is not an etcd snapshot: it has no bbolt database header (random or unknown data).',
  };
}

/**
 * A file refused for what it is, from its first bytes (inspectSnapshot's refuseOtherFormats): one sentence saying
 * what it is and what to do, and the kind for callers that word it their own way.
 */
export class NotASnapshotError extends UserError {
  readonly kind: SnapshotKind;
  constructor(verdict: KindVerdict) {
    super(verdict.problem ?? 'The file is not an etcd snapshot.');
    this.name = 'NotASnapshotError';
    this.kind = verdict.kind;
  }
}

function startsWith(head: Buffer, prefix: Buffer): boolean {
  return head.length >= prefix.length && head.subarray(0, prefix.length).equals(prefix);
}
