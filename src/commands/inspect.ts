/**
 * `talos-dr inspect FILE [--json]`: verify a snapshot file offline and say whether it can be restored from.
 * Exit 0 when usable, 1 when not (PRODUCT.md §2).
 */
import { parseArgs } from 'node:util';
import type { CommandRun } from './types.js';
import { EXIT, UsageError, UserError } from '../errors.js';
import { inspectSnapshot } from '../etcd/inspect.js';
import { ProgressLine, formatReport } from '../etcd/format.js';
import { inspectLayered } from '../backups/decode.js';
import type { LayeredInspection } from '../backups/decode.js';
import { loadIdentity } from '../backups/identity.js';
import { formatChain, passphraseFrom } from './import.js';

const USAGE = 'talos-dr inspect FILE [--identity KEYFILE] [--json]';

const run: CommandRun = async (ctx) => {
  const { file, json, identity } = parseInspectArgs(ctx.args);
  const progress = new ProgressLine(ctx.io.stderr, 'verifying');
  let report;
  let layered: LayeredInspection | null = null;
  try {
    // A talos-backup file (.zst, .age) is decoded into a private temporary file first (src/backups/decode.ts).
    layered = await inspectLayered(file, {
      identity: identity ? await loadIdentity(identity, passphraseFrom(ctx)) : undefined,
      signal: ctx.signal,
      onProgress: (bytes, total) => progress.update(bytes, total),
    });
    report =
      layered?.report ??
      (await inspectSnapshot(file, {
        signal: ctx.signal,
        // what is not bbolt is said in one sentence from its first pages; a gzip bomb is not hashed to its end
        refuseOtherFormats: true,
        onProgress: (bytes, total) => progress.update(bytes, total),
      }));
  } catch (error) {
    if (ctx.signal.aborted)
      throw new UserError('Stopped before the check finished; the file was not changed.', EXIT.stoppedByUser);
    throw error;
  } finally {
    progress.done();
  }
  const lines = [...(layered ? formatChain(file, layered) : []), ...formatReport(report)];
  const shown = layered ? { ...report, layers: layered.layers, chain: layered.chain } : report;
  ctx.io.stdout.write(json ? `${JSON.stringify(shown, null, 2)}\n` : `${lines.join('\n')}\n`);
  return report.usable ? EXIT.ok : EXIT.failure;
};

function parseInspectArgs(args: string[]): { file: string; json: boolean; identity: string | undefined } {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: { json: { type: 'boolean' }, identity: { type: 'string', short: 'i' } },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    const detail = error instanceof Error ? error.message.split('\n')[0] : String(error);
    throw new UsageError(`${detail}; usage: ${USAGE}.`);
  }
  const [file, ...extra] = parsed.positionals;
  if (file === undefined || extra.length > 0) {
    throw new UsageError(`Give exactly one snapshot file to inspect; usage: ${USAGE}.`);
  }
  return { file, json: parsed.values.json === true, identity: parsed.values.identity };
}

export default run;
