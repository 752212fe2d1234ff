/**
 * `talos-dr inspect FILE [--json]`: verify a snapshot file offline and say whether it can be restored from.
 * Exit 0 when usable, 1 when not (PRODUCT.md §2).
 */
import { parseArgs } from 'node:util';
import type { CommandRun } from './types.js';
import { EXIT, UsageError, UserError } from '../errors.js';
import { inspectSnapshot } from '../etcd/inspect.js';
import { ProgressLine, formatReport } from '../etcd/format.js';

const USAGE = 'talos-dr inspect FILE [--json]';

const run: CommandRun = async (ctx) => {
  const { file, json } = parseInspectArgs(ctx.args);
  const progress = new ProgressLine(ctx.io.stderr, 'verifying');
  let report;
  try {
    report = await inspectSnapshot(file, {
      signal: ctx.signal,
      onProgress: (bytes, total) => progress.update(bytes, total),
    });
  } catch (error) {
    if (ctx.signal.aborted)
      throw new UserError('Stopped before the check finished; the file was not changed.', EXIT.stoppedByUser);
    throw error;
  } finally {
    progress.done();
  }
  ctx.io.stdout.write(json ? `${JSON.stringify(report, null, 2)}\n` : `${formatReport(report).join('\n')}\n`);
  return report.usable ? EXIT.ok : EXIT.failure;
};

function parseInspectArgs(args: string[]): { file: string; json: boolean } {
  let parsed;
  try {
    parsed = parseArgs({ args, options: { json: { type: 'boolean' } }, allowPositionals: true, strict: true });
  } catch (error) {
    const detail = error instanceof Error ? error.message.split('\n')[0] : String(error);
    throw new UsageError(`${detail}; usage: ${USAGE}.`);
  }
  const [file, ...extra] = parsed.positionals;
  if (file === undefined || extra.length > 0) {
    throw new UsageError(`Give exactly one snapshot file to inspect; usage: ${USAGE}.`);
  }
  return { file, json: parsed.values.json === true };
}

export default run;
