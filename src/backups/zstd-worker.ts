/**
 * zstd decoding (fzstd) on a thread of its own, so it runs beside the age decryption, hashing and writing of the main
 * thread instead of taking turns with them. Input arrives as {type:'data', bytes} (transferred), then {type:'end'};
 * each input message is acknowledged once decoded, so the main thread keeps only a few in flight. Output leaves in
 * pieces of about OUT_BYTES (transferred); then {type:'done'}, or {type:'error', message} when the data does not decode.
 */
import { parentPort } from 'node:worker_threads';
import { Decompress } from 'fzstd';

const OUT_BYTES = 1024 * 1024;
let pending: Uint8Array[] = [];
let pendingBytes = 0;
let ended = false;

function flush(): void {
  if (pendingBytes === 0) return;
  const out = new Uint8Array(pendingBytes);
  let at = 0;
  for (const piece of pending) {
    out.set(piece, at);
    at += piece.length;
  }
  pending = [];
  pendingBytes = 0;
  parentPort?.postMessage({ type: 'out', bytes: out }, [out.buffer]);
}

const decoder = new Decompress((chunk, final) => {
  pending.push(chunk);
  pendingBytes += chunk.length;
  if (final) ended = true;
  if (pendingBytes >= OUT_BYTES) flush();
});

parentPort?.on('message', (message: { type: 'data'; bytes: Uint8Array } | { type: 'end' }) => {
  try {
    if (message.type === 'data') {
      decoder.push(message.bytes);
      flush();
      parentPort?.postMessage({ type: 'ack' });
      return;
    }
    decoder.push(new Uint8Array(0), true);
    flush();
    if (!ended) throw new Error('unexpected end of zstd data');
    parentPort?.postMessage({ type: 'done' });
  } catch (error) {
    parentPort?.postMessage({ type: 'error', message: error instanceof Error ? error.message : String(error) });
  }
});
