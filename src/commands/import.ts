/**
 * `talos-dr import SOURCE [--identity KEYFILE] [-o OUT] [--json]`: a talos-backup snapshot (`.snap`, `.snap.zst`,
 * `.snap.age`, `.snap.zst.age`) from a file or from S3 (s3://bucket/key, or s3://bucket/prefix --newest), decrypted
 * and decompressed as a stream into a new 0600 plain snapshot, verified as a taken one, with the sha256 chain from
 * the file as stored to the plain snapshot. Exit 0 when the snapshot is usable; nothing is kept otherwise.
 */
import { basename, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { CommandContext, CommandRun } from './types.js';
import { EXIT, UsageError, UserError } from '../errors.js';
import { formatBytes, formatReport } from '../etcd/format.js';
import { importSnapshot } from '../backups/decode.js';
import type { ImportResult } from '../backups/decode.js';
import { loadIdentity } from '../backups/identity.js';
import type { LoadedIdentity, PassphraseSource } from '../backups/identity.js';
import { isS3Url } from '../backups/s3-url.js';
import type { S3Options } from '../backups/s3.js';
import { openBackup } from '../backups/source.js';
import type { OpenedBackup } from '../backups/source.js';
import { formatDuration } from '../backups/freshness.js';

const USAGE =
  'talos-dr import FILE|s3://BUCKET/KEY [--identity KEYFILE] [-o OUT] [--newest] [--endpoint URL] [--region R] [--json]';

export interface ImportArgs {
  source: string;
  identity: string | undefined;
  out: string | undefined;
  newest: boolean;
  json: boolean;
  s3: S3Options;
}

const run: CommandRun = async (ctx) => {
  const args = parseImportArgs(ctx.args);
  if (args.newest && !isS3Url(args.source)) {
    throw new UsageError(`--newest picks from an S3 prefix (s3://BUCKET/PREFIX); usage: ${USAGE}.`);
  }
  const identity = args.identity
    ? await loadIdentity(resolve(ctx.io.cwd, args.identity), passphraseFrom(ctx))
    : undefined;
  const progress = new TransferLine(ctx.io.stderr, isS3Url(args.source) ? 'downloading' : 'importing');
  let result: ImportResult;
  let opened: OpenedBackup | null = null;
  try {
    opened = await openBackup(args.source, {
      cwd: ctx.io.cwd,
      env: ctx.io.env,
      s3: args.s3,
      newest: args.newest,
      signal: ctx.signal,
    });
    if (opened.chosen) {
      progress.note(`newest backup: ${opened.source.name} (${formatBytes(opened.chosen.size)})`);
    }
    const out = args.out ? resolve(ctx.io.cwd, args.out) : join(ctx.io.cwd, opened.plainName);
    result = await importSnapshot(opened.source, {
      out,
      identity,
      signal: ctx.signal,
      onProgress: (bytes, total) => progress.update(bytes, total),
      onVerifyProgress: (bytes, total) => progress.update(bytes, total, 'verifying'),
    });
  } catch (error) {
    if (ctx.signal.aborted)
      throw new UserError('Stopped before the import finished; no file was kept.', EXIT.stoppedByUser);
    throw error;
  } finally {
    progress.done();
    opened?.close();
  }
  ctx.io.stdout.write(args.json ? `${JSON.stringify(result, null, 2)}\n` : `${formatImport(result).join('\n')}\n`);
  return result.report.usable ? EXIT.ok : EXIT.failure;
};

/** For `inspect` of a talos-backup file: what it was decoded from, before the plain snapshot's report. */
export function formatChain(file: string, layered: Pick<ImportResult, 'chain' | 'layers'>): string[] {
  const lines = [
    `decoded: ${file} (${describe(layered.layers)}); the lines after the chain are about the plain snapshot in it`,
  ];
  lines.push('sha256 chain:');
  for (const link of layered.chain) {
    const what =
      link.stage === 'source'
        ? file
        : link.stage === 'decrypted'
          ? `after decryption, ${describe(link.layers)}`
          : 'the plain snapshot (decoded into a temporary file, removed after the check)';
    lines.push(`  ${link.stage.padEnd(9)} ${link.sha256}  ${what} (${link.bytes} bytes)`);
  }
  return lines;
}

/** The sha256 chain and the verification, as `inspect` prints it. */
export function formatImport(result: ImportResult): string[] {
  const lines = [
    `imported: ${result.file} (${result.report.size} bytes, ${formatBytes(result.report.size)}, mode 0600)`,
  ];
  lines.push('sha256 chain:');
  for (const link of result.chain) {
    const what =
      link.stage === 'source'
        ? `${result.source}${link.layers.length ? `, ${describe(link.layers)}` : ''}`
        : link.stage === 'decrypted'
          ? `after decryption, ${describe(link.layers)}`
          : result.file;
    lines.push(`  ${link.stage.padEnd(9)} ${link.sha256}  ${what} (${link.bytes} bytes)`);
  }
  if (result.sha256File) lines.push(`sha256 file: ${result.sha256File}`);
  lines.push(...formatReport(result.report));
  return lines;
}

function describe(layers: readonly string[]): string {
  const words = [...layers].reverse().map((l) => (l === 'age' ? 'age-encrypted' : 'zstd-compressed'));
  return words.join(', ');
}

/**
 * The passphrase of a passphrase-protected identity: TALOS_DR_IDENTITY_PASSPHRASE when set, else typed on the
 * terminal without echo; null (one sentence follows) with neither.
 */
export function passphraseFrom(ctx: CommandContext): PassphraseSource {
  return async (file) => {
    const fromEnv = ctx.io.env.TALOS_DR_IDENTITY_PASSPHRASE;
    if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
    if (!ctx.io.stdinIsTTY || !process.stdin.isTTY) return null;
    return readHidden(ctx, `Passphrase for ${basename(file)}: `);
  };
}

function readHidden(ctx: CommandContext, prompt: string): Promise<string | null> {
  const stdin = process.stdin;
  ctx.io.stderr.write(prompt);
  return new Promise((resolvePassphrase) => {
    let typed = '';
    const finish = (value: string | null): void => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      ctx.io.stderr.write('\n');
      resolvePassphrase(value);
    };
    const onData = (data: Buffer): void => {
      for (const ch of data.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return finish(typed);
        if (ch === '\u0003' || ch === '\u0004') return finish(null);
        if (ch === '\u007f' || ch === '\b') typed = typed.slice(0, -1);
        else typed += ch;
      }
    };
    stdin.setRawMode(true);
    stdin.resume();
    stdin.on('data', onData);
  });
}

