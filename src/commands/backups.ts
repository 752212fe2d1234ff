/**
 * `talos-dr backups list s3://BUCKET/PREFIX [--endpoint URL] [--region R] [--json]`: the talos-backup snapshots under
 * a prefix, newest first, with size and age, and how old the newest one is (a backup job that silently stopped is
 * the failure to catch before an outage). Exit 0 when at least one backup is listed, 1 when there is none.
 */
import { parseArgs } from 'node:util';
import type { CommandRun } from './types.js';
import { EXIT, UsageError } from '../errors.js';
import { formatBytes } from '../etcd/format.js';
import { formatDuration } from '../backups/freshness.js';
import type { BackupListing } from '../backups/s3.js';
import { checkBackups } from '../backups/source.js';

const USAGE = 'talos-dr backups list s3://BUCKET/PREFIX [--endpoint URL] [--region R] [--json]';

const run: CommandRun = async (ctx) => {
  const args = parseBackupsArgs(ctx.args);
  const now = new Date();
  const { listing, age } = await checkBackups(args.url, { env: ctx.io.env, s3: args.s3, now, signal: ctx.signal });
  if (args.json) {
    const backups = listing.backups.map((b) => ({
      url: `s3://${b.bucket}/${b.key}`,
      key: b.key,
      size: b.size,
      takenAt: b.takenAt?.toISOString() ?? null,
      ageSeconds: b.takenAt ? Math.round((now.getTime() - b.takenAt.getTime()) / 1000) : null,
      lastModified: b.lastModified?.toISOString() ?? null,
      cluster: b.name?.cluster ?? null,
      layers: b.name?.layers ?? [],
    }));
    ctx.io.stdout.write(
      `${JSON.stringify({ location: `s3://${listing.location.bucket}/${listing.location.key}`, backups, others: listing.others, newest: age }, null, 2)}\n`,
    );
  } else {
    ctx.io.stdout.write(`${formatListing(listing, now).join('\n')}\n${age.sentence}\n`);
  }
  return listing.backups.length > 0 ? EXIT.ok : EXIT.failure;
};

export function formatListing(listing: BackupListing, now: Date): string[] {
  const where = `s3://${listing.location.bucket}/${listing.location.key}`;
  if (listing.backups.length === 0) {
    return [`No talos-backup snapshots under ${where}${listing.others ? ` (${listing.others} other objects)` : ''}.`];
  }
  const rows = listing.backups.map((b) => [
    b.takenAt ? b.takenAt.toISOString().replace(/\.000Z$/, 'Z') : '?',
    b.takenAt ? `${formatDuration(now.getTime() - b.takenAt.getTime())} ago` : '?',
    formatBytes(b.size),
    b.name?.layers.length ? b.name.layers.join('+') : 'plain',
    `s3://${b.bucket}/${b.key}`,
  ]);
  const header = ['TAKEN', 'AGE', 'SIZE', 'LAYERS', 'OBJECT'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  const line = (cells: string[]): string =>
    cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] as number))).join('  ');
  const lines = [`${listing.backups.length} talos-backup snapshots under ${where}, newest first:`, line(header)];
  lines.push(...rows.map(line));
  if (listing.others) lines.push(`(${listing.others} other objects under the prefix are not talos-backup snapshots)`);
  return lines;
}

function parseBackupsArgs(argv: string[]): { url: string; json: boolean; s3: { endpoint?: string; region?: string } } {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: { endpoint: { type: 'string' }, region: { type: 'string' }, json: { type: 'boolean' } },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    const detail = error instanceof Error ? error.message.split('\n')[0] : String(error);
    throw new UsageError(`${detail}; usage: ${USAGE}.`);
  }
  const [verb, url, ...extra] = parsed.positionals;
  if (verb !== 'list' || url === undefined || extra.length > 0) {
    throw new UsageError(`Say what to list: ${USAGE}.`);
  }
  const v = parsed.values;
  return {
    url,
    json: v.json === true,
    s3: { ...(v.endpoint ? { endpoint: v.endpoint } : {}), ...(v.region ? { region: v.region } : {}) },
  };
}

export default run;
