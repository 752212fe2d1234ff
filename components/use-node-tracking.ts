import { useState } from 'react';
import { cellKey, type NodeColumn, type NodeRow } from './view-model.js';

const COLUMNS: readonly NodeColumn[] = [
  'hostname',
  'reachable',
  'machineType',
  'etcdService',
  'healthy',
  'members',
  'raftAppliedIndex',
  'lastEvent',
];

/** How long a changed cell stays highlighted: long enough to be seen between two refreshes. */
export const HIGHLIGHT_MS = 4000;

type Rows = readonly Omit<NodeRow, 'lastAnsweredAt'>[];

interface Tracked {
  readonly source: Rows;
  readonly rows: NodeRow[];
  readonly lastAnswered: ReadonlyMap<string, number>;
  readonly changed: ReadonlySet<string>;
  readonly changedAt: number;
}

const sameRows = (a: Rows, b: Rows): boolean =>
  a === b ||
  (a.length === b.length &&
    a.every((row, i) => {
      const other = b[i];
      return other !== undefined && row.address === other.address && COLUMNS.every((c) => row[c] === other[c]);
    }));

function track(previous: Tracked | null, source: Rows, at: number): Tracked {
  const lastAnswered = new Map(previous?.lastAnswered ?? []);
  const cells = new Set<string>();
  for (const row of source) {
    if (row.reachable) lastAnswered.set(row.address, at);
    const before = previous?.source.find((p) => p.address === row.address);
    if (before) for (const c of COLUMNS) if (before[c] !== row[c]) cells.add(cellKey(row.address, c));
  }
  return {
    source,
    rows: source.map((row) => ({ ...row, lastAnsweredAt: lastAnswered.get(row.address) ?? null })),
    lastAnswered,
    changed: cells.size > 0 ? cells : (previous?.changed ?? cells),
    changedAt: cells.size > 0 ? at : (previous?.changedAt ?? 0),
  };
}

/**
 * Screen-only memory about the node table: when each node last answered (so a silent node says how long ago), and
 * which cells changed in the latest refresh (highlighted for a few seconds). Moves on when `rows` changes,
 * which happens only when a new read is stored; `now` is the screen's clock.
 */
export function useNodeTracking(rows: Rows, now: number): { rows: NodeRow[]; changed: ReadonlySet<string> } {
  const [tracked, setTracked] = useState<Tracked>(() => track(null, rows, now));
  let current = tracked;
  if (!sameRows(tracked.source, rows)) {
    current = track(tracked, rows, now);
    setTracked(current);
  }
  return { rows: current.rows, changed: now - current.changedAt <= HIGHLIGHT_MS ? current.changed : new Set() };
}
