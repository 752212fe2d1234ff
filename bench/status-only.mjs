// Diagnostic driver for bench/inspect.mjs: only the status fields of a snapshot (the bbolt walk of src/etcd/inspect.ts's
// checkStructure, no sha256), so that part can be set against `etcdctl snapshot status` on its own. `inspect` itself has
// no status-only flag. Usage: node bench/status-only.mjs FILE — prints the status fields as JSON.
// BENCH_STATUS_SPLIT=0 walks in one thread, =1 always in two; unset: as inspect does (two from 64 MiB on, while a core is idle).
import { openSync, closeSync, fstatSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { root } from './lib.mjs';

const { checkStructure } = await import(pathToFileURL(join(root, 'dist/src/etcd/inspect.js')).href);
const fd = openSync(process.argv[2], 'r');
try {
  const env = process.env.BENCH_STATUS_SPLIT;
  const verdict = await checkStructure(fd, fstatSync(fd).size, env === undefined ? {} : { split: env === '1' });
  console.log(JSON.stringify({ ok: verdict.ok, ...verdict.status, totalSize: verdict.totalSize }));
  if (!verdict.ok) process.exitCode = 1;
} finally {
  closeSync(fd);
}
