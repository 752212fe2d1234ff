// Bench driver for bench/transfer.mjs: uploads FILE with the project's client (dist/src/talos/client.js, etcdRecover)
// as the wizard's recovery step does (src/wizard/upload.ts) — the file read 1 MiB at a time into reused buffers
// (h2stream's UploadFileSource), cut by the client into --chunk bytes (default: the client's own).
// The upload is otherwise only reachable inside the wizard. Usage:
//   node bench/upload-driver.mjs --talosconfig FILE -n NODE [--chunk BYTES] [--read-bytes N] [--fresh-reads] FILE
// (--read-bytes: another read size; the wizard read 64 KiB, Node's default, until the upload bench showed its cost.
//  --fresh-reads: fs.createReadStream, a new buffer per read, as the wizard read before UploadFileSource)
// Prints one JSON line {bytes, seconds, chunkSize}; exits 1 when the node refuses the upload.
import { createReadStream, statSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { root } from './lib.mjs';

const { values, positionals } = parseArgs({
  options: {
    talosconfig: { type: 'string' },
    node: { type: 'string', short: 'n' },
    chunk: { type: 'string' },
    'read-bytes': { type: 'string' },
    'fresh-reads': { type: 'boolean' },
  },
  allowPositionals: true,
});
const [file] = positionals;
if (!file || !values.node) {
  console.error('usage: node bench/upload-driver.mjs --talosconfig FILE -n NODE [--chunk BYTES] FILE');
  process.exit(2);
}
const client = await import(pathToFileURL(join(root, 'dist/src/talos/client.js')).href);
const { UploadFileSource, UPLOAD_READ_BYTES } = await import(
  pathToFileURL(join(root, 'dist/src/talos/h2stream.js')).href
);
const { client: talos } = client.loadClientFromFlags(
  { talosconfig: values.talosconfig, nodes: [values.node] },
  process.env,
);
const readBytes = Number(values['read-bytes'] ?? UPLOAD_READ_BYTES);
const chunkSize = values.chunk ? Number(values.chunk) : client.DEFAULT_UPLOAD_CHUNK_BYTES;
const t0 = process.hrtime.bigint();
try {
  const result = await talos.etcdRecover(
    values.node,
    values['fresh-reads']
      ? createReadStream(file, { highWaterMark: readBytes })
      : new UploadFileSource(file, readBytes),
    {
      chunkSize,
      totalBytes: statSync(file).size,
    },
  );
  if (!result.ok) {
    console.error(`upload failed: ${result.error?.message ?? JSON.stringify(result.error)}`);
    process.exitCode = 1;
  } else {
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    console.log(JSON.stringify({ bytes: statSync(file).size, seconds, chunkSize }));
  }
} finally {
  talos.close();
}
