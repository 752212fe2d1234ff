/** Small stream helpers for the import: a counting sha256 tap, a peek at the first bytes. */
import { createHash } from 'node:crypto';
import type { Hash } from 'node:crypto';

/** Counts and hashes what passes. */
export class Tap {
  private readonly hash: Hash = createHash('sha256');
  bytes = 0;
  private digest: string | null = null;
  update(chunk: Uint8Array): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
  }
  hex(): string {
    this.digest ??= this.hash.digest('hex');
    return this.digest;
  }
}

export async function* tap(
  stream: AsyncIterable<Uint8Array>,
  into: Tap,
  onBytes?: (bytes: number) => void,
): AsyncIterable<Uint8Array> {
  for await (const chunk of stream) {
    into.update(chunk);
    onBytes?.(into.bytes);
    yield chunk;
  }
}

/** Reads at least `n` bytes (or all there is) and gives them back with a stream that starts from them again. */
export async function peek(
  stream: AsyncIterable<Uint8Array>,
  n: number,
): Promise<{ head: Buffer; stream: AsyncIterable<Uint8Array> }> {
  const iterator = stream[Symbol.asyncIterator]();
  const taken: Uint8Array[] = [];
  let length = 0;
  let done = false;
  while (length < n) {
    const next = await iterator.next();
    if (next.done) {
      done = true;
      break;
    }
    taken.push(next.value);
    length += next.value.length;
  }
  const head = Buffer.concat(taken.map((c) => Buffer.from(c.buffer, c.byteOffset, c.byteLength)));
  async function* again(): AsyncIterable<Uint8Array> {
    yield* taken;
    if (done) return;
    for (;;) {
      const next = await iterator.next();
      if (next.done) return;
      yield next.value;
    }
  }
  return { head, stream: again() };
}

export function startsWith(head: Buffer, prefix: Buffer): boolean {
  return head.length >= prefix.length && head.subarray(0, prefix.length).equals(prefix);
}
