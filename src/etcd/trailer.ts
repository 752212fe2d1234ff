/**
 * The sha256 trailer of an etcd API snapshot (etcd-snapshot-facts.md §2, §4): the server appends sha256 of every byte
 * it sent; a file has a trailer exactly when `size % 512 == 32` (nothing else marks it). Restore checks
 * sha256(file[0:size-32]) against the last 32 bytes.
 *
 * One sequential pass computes both the file's own sha256 and the trailer check: the hash of the body is copied just
 * before the last 32 bytes go in.
 */
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';

export const TRAILER_SIZE = 32;
/** Large sequential reads: node:crypto hashes at memory speed, the read of the next piece overlaps the hashing. */
const READ_BYTES = 4 * 1024 * 1024;

export type TrailerVerdict = 'verified' | 'absent' | 'mismatch';

/** The size rule etcd's restore uses: the smallest disk sector is 512 bytes and pages are multiples of it. */
export function hasTrailer(size: number): boolean {
  return size >= TRAILER_SIZE && size % 512 === TRAILER_SIZE;
}

export interface FileDigest {
  /** sha256 of the whole file, lowercase hex */
  sha256: string;
  trailer: TrailerVerdict;
  /** when the file has a trailer: what it says and what the body hashes to (hex) */
  trailerExpected: string | null;
  trailerComputed: string | null;
}

export interface DigestOptions {
  signal?: AbortSignal | undefined;
  onProgress?: ((bytes: number, total: number) => void) | undefined;
}

/** Positional read: how many bytes landed in buf[offset…]. */
export type PositionalRead = (buf: Buffer, offset: number, length: number, position: number) => Promise<number>;

/** Hashes an open file from start to `size` (reading positionally, so it can run beside other readers). */
export async function digestHandle(handle: FileHandle, size: number, opts: DigestOptions = {}): Promise<FileDigest> {
  return digestReader(
    async (buf, offset, length, position) => {
      const { bytesRead } = await handle.read(buf, offset, length, position);
      return bytesRead;
    },
    size,
    opts,
  );
}

/** Hashes `size` bytes read through `read`: two large buffers, the next read in flight while one is hashed. */
export async function digestReader(read: PositionalRead, size: number, opts: DigestOptions = {}): Promise<FileDigest> {
  const withTrailer = hasTrailer(size);
  const bodyEnd = withTrailer ? size - TRAILER_SIZE : size;
  const hash = createHash('sha256');
  let bodyDigest: Buffer | null = withTrailer && bodyEnd === 0 ? hash.copy().digest() : null;
  const trailer = withTrailer ? Buffer.alloc(TRAILER_SIZE) : null;
  const buffers = [
    Buffer.allocUnsafe(Math.min(READ_BYTES, Math.max(size, 1))),
    Buffer.allocUnsafe(Math.min(READ_BYTES, Math.max(size, 1))),
  ];
  let position = 0;
  let turn = 0;
  let pending = size > 0 ? readPiece(read, buffers[0] as Buffer, position, size) : null;
  while (pending) {
    const { buf, length, at } = await pending;
    opts.signal?.throwIfAborted();
    position = at + length;
    turn ^= 1;
    pending = position < size ? readPiece(read, buffers[turn] as Buffer, position, size) : null;
    const piece = buf.subarray(0, length);
    if (withTrailer && at < bodyEnd && position >= bodyEnd) {
      // This piece holds the end of the body: hash up to it, keep that digest, then go on with the rest.
      hash.update(piece.subarray(0, bodyEnd - at));
      bodyDigest = hash.copy().digest();
      hash.update(piece.subarray(bodyEnd - at));
    } else {
      hash.update(piece);
    }
    if (trailer && position > bodyEnd) copyTrailerBytes(piece, at, bodyEnd, trailer);
    opts.onProgress?.(position, size);
  }
  const sha256 = hash.digest('hex');
  if (!withTrailer || !trailer || !bodyDigest) {
    return { sha256, trailer: 'absent', trailerExpected: null, trailerComputed: null };
  }
  return {
    sha256,
    trailer: bodyDigest.equals(trailer) ? 'verified' : 'mismatch',
    trailerExpected: trailer.toString('hex'),
    trailerComputed: bodyDigest.toString('hex'),
  };
}

async function readPiece(
  read: PositionalRead,
  buf: Buffer,
  at: number,
  size: number,
): Promise<{ buf: Buffer; length: number; at: number }> {
  const wanted = Math.min(buf.length, size - at);
  let length = 0;
  while (length < wanted) {
    const bytesRead = await read(buf, length, wanted - length, at + length);
    if (bytesRead === 0) throw new Error(`the file became shorter while it was being read (at byte ${at + length})`);
    length += bytesRead;
  }
  return { buf, length, at };
}

/** Copies whichever of the last 32 bytes fall in this piece (the trailer can straddle two pieces). */
function copyTrailerBytes(piece: Buffer, at: number, bodyEnd: number, trailer: Buffer): void {
  const from = Math.max(bodyEnd, at);
  piece.copy(trailer, from - bodyEnd, from - at, piece.length);
}

/** sha256 of a whole file, lowercase hex; read through a read-only handle. */
export async function sha256File(path: string, opts: DigestOptions = {}): Promise<string> {
  return (await digestPath(path, opts)).sha256;
}

/** The trailer verdict of a file: verified, absent (size rule says none: a raw copy) or mismatch. */
export async function verifyTrailer(path: string, opts: DigestOptions = {}): Promise<TrailerVerdict> {
  return (await digestPath(path, opts)).trailer;
}

export async function digestPath(path: string, opts: DigestOptions = {}): Promise<FileDigest> {
  const handle = await open(path, 'r');
  try {
    const { size } = await handle.stat();
    return await digestHandle(handle, size, opts);
  } finally {
    await handle.close();
  }
}
