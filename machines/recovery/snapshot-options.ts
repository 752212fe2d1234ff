/**
 * Step 3's choices and what is said about the chosen snapshot, as pure functions of the context: the ways to get a
 * snapshot, best first, and the warnings shown where the source is chosen and again before the upload (issues 15, 16).
 */
import { storageVersionCheck } from '../../src/backups/freshness.js';
import type { NodeView, SnapshotInfo, SnapshotOption } from '../recovery-types.js';

/** The option that copies every reachable member's database and keeps the highest revision (issue 15). */
export const EVERY_RAW_COPY = 'raw:every-member';

/**
 * Ways to get a snapshot, best first: API snapshots from members whose etcd answers (freshest first); when no member
 * can say which data is freshest (none reports an applied index) and several nodes hold data, a raw copy of every one
 * of them, the highest revision used; raw copies one node at a time; then the backups and files the user gave.
 */
export function snapshotOptions(
  observations: readonly NodeView[],
  freshest: string | null,
  given: readonly string[],
): SnapshotOption[] {
  const live = observations
    .filter((o) => o.reachable && !o.maintenance && o.status)
    .sort((a, b) => (a.node === freshest ? -1 : b.node === freshest ? 1 : 0));
  const holders = observations.filter((o) => o.reachable && !o.maintenance && o.machineType !== 'worker');
  const rawOrder = [...holders].sort((a, b) => (a.node === freshest ? -1 : b.node === freshest ? 1 : 0));
  const everyCopy: SnapshotOption[] =
    freshest === null && holders.length > 1
      ? [
          {
            id: EVERY_RAW_COPY,
            method: 'raw',
            node: null,
            nodes: holders.map((o) => o.node),
            file: null,
            label: `copy the raw database from every member (${holders.map((o) => o.node).join(', ')}) and use the highest revision (needs skip-hash-check)`,
            failed: null,
          },
        ]
      : [];
  return [
    ...live.map<SnapshotOption>((o) => ({
      id: `api:${o.node}`,
      method: 'api',
      node: o.node,
      file: null,
      label: `take a consistent snapshot from ${o.node}${o.node === freshest ? ' (freshest member)' : ''}`,
      failed: null,
    })),
    ...everyCopy,
    ...rawOrder.map<SnapshotOption>((o) => ({
      id: `raw:${o.node}`,
      method: 'raw',
      node: o.node,
      file: null,
      label: `copy the raw database from ${o.node} (needs skip-hash-check)`,
      failed: null,
    })),
    ...given.map(givenOption),
  ];
}

/**
 * A source the user gave: an S3 location (the newest talos-backup snapshot under a prefix, or one object), a
 * talos-backup file (compressed or encrypted: decoded and verified first), or a plain snapshot file.
 */
function givenOption(spec: string): SnapshotOption {
  if (/^s3:\/\//i.test(spec)) {
    const object = /\.snap(\.zst)?(\.age)?$/.test(spec);
    return {
      id: `backup:${spec}`,
      method: 'backup',
      node: null,
      file: spec,
      label: object
        ? `download the backup ${spec} (decrypted and verified first)`
        : `download the newest backup in ${spec} (decrypted and verified first)`,
      failed: null,
    };
  }
  if (/\.(zst|age)$/.test(spec)) {
    return {
      id: `backup:${spec}`,
      method: 'backup',
      node: null,
      file: spec,
      label: `import the talos-backup file ${spec} (decrypted and verified first)`,
      failed: null,
    };
  }
  return {
    id: `file:${spec}`,
    method: 'file',
    node: null,
    file: spec,
    label: `use the existing snapshot file ${spec}`,
    failed: null,
  };
}

/**
 * What must be said about the chosen snapshot before anything is wiped (issue 16): that live data is newer than it
 * (or that nobody could tell), and that an etcd newer than the one the target Talos restores with wrote it. The
 * target is the Talos version of the node it came from, else of the first control-plane node that reported one.
 */
export function snapshotWarnings(snapshot: SnapshotInfo, observations: readonly NodeView[]): string[] {
  const warnings: string[] = [];
  const freshness = snapshot.freshness;
  if (freshness && (freshness.verdict === 'older' || freshness.verdict === 'unknown'))
    warnings.push(freshness.sentence);
  const target =
    observations.find((o) => o.node === snapshot.node && o.talosVersion)?.talosVersion ??
    observations.find((o) => o.machineType !== 'worker' && o.talosVersion)?.talosVersion ??
    null;
  if (snapshot.storageVersion && target) {
    const check = storageVersionCheck(snapshot.storageVersion, target);
    if (check.sentence) warnings.push(check.sentence);
  }
  return warnings;
}

/** The chosen snapshot holds older data than a member's: restoring it is an explicit decision (issue 16). */
export const olderThanLiveData = (snapshot: SnapshotInfo | null): boolean => snapshot?.freshness?.verdict === 'older';

/** Step 3's line on screen and in the journal: where the snapshot came from, what it holds, and why it was chosen. */
export function snapshotStepResult(s: SnapshotInfo | null): string {
  if (!s) return 'no snapshot';
  const from = s.method === 'file' ? (s.source ? `backup ${s.source}` : 'file') : `${s.method} from ${s.node}`;
  // the screen cuts the line at its width: why this copy goes first, the whole sentence last
  const taken = s.candidates?.filter((c) => c.error === null).length ?? 0;
  const why = s.candidates?.length
    ? taken === 1
      ? ' (the only copy taken)'
      : ` (highest revision of ${taken} copies)`
    : '';
  const skip = s.needsSkipHashCheck ? ' (skip-hash-check acknowledged)' : '';
  return `${from}${why}: revision ${s.revision}, ${s.totalKeys} keys, integrity ${s.integrity}${skip}${s.choice ? `; chosen: ${s.choice}` : ''}`;
}
