/**
 * How old a snapshot is, as pure functions the wizard (and the commands) can call: the snapshot's revision against the
 * newest revision a live member holds, the newest backup's age (backups that silently stopped are a known failure:
 * siderolabs/talos-backup#46, #54), and whether the etcd that will restore can read the snapshot's storage version.
 * No I/O, no clock: the caller passes `now`.
 */

/** "45 s", "12 min", "3 h 12 min", "2 d 4 h": how long, as people read it. */
export function formatDuration(ms: number): string {
  const seconds = Math.max(0, Math.floor(ms / 1000));
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return minutes % 60 === 0 ? `${hours} h` : `${hours} h ${minutes % 60} min`;
  const days = Math.floor(hours / 24);
  return hours % 24 === 0 ? `${days} d` : `${days} d ${hours % 24} h`;
}

export interface BackupAge {
  /** how long ago the newest backup was taken; null when there is none */
  ageMs: number | null;
  verdict: 'fresh' | 'stale' | 'none' | 'future';
  /** one sentence for the screen, the journal and the report */
  sentence: string;
}

/**
 * The newest backup's age. talos-backup runs as a CronJob (its sample schedules it every 10 minutes:
 * siderolabs/talos-backup: cronjob.sample.yaml@0b3984d:6); a backup older than `staleAfterMs` (default 24 h) means
 * the job stopped or fails, and says so.
 */
export function newestBackupAge(newest: Date | null, now: Date, staleAfterMs: number = 24 * 60 * 60 * 1000): BackupAge {
  if (newest === null) {
    return {
      ageMs: null,
      verdict: 'none',
      sentence: 'No talos-backup snapshot was found: this cluster has no backup to fall back on.',
    };
  }
  const ageMs = now.getTime() - newest.getTime();
  if (ageMs < -5 * 60 * 1000) {
    return {
      ageMs,
      verdict: 'future',
      sentence: `The newest backup is dated ${formatDuration(-ageMs)} in the future (${newest.toISOString()}): a clock is wrong; check the time on this machine and in the cluster.`,
    };
  }
  if (ageMs > staleAfterMs) {
    return {
      ageMs,
      verdict: 'stale',
      sentence: `The newest backup is ${formatDuration(ageMs)} old (${newest.toISOString()}): the backup job has stopped or is failing; anything written since is not in it.`,
    };
  }
  return {
    ageMs: Math.max(0, ageMs),
    verdict: 'fresh',
    sentence: `The newest backup is ${formatDuration(Math.max(0, ageMs))} old (${newest.toISOString()}).`,
  };
}

/** One member's newest revision: from a raw copy of its database, or as the member reported it (EtcdStatus). */
export interface LiveRevision {
  node: string;
  revision: number;
  source: 'raw-copy' | 'reported';
}

export interface SnapshotFreshness {
  verdict: 'current' | 'older' | 'newer' | 'unknown';
  snapshotRevision: number;
  /** the newest revision any reachable member holds, null when none could be read */
  liveRevision: number | null;
  /** which member holds it */
  liveNode: string | null;
  /** revisions the live data is ahead of the snapshot (> 0 when older) */
  behind: number;
  /** whether restoring it loses writes, so choosing it must be an explicit decision */
  needsDecision: boolean;
  sentence: string;
}

/**
 * The chosen snapshot against the live cluster. Each revision is one write transaction; a snapshot behind the newest
 * member loses those writes on restore.
 */
