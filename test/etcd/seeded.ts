/** Seeded random bytes for the snapshot tests, so a failing case can be replayed from its seed. */

/** xorshift32: the same seed gives the same sequence, in [0, 1). */
export function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 4294967296;
  };
}

/** `length` bytes drawn from `random`. */
export function randomBytes(length: number, random: () => number): Buffer {
  const out = Buffer.alloc(length);
  for (let i = 0; i < length; i++) out[i] = Math.floor(random() * 256);
  return out;
}
