/**
 * What the snapshot toolkit tells the layers above it. `SnapshotReport` is exactly the `inspect --json` contract of
 * PRODUCT.md §2; the wizard, `snapshot` and `inspect` all print from it.
 */
export type SnapshotKind = 'bbolt' | 'empty' | 'gzip' | 'zstd' | 'age' | 'tar' | 'unknown';

export interface SnapshotReport {
  file: string;
  /** bytes on disk */
  size: number;
  kind: SnapshotKind;
  structure: 'ok' | 'damaged';
  /** CRC-32C as talosctl prints it: 8 lowercase hex digits; null when the file cannot be read */
  hash: string | null;
  revision: number | null;
  /** every pair in every bucket (etcdutl 3.4/3.5, talosctl ≤ 1.10) */
  totalKeys: number | null;
  /** distinct live user keys (etcdutl 3.6) */
  liveKeys: number | null;
  /** `meta/storageVersion` (etcd 3.6+ writes it, e.g. "3.6.0"); null when absent (etcd 3.4/3.5) or unreadable */
  storageVersion: string | null;
  /** bbolt tx.Size() = meta.pgid * pageSize */
  totalSize: number | null;
  /** the sha256 trailer: present and matching / absent (raw copy) / present and wrong */
  integrity: 'verified' | 'absent' | 'mismatch';
  /** sha256 of the whole file, lowercase hex */
  sha256: string;
  needsSkipHashCheck: boolean;
  usable: boolean;
  /** one sentence each */
  problems: string[];
}

export interface AcquiredSnapshot {
  /** final path, written atomically (never over an existing file), mode 0600 */
  file: string;
  /** FILE.sha256 beside it */
  sha256File: string;
  report: SnapshotReport;
  /** how it was taken */
  method: 'api' | 'raw';
  node: string;
  bytes: number;
}
