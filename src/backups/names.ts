/**
 * What siderolabs/talos-backup calls its files, read from its source (siderolabs/talos-backup at commit 0b3984d,
 * after v0.1.0-beta.3, which added compression):
 * - the snapshot is `<cluster>-<time.Now() in RFC 3339>.snap` (pkg/talos/talos.go@0b3984d:42-44), the cluster being
 *   CLUSTER_NAME or the talosconfig context (cmd/talos-backup/service/service.go@0b3984d:25-28);
 * - with ENABLE_COMPRESSION it is zstd-compressed into `<name>.zst` (pkg/compression/compression.go@0b3984d:38-47);
 * - unless DISABLE_ENCRYPTION it is then age-encrypted to one X25519 recipient into `<name>.age`
 *   (pkg/encryption/encryption.go@0b3984d:31,43,52);
 * - the object key is `<prefix>/<file name>`, the prefix being S3_PREFIX or the cluster name
 *   (pkg/s3/s3.go@0b3984d:73, service.go@0b3984d:68-71).
 */

/** The layers over the plain snapshot, outermost last, as the name tells them. */
export type BackupLayer = 'zstd' | 'age';

export interface BackupName {
  /** the file name without its directory or object prefix */
  file: string;
  /** the cluster part of the name */
  cluster: string;
  /** when talos-backup took the snapshot (from the name; its clock, its time zone) */
  takenAt: Date;
  /** the name's suffixes after `.snap`, in the order they were applied */
  layers: BackupLayer[];
  /** the name the plain snapshot had before compression and encryption: `<cluster>-<time>.snap` */
  plainName: string;
}

/**
 * RFC 3339 as Go's time.RFC3339 formats it ("2006-01-02T15:04:05Z07:00"): seconds, no fraction, `Z` or an offset.
 * The cluster part may itself contain dashes, so the time is matched from the end.
 */
const NAME = /^(.+)-(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2}))\.snap((?:\.zst)?(?:\.age)?)$/;

/** Parses a talos-backup file name (or object key: the part after the last `/`); null when it is not one. */
export function parseBackupName(keyOrFile: string): BackupName | null {
  const file = keyOrFile.slice(keyOrFile.lastIndexOf('/') + 1);
  const match = NAME.exec(file);
  if (!match) return null;
  const [, cluster, stamp, suffix] = match as unknown as [string, string, string, string];
  const takenAt = new Date(stamp);
  if (Number.isNaN(takenAt.getTime())) return null;
  const layers: BackupLayer[] = [];
  if (suffix.includes('.zst')) layers.push('zstd');
  if (suffix.endsWith('.age')) layers.push('age');
  return { file, cluster, takenAt, layers, plainName: `${cluster}-${stamp}.snap` };
}

/**
 * The plain snapshot's file name for an import: the source name without `.age` and `.zst`, `.snap` added when it
 * does not end as a snapshot's name does (a file named by hand). Characters a file name should not hold become `_`.
 */
export function plainSnapshotName(keyOrFile: string): string {
  const file = keyOrFile.slice(keyOrFile.lastIndexOf('/') + 1);
  let name = file.replace(/\.age$/, '').replace(/\.(zst|zstd)$/, '');
  if (!/\.(snap|snapshot|db)$/.test(name)) name = `${name}.snap`;
  return name.replace(/[^A-Za-z0-9._:+-]/g, '_') || 'imported.snap';
}
