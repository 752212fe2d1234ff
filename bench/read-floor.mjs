// Diagnostic floor for bench/inspect.mjs: the least a Node process must do to compute etcd's status hash — start,
// read every byte of the file (128 KiB positional reads, as the reader's window: the size that stays in the core's L2
// cache, which measured fastest; 512 KiB took twice the CPU) and CRC-32C it (the same native
// @node-rs/crc32 the reader uses). No parsing at all. Set against `etcdctl snapshot status` it shows how much of the
// status walk's gap is Node itself (start-up, read() copies instead of Go's mmap) and how much is the reader.
// Usage: node bench/read-floor.mjs FILE — prints {bytes, crc32c}.
// With --sha256 it is the floor of the whole verification instead (issue 16): Node starts, reads the file in the same
// 128 KiB pieces inspect's hashing thread reads and sha256s it (node:crypto, OpenSSL) — set against `openssl dgst
// -sha256` it shows what Node's start-up and read() copies cost before any walking; prints {bytes, sha256}. That mode
// loads nothing but node:crypto and node:fs (not the CRC-32C addon, ~10-20 ms of dlopen): the hash begins as early as
// a Node process can begin it.
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';

const fd = openSync(process.argv[2], 'r');
const buf = Buffer.allocUnsafe(128 * 1024);
let position = 0;
if (process.argv.includes('--sha256')) {
  const hash = createHash('sha256');
  for (let n; (n = readSync(fd, buf, 0, buf.length, position)) > 0; position += n) hash.update(buf.subarray(0, n));
  closeSync(fd);
  console.log(JSON.stringify({ bytes: position, sha256: hash.digest('hex') }));
} else {
  const { createRequire } = await import('node:module');
  const { join } = await import('node:path');
  const { root } = await import('./lib.mjs');
  const { crc32c } = createRequire(join(root, 'package.json'))('@node-rs/crc32');
  let crc = 0;
  for (let n; (n = readSync(fd, buf, 0, buf.length, position)) > 0; position += n)
    crc = crc32c(buf.subarray(0, n), crc);
  closeSync(fd);
  console.log(JSON.stringify({ bytes: position, crc32c: crc >>> 0 }));
}
