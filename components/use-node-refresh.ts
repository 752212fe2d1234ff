import { useEffect, useRef, useState } from 'react';
import type { NodeView } from '../machines/recovery-types.js';

export interface RefreshedNodes<B> {
  readonly views: readonly NodeView[];
  /** what the machine had read when this round was asked: the answer is fresher only while that is still so */
  readonly basis: B;
}

/** How often the table asks every node again while nothing else does. */
export const REFRESH_MS = 3000;

/**
 * The live node table's own heartbeat: one fan-out call (`refresh`, supplied by the command; components never talk
 * to the cluster themselves) every few seconds and whenever the step changes, never two at once. A failed round
 * keeps the previous answer: the rows then show how long ago each node last answered. `basis` is the machine's own
 * latest read; an answer is tagged with the one current when its round started.
 */
export function useNodeRefresh<B>(
  refresh: (() => Promise<NodeView[]>) | undefined,
  stepKey: string,
  basis: B,
  intervalMs = REFRESH_MS,
): RefreshedNodes<B> | null {
  const [latest, setLatest] = useState<RefreshedNodes<B> | null>(null);
  const inFlight = useRef(false);
  const live = useRef(true);
  const currentBasis = useRef(basis);
  useEffect(() => {
    currentBasis.current = basis;
  }, [basis]);
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
      const askedWith = currentBasis.current;
      refresh().then(
        (views) => {
          inFlight.current = false;
          if (live.current) setLatest({ views, basis: askedWith });
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
