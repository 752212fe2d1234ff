/** Step 8's upload: the snapshot file streamed to EtcdRecover, its progress sent to the machine a few times a second. */
import { basename } from 'node:path';
import type { Readable } from 'node:stream';
import { fromCallback } from 'xstate';
import { UploadFileSource } from '../talos/h2stream.js';
import type { RecoveryEvent } from '../../machines/recovery-types.js';
import type { EffectDeps } from './deps.js';
import { ActionError, ledgered, messageOf, unwrap } from './ledger.js';

/** Fewest milliseconds between two progress events: every one is a state.json write. */
const PROGRESS_EVERY_MS = 200;

/**
 * The snapshot file as the upload reads it: 1 MiB reads (with Node's default 64 KiB the reads were most of the
 * upload's CPU) into a few reused buffers (h2stream's UploadFileSource): a new 1 MiB buffer per read, as
 * fs.createReadStream makes, piled up dead until a collection, 30 of the upload's ~99 MB peak (bench/transfer.mjs,
 * bench/upload-driver.mjs). The client re-cuts the bytes into its own chunk size.
 */
export function snapshotSource(file: string): Readable {
  return new UploadFileSource(file);
}

export function uploadActor(deps: EffectDeps) {
  return fromCallback<RecoveryEvent, { node: string; file: string; bytes: number; opId: string }>(
    ({ input, sendBack }) => {
      const abort = new AbortController();
      let last = 0;
      const onProgress = (p: { bytes: number; total?: number }) => {
        if (Date.now() - last < PROGRESS_EVERY_MS && p.bytes < input.bytes) return;
        last = Date.now();
        sendBack({ type: 'upload.progress', bytes: p.bytes, total: p.total ?? input.bytes, restarts: 0 });
      };
      ledgered(deps, {
        opId: input.opId,
        action: `upload ${basename(input.file)} (EtcdRecover)`,
        node: input.node,
        destructive: false,
        send: async () => {
          const result = await deps.client.etcdRecover(input.node, snapshotSource(input.file), {
            signal: abort.signal,
            onProgress,
            totalBytes: input.bytes,
          });
          unwrap(result, 'the snapshot upload');
        },
      }).then(
        () => sendBack({ type: 'upload.done' }),
        (error: unknown) => {
          if (abort.signal.aborted) return;
          const e = error instanceof ActionError ? error : new ActionError(messageOf(error), true);
          sendBack({
            type: 'upload.failed',
            error: e.message,
            retryable: e.retryable || !e.mayHaveLanded,
            // a rebooting node refuses connections (nothing listens on its address; a stream the reboot cut ends
            // Unavailable "error reading from server: EOF"): the machine waits for it to answer again
            unanswered: e.unanswered,
          });
        },
      );
      return () => abort.abort();
    },
  );
}
