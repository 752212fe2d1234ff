import { useMemo, useRef } from 'react';
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

/**
 * Screen-only memory about the node table: when each node last answered (so a silent node says how long ago), and
 * which cells changed in the latest refresh (highlighted for a few seconds). Keyed on the identity of `rows`, which
 * changes only when the machine stores a new observation.
 */
export function useNodeTracking(
  rows: readonly Omit<NodeRow, 'lastAnsweredAt'>[],
  now: number,
): { rows: NodeRow[]; changed: ReadonlySet<string> } {
  const lastAnswered = useRef(new Map<string, number>());
  const previous = useRef<readonly Omit<NodeRow, 'lastAnsweredAt'>[] | null>(null);
  const highlight = useRef<{ cells: Set<string>; at: number }>({ cells: new Set(), at: 0 });

  const tracked = useMemo(() => {
    const at = Date.now();
    const cells = new Set<string>();
    for (const row of rows) {
      if (row.reachable) lastAnswered.current.set(row.address, at);
      const before = previous.current?.find((p) => p.address === row.address);
      if (before) for (const c of COLUMNS) if (before[c] !== row[c]) cells.add(cellKey(row.address, c));
    }
    if (cells.size > 0) highlight.current = { cells, at };
    previous.current = rows;
    return rows.map((row) => ({ ...row, lastAnsweredAt: lastAnswered.current.get(row.address) ?? null }));
  }, [rows]);

  const { cells, at } = highlight.current;
  return { rows: tracked, changed: now - at <= HIGHLIGHT_MS ? cells : new Set() };
}