export function snapshotFreshness(
  snapshotRevision: number,
  live: readonly LiveRevision[],
  snapshotTakenAt?: Date | null,
  now?: Date,
): SnapshotFreshness {
  const age = snapshotTakenAt && now ? `, taken ${formatDuration(now.getTime() - snapshotTakenAt.getTime())} ago` : '';
  if (live.length === 0) {
    return {
      verdict: 'unknown',
      snapshotRevision,
      liveRevision: null,
      liveNode: null,
      behind: 0,
      needsDecision: true,
      sentence: `No member's data could be read, so it is unknown whether the snapshot (revision ${snapshotRevision}${age}) is the newest data; restoring it may lose writes.`,
    };
  }
  const newest = live.reduce((a, b) => (b.revision > a.revision ? b : a));
  const behind = newest.revision - snapshotRevision;
  const base = { snapshotRevision, liveRevision: newest.revision, liveNode: newest.node };
  const how = newest.source === 'raw-copy' ? 'in a raw copy of its database' : 'as it reported';
  if (behind > 0) {
    return {
      ...base,
      verdict: 'older',
      behind,
      needsDecision: true,
      sentence: `The live data is newer than the snapshot: ${newest.node} holds revision ${newest.revision} ${how}, ${behind} revisions past the snapshot's ${snapshotRevision}${age}; restoring it loses those writes.`,
    };
  }
  if (behind < 0) {
    return {
      ...base,
      verdict: 'newer',
      behind: 0,
      needsDecision: false,
      sentence: `The snapshot (revision ${snapshotRevision}${age}) is newer than any member's data (newest: revision ${newest.revision} on ${newest.node}).`,
    };
  }
  return {
    ...base,
    verdict: 'current',
    behind: 0,
    needsDecision: false,
    sentence: `The snapshot holds the newest data: revision ${snapshotRevision}${age}, as on ${newest.node}.`,
  };
}

/**
 * The etcdutl each Talos minor restores with (compiled into machined; talos go.mod at each tag, as in
 * talos-behaviour-facts §0): v1.12 → 3.6.11, v1.13 → 3.6.12, v1.14 → 3.7.1. Older versions are not charted here.
 */
const RESTORING_ETCD: ReadonlyArray<readonly [minor: number, etcd: string]> = [
  [12, '3.6'],
  [13, '3.6'],
  [14, '3.7'],
];

/** The etcd major.minor that restores on a Talos version ("v1.13.4", "1.14"); null when it is not known. */
export function restoringEtcdFor(talosVersion: string): string | null {
  const match = /^v?1\.(\d+)(?:\.|$)/.exec(talosVersion.trim());
  if (!match) return null;
  const minor = Number(match[1]);
  if (minor < 12) return null;
  const known = RESTORING_ETCD.find(([m]) => m === minor);
  return known ? known[1] : (RESTORING_ETCD[RESTORING_ETCD.length - 1] as readonly [number, string])[1];
}

export interface StorageVersionCheck {
  verdict: 'ok' | 'newer-than-target' | 'unknown';
  sentence: string | null;
}

/** Warns when the snapshot was written by a newer etcd than the one the target Talos restores with. */
export function storageVersionCheck(storageVersion: string | null, talosVersion: string): StorageVersionCheck {
  const target = restoringEtcdFor(talosVersion);
  if (storageVersion === null) return { verdict: 'ok', sentence: null };
  if (target === null) {
    return {
      verdict: 'unknown',
      sentence: `The snapshot was written by etcd ${majorMinor(storageVersion)}; check that Talos ${talosVersion} restores with that etcd or newer.`,
    };
  }
  if (compareMajorMinor(majorMinor(storageVersion), target) > 0) {
    return {
      verdict: 'newer-than-target',
      sentence: `The snapshot was written by etcd ${majorMinor(storageVersion)}, newer than the etcd ${target} Talos ${talosVersion} restores with; restore on a Talos version that ships etcd ${majorMinor(storageVersion)} or newer.`,
    };
  }
  return { verdict: 'ok', sentence: null };
}

function majorMinor(version: string): string {
  return version.split('.').slice(0, 2).join('.');
}

function compareMajorMinor(a: string, b: string): number {
  const [am = 0, an = 0] = a.split('.').map(Number);
  const [bm = 0, bn = 0] = b.split('.').map(Number);
  return am - bm || an - bn;
}
