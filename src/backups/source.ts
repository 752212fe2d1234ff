/**
 * Where a backup comes from, for the import command and the wizard's snapshot step alike: a file path, an object
 * (s3://bucket/key), or the newest talos-backup snapshot under a prefix (s3://bucket/prefix with `newest`). Opened as
 * a stream for importSnapshot (decode.ts), with the plain snapshot's default name.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { UserError } from '../errors.js';
import type { ImportSource } from './decode.js';
import { plainSnapshotName } from './names.js';
import { isS3Url, parseS3Url } from './s3-url.js';
import type { BackupListing, BackupObject, S3Options } from './s3.js';
import { newestBackupAge } from './freshness.js';
import type { BackupAge } from './freshness.js';

export interface OpenBackupOptions {
  /** what a relative path is relative to */
  cwd: string;
  /** where AWS settings are read from */
  env: NodeJS.ProcessEnv;
  s3?: S3Options;
  /** `spec` is an S3 prefix: take the newest talos-backup snapshot under it */
  newest?: boolean;
  signal?: AbortSignal;
  /** an S3 download is given up after this long without a byte (default S3_STALL_MS, s3.ts) */
  stallMs?: number;
}

export interface OpenedBackup {
  source: ImportSource;
  /** the plain snapshot's file name (no directory) */
  plainName: string;
  /** the object chosen with `newest` (its name, size and when it was taken); null otherwise */
  chosen: BackupObject | null;
  /** releases the S3 connection (a no-op for a file) */
  close(): void;
}

export async function openBackup(spec: string, opts: OpenBackupOptions): Promise<OpenedBackup> {
  if (!isS3Url(spec)) {
    if (opts.newest) {
      throw new UserError(`${spec} is a file: the newest backup is picked from an S3 prefix (s3://BUCKET/PREFIX).`);
    }
    const path = isAbsolute(spec) ? spec : resolve(opts.cwd, spec);
    const info = await stat(path).catch(() => null);
    if (!info) throw new UserError(`There is no file at ${path}; check the path.`);
    if (!info.isFile()) throw new UserError(`${path} is not a regular file; give the path of a backup file.`);
    return {
      source: {
        name: path,
        // read by the decoding programs themselves through a read-only descriptor (decode.ts, ImportSource.file)
        file: path,
        size: info.size,
        open: () => createReadStream(path, { highWaterMark: 1024 * 1024 }) as AsyncIterable<Uint8Array>,
      },
      plainName: plainSnapshotName(path),
      chosen: null,
      close: () => undefined,
    };
  }
  let location = parseS3Url(spec);
  // the AWS SDK is loaded only for an S3 location (~0.5 s of start-up a local file never needs)
  const { listBackups, makeS3Client, openObject } = await import('./s3.js');
  const client = makeS3Client({ ...opts.s3, env: opts.env });
  try {
    let chosen: BackupObject | null = null;
    if (opts.newest) {
      const listing = await listBackups(client, location, opts.signal);
      chosen = listing.backups[0] ?? null;
      if (!chosen) {
        throw new UserError(
          `There is no talos-backup snapshot under s3://${location.bucket}/${listing.location.key}; check the prefix (talos-backup's S3_PREFIX, else the cluster name).`,
        );
      }
      location = { bucket: location.bucket, key: chosen.key };
    }
    const download = await openObject(client, location, { signal: opts.signal, stallMs: opts.stallMs });
    return {
      source: { name: `s3://${location.bucket}/${location.key}`, size: download.size, open: () => download.stream },
      plainName: plainSnapshotName(location.key),
      chosen,
      close: () => client.destroy(),
    };
  } catch (error) {
    client.destroy();
    throw error;
  }
}

export interface BackupsCheck {
  listing: BackupListing;
  /** the newest backup's age, with its sentence for the screen, the journal and the report */
  age: BackupAge;
}

/**
 * For the wizard's assessment: the talos-backup snapshots under an S3 prefix and how old the newest is (a backup job
 * that silently stopped is caught here, before anything is wiped). `now` comes from the caller.
 */
export async function checkBackups(
  url: string,
  opts: { env: NodeJS.ProcessEnv; s3?: S3Options; now: Date; signal?: AbortSignal },
): Promise<BackupsCheck> {
  const { listBackups, makeS3Client } = await import('./s3.js');
  const client = makeS3Client({ ...opts.s3, env: opts.env });
  try {
    const listing = await listBackups(client, parseS3Url(url), opts.signal);
    return { listing, age: newestBackupAge(listing.backups[0]?.takenAt ?? null, opts.now) };
  } finally {
    client.destroy();
  }
}
