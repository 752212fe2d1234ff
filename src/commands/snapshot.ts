/**
 * `talos-dr snapshot -n NODE [-o FILE] [--raw] [--json]`: take a consistent snapshot (EtcdSnapshot) or a raw copy
 * of the database (Copy) from exactly one node, verify it, write it atomically with mode 0600 beside its .sha256.
 * Progress on stderr when it is a terminal; the summary (as `inspect` prints it) or the JSON on stdout.
 */
import { parseArgs } from 'node:util';
import type { CommandRun } from './types.js';
import { EXIT, UsageError } from '../errors.js';
import { acquireSnapshot } from '../etcd/acquire.js';
import { ProgressLine, formatBytes, formatReport } from '../etcd/format.js';

const USAGE = 'talos-dr snapshot -n NODE [-o FILE] [--raw] [--json]';

interface SnapshotArgs {
  node: string;
  outFile: string | undefined;
  raw: boolean;
  json: boolean;
}

const run: CommandRun = async (ctx) => {
  const args = parseSnapshotArgs(ctx.args, ctx.global.nodes);
  // Loaded only now: parsing mistakes above are reported without loading grpc.
  const { loadClientFromFlags } = await import('../talos/client.js');
  const { client } = loadClientFromFlags(ctx.global, ctx.io.env);
  const progress = new ProgressLine(
    ctx.io.stderr,
    args.raw ? `copying the database from ${args.node}` : `snapshot from ${args.node}`,
  );
  // Redrawn every second even when no byte comes, so a stalled stream shows its 0 B/s while the watchdog waits.
  let received = 0;
  const tick = setInterval(() => progress.update(received), 1000);
  try {
    const got = await acquireSnapshot(client, args.node, {
      outFile: args.outFile,
      dir: ctx.io.cwd,
      raw: args.raw,
      signal: ctx.signal,
      onProgress: (bytes) => progress.update((received = bytes)),
    });
    progress.done();
    if (args.json) {
      ctx.io.stdout.write(`${JSON.stringify(got, null, 2)}\n`);
    } else {
      const what = got.method === 'raw' ? 'raw database copy' : 'etcd snapshot';
      ctx.io.stdout.write(
        `${what} saved to "${got.file}" (${got.bytes} bytes, ${formatBytes(got.bytes)}), sha256 in "${got.sha256File}"\n`,
      );
      ctx.io.stdout.write(`${formatReport(got.report).join('\n')}\n`);
    }
    return got.report.usable ? EXIT.ok : EXIT.failure;
  } finally {
    clearInterval(tick);
    progress.done();
    client.close();
  }
};

function parseSnapshotArgs(argv: string[], nodes: string[] | undefined): SnapshotArgs {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        output: { type: 'string', short: 'o' },
        raw: { type: 'boolean' },
        json: { type: 'boolean' },
      },
      allowPositionals: false,
      strict: true,
    });
  } catch (error) {
    const detail = error instanceof Error ? error.message.split('\n')[0] : String(error);
    throw new UsageError(`${detail}; usage: ${USAGE}.`);
  }
  const [node, ...others] = nodes ?? [];
  if (node === undefined || others.length > 0) {
    throw new UsageError(
      `A snapshot is taken from exactly one node: give it with -n NODE (got ${nodes?.length ?? 0}); usage: ${USAGE}.`,
    );
  }
  const outFile = parsed.values.output;
  if (outFile !== undefined && outFile.trim() === '') throw new UsageError(`-o needs a file name; usage: ${USAGE}.`);
  return { node, outFile, raw: parsed.values.raw === true, json: parsed.values.json === true };
}

export default run;
