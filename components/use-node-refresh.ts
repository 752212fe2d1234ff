import { useEffect, useRef, useState } from 'react';
import type { NodeView } from '../machines/recovery-types.js';

export interface RefreshedNodes {
  readonly views: readonly NodeView[];
  /** ms since epoch when the answer arrived */
  readonly at: number;
}

/** How often the table asks every node again while nothing else does. */
export const REFRESH_MS = 3000;

/**
 * The live node table's own heartbeat: one fan-out call (`refresh`, supplied by the command; components never talk
 * to the cluster themselves) every few seconds and whenever the step changes, never two at once. A failed round
 * keeps the previous answer: the rows then show how long ago each node last answered.
 */
export function useNodeRefresh(
  refresh: (() => Promise<NodeView[]>) | undefined,
  stepKey: string,
  intervalMs = REFRESH_MS,
): RefreshedNodes | null {
  const [latest, setLatest] = useState<RefreshedNodes | null>(null);
  const inFlight = useRef(false);
  const live = useRef(true);
  useEffect(
    () => () => {
      live.current = false;
    },
    [],
  );
  useEffect(() => {
    if (!refresh) return;
    const round = () => {
      if (inFlight.current) return;
      inFlight.current = true;
      refresh().then(
        (views) => {
          inFlight.current = false;
          if (live.current) setLatest({ views, at: Date.now() });
        },
        () => {
          inFlight.current = false;
        },
      );
    };
    round();
    const timer = setInterval(round, intervalMs);
    return () => clearInterval(timer);
  }, [refresh, stepKey, intervalMs]);
  return latest;
}
