/**
 * Step 3's choices and what is said about the chosen snapshot, as pure functions of the context: the ways to get a
 * snapshot, best first, and the step's line saying where it came from and why (issue 15).
 */
import type { NodeView, SnapshotInfo, SnapshotOption } from '../recovery-types.js';

/** The option that copies every reachable member's database and keeps the highest revision (issue 15). */
export const EVERY_RAW_COPY = 'raw:every-member';

/**
 * Ways to get a snapshot, best first: API snapshots from members whose etcd answers (freshest first); when no member
 * can say which data is freshest (none reports an applied index) and several nodes hold data, a raw copy of every one
 * of them, the highest revision used; raw copies one node at a time; then the files the user gave.
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

function givenOption(file: string): SnapshotOption {
  return {
    id: `file:${file}`,
    method: 'file',
    node: null,
    file,
    label: `use the existing snapshot file ${file}`,
    failed: null,
  };
}

/** Step 3's line on screen and in the journal: where the snapshot came from, what it holds, and why it was chosen. */
export function snapshotStepResult(s: SnapshotInfo | null): string {
  if (!s) return 'no snapshot';
  const from = s.method === 'file' ? (s.source ? `backup ${s.source}` : 'file') : `${s.method} from ${s.node}`;
  const skip = s.needsSkipHashCheck ? ' (skip-hash-check acknowledged)' : '';
  return `${from}: revision ${s.revision}, ${s.totalKeys} keys, integrity ${s.integrity}${skip}${s.choice ? `; chosen: ${s.choice}` : ''}`;
}
