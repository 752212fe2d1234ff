/**
 * Issue 16, the newest backup's age at assessment: for every backup location the user gave (an S3 prefix, a
 * talos-backup file, a snapshot file), how old its newest snapshot is, before anything else is decided. A backup job
 * that silently stopped is a known failure (siderolabs/talos-backup#46, #54): this is where it shows.
 */
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { BackupAge } from './freshness.js';
import { newestBackupAge } from './freshness.js';
import { parseBackupName } from './names.js';
import { isS3Url } from './s3-url.js';
import type { S3Options } from './s3.js';
import { checkBackups } from './source.js';

export interface BackupAgeSeen {
  /** the location as given */
  location: string;
  /** the newest backup's age there; null when it could not be read */
  age: BackupAge | null;
  /** one sentence for the screen, the journal and the report */
  sentence: string;
}

/**
 * The newest backup's age at each location: under an S3 prefix, the newest talos-backup object (listed, not
 * downloaded); for a file, the time in its talos-backup name, else its modification time. A location that cannot be
 * read says so in its sentence instead of failing the assessment.
 */
export async function backupAges(
  given: readonly string[],
  opts: { env: NodeJS.ProcessEnv; now: Date; s3?: S3Options; signal?: AbortSignal; cwd?: string },
): Promise<BackupAgeSeen[]> {
  return Promise.all(given.map((location) => backupAge(location, opts)));
}

async function backupAge(
  location: string,
  opts: { env: NodeJS.ProcessEnv; now: Date; s3?: S3Options; signal?: AbortSignal; cwd?: string },
): Promise<BackupAgeSeen> {
  if (isS3Url(location)) {
    try {
      const { age, listing } = await checkBackups(location, {
        env: opts.env,
        now: opts.now,
        ...(opts.s3 ? { s3: opts.s3 } : {}),
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
      const where = `s3://${listing.location.bucket}/${listing.location.key}`;
      return { location, age, sentence: `${where}: ${age.sentence}` };
    } catch (error) {
      const why = (error instanceof Error ? error.message : String(error)).split('\n')[0]?.replace(/\.$/, '');
      return {
        location,
        age: null,
        sentence: `The backups at ${location} could not be listed (${why}); their age is unknown.`,
      };
    }
  }
  const path = resolve(opts.cwd ?? process.cwd(), location);
  const named = parseBackupName(path)?.takenAt ?? null;
  const modified = named
    ? null
    : await stat(path).then(
        (s) => new Date(s.mtimeMs),
        () => null,
      );
  const taken = named ?? modified;
  if (!taken) {
    return { location, age: null, sentence: `There is no backup file at ${path}; check the path.` };
  }
  const age = newestBackupAge(taken, opts.now);
  return { location, age, sentence: `${path}: ${age.sentence}` };
}