/**
 * A one-line transfer display on a terminal, rewritten in place at most five times a second: bytes, rate and, when
 * the total is known, the time left. While a transfer is open it is also redrawn once a second when no bytes arrived
 * (a stalled download or a slow disk: the rate falls and the time left grows instead of the line looking frozen); the
 * timer ends with done() and never keeps the process alive. Nothing when stderr is not a terminal.
 */
export class TransferLine {
  private lastDraw = 0;
  private drawn = false;
  private started: number;
  private phase: string | undefined;
  private last: { bytes: number; total: number | undefined } | null = null;
  private ticker: ReturnType<typeof setInterval> | null = null;

  constructor(
    private readonly stream: { write(s: string): unknown; isTTY?: boolean },
    public label: string,
    private readonly now: () => number = Date.now,
  ) {
    this.started = now();
  }

  /** A line that stays (what was chosen), printed only on a terminal. */
  note(text: string): void {
    if (!this.stream.isTTY) return;
    this.done();
    this.stream.write(`${text}\n`);
  }

  update(bytes: number, total?: number, phase?: string): void {
    if (!this.stream.isTTY) return;
    const now = this.now();
    this.last = { bytes, total };
    if (phase !== this.phase) {
      this.phase = phase;
      this.started = now;
    } else if (now - this.lastDraw < 200) {
      return;
    }
    this.draw(now);
    if (!this.ticker) {
      this.ticker = setInterval(() => {
        const at = this.now();
        if (this.last && at - this.lastDraw >= REDRAW_IDLE_MS) this.draw(at);
      }, REDRAW_IDLE_MS);
      this.ticker.unref();
    }
  }

  private draw(now: number): void {
    if (!this.last) return;
    const { bytes, total } = this.last;
    this.lastDraw = now;
    const seconds = Math.max((now - this.started) / 1000, 0.001);
    const rate = bytes / seconds;
    const amount = total ? `${formatBytes(bytes)} of ${formatBytes(total)}` : formatBytes(bytes);
    const eta = total && rate > 0 && bytes < total ? `, ${formatDuration(((total - bytes) / rate) * 1000)} left` : '';
    this.stream.write(`\r\x1b[2K${this.phase ?? this.label}: ${amount}, ${formatBytes(rate)}/s${eta}`);
    this.drawn = true;
  }

  done(): void {
    if (this.ticker) clearInterval(this.ticker);
    this.ticker = null;
    this.last = null;
    if (this.drawn) this.stream.write('\r\x1b[2K');
    this.drawn = false;
  }
}

/** With no bytes for this long, the transfer line is drawn again (its rate lower, its time left longer). */
const REDRAW_IDLE_MS = 1000;

export function parseImportArgs(argv: string[]): ImportArgs {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        identity: { type: 'string', short: 'i' },
        output: { type: 'string', short: 'o' },
        newest: { type: 'boolean' },
        endpoint: { type: 'string' },
        region: { type: 'string' },
        json: { type: 'boolean' },
      },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    const detail = error instanceof Error ? error.message.split('\n')[0] : String(error);
    throw new UsageError(`${detail}; usage: ${USAGE}.`);
  }
  const [source, ...extra] = parsed.positionals;
  if (source === undefined || extra.length > 0) {
    throw new UsageError(`Give exactly one backup file or s3:// location to import; usage: ${USAGE}.`);
  }
  const v = parsed.values;
  return {
    source,
    identity: v.identity,
    out: v.output,
    newest: v.newest === true,
    json: v.json === true,
    s3: { ...(v.endpoint ? { endpoint: v.endpoint } : {}), ...(v.region ? { region: v.region } : {}) },
  };
}

export type { LoadedIdentity };
export default run;
