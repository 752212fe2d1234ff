/**
 * How a snapshot report reads for a person: talosctl's own status line first (so it can be compared with what
 * talosctl printed), then what talosctl does not say: live keys, the trailer verdict, the file's sha256 and, above
 * all, whether the file can be restored from and what that will need.
 */
import type { SnapshotReport } from './types.js';

export function formatReport(report: SnapshotReport): string[] {
  const lines: string[] = [];
  if (report.hash !== null) {
    lines.push(
      `snapshot info: hash ${report.hash}, revision ${report.revision}, total keys ${report.totalKeys}, total size ${report.totalSize}`,
    );
    lines.push(`live keys: ${report.liveKeys ?? 'unknown'} (what etcd 3.6 prints as total keys)`);
    lines.push(
      report.storageVersion === null
        ? 'storage version: none (written by etcd 3.5 or older, which do not record one)'
        : `storage version: ${report.storageVersion} (written by etcd ${report.storageVersion.split('.').slice(0, 2).join('.')} or newer)`,
    );
  } else {
    lines.push(`snapshot info: unavailable (the file is ${describeKind(report)})`);
  }
  lines.push(`integrity: ${describeIntegrity(report)}`);
  lines.push(`sha256: ${report.sha256}  (${report.file}, ${report.size} bytes)`);
  for (const problem of report.problems) lines.push(`problem: ${problem}`);
  if (report.usable && report.needsSkipHashCheck) {
    lines.push(
      'warning: this is a raw database copy without a sha256 trailer: bootstrap will need --recover-skip-hash-check, and writes made after the copy was taken may be missing.',
    );
  }
  lines.push(
    report.usable ? 'verdict: usable for recovery' : 'verdict: NOT usable for recovery: do not restore from this file',
  );
  return lines;
}

function describeKind(report: SnapshotReport): string {
  switch (report.kind) {
    case 'bbolt':
      return 'a damaged bbolt database';
    case 'empty':
      return 'empty';
    case 'unknown':
      return 'not a bbolt database';
    default:
      return `a ${report.kind} file, not a plain snapshot`;
  }
}

function describeIntegrity(report: SnapshotReport): string {
  switch (report.integrity) {
    case 'verified':
      return 'verified (the sha256 trailer matches the contents)';
    case 'absent':
      return report.kind === 'bbolt'
        ? 'absent (no sha256 trailer: a raw database copy, not an API snapshot)'
        : 'absent (no sha256 trailer)';
    case 'mismatch':
      return 'MISMATCH (the sha256 trailer does not match the contents)';
  }
}

/** Bytes as people read them: 1.5 MiB. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/**
 * A one-line progress display on a terminal (rewritten in place, at most a few times a second); nothing at all when
 * the stream is not a terminal, so logs and pipes stay clean.
 */
export class ProgressLine {
  private lastDraw = 0;
  private drawn = false;
  private readonly started: number;

  constructor(
    private readonly stream: { write(s: string): unknown; isTTY?: boolean },
    private readonly label: string,
    private readonly now: () => number = Date.now,
  ) {
    this.started = now();
  }

  update(bytes: number, total?: number): void {
    if (!this.stream.isTTY) return;
    const now = this.now();
    if (now - this.lastDraw < 200) return;
    this.lastDraw = now;
    const seconds = Math.max((now - this.started) / 1000, 0.001);
    const rate = `${formatBytes(bytes / seconds)}/s`;
    const amount = total ? `${formatBytes(bytes)} of ${formatBytes(total)}` : formatBytes(bytes);
    this.stream.write(`\r\x1b[2K${this.label}: ${amount}, ${rate}`);
    this.drawn = true;
  }

  /** Clears the line so the summary that follows starts clean. */
  done(): void {
    if (this.drawn) this.stream.write('\r\x1b[2K');
    this.drawn = false;
  }
}
