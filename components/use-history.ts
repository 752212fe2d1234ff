import { useState } from 'react';
import type { StepView } from './view-model.js';

export interface HistoryItem {
  /** unique and stable: <Static> keys its items */
  readonly key: string;
  readonly step: StepView;
}

/** `history` with every finished step of `steps` it does not hold yet appended; the same array when nothing is new. */
export function appendFinished(history: readonly HistoryItem[], steps: readonly StepView[]): readonly HistoryItem[] {
  let next = history;
  for (const step of steps) {
    if (step.status !== 'done' && step.status !== 'failed' && step.status !== 'skipped') continue;
    const key = `${step.n}:${step.status}`;
    if (!next.some((h) => h.key === key)) next = [...next, { key, step }];
  }
  return next;
}

/**
 * Finished steps in the order they finished, append-only, for <Static>: Ink writes each item once and never again,
 * so an item must never change or move. A step that fails and later succeeds (after a retry or a resume) reads like
 * a log: one line for each ending.
 */
export function useHistory(steps: readonly StepView[]): readonly HistoryItem[] {
  const [history, setHistory] = useState<readonly HistoryItem[]>(() => appendFinished([], steps));
  const next = appendFinished(history, steps);
  // React's "state from the previous render" pattern: the update is kept with this render, no extra frame
  if (next !== history) setHistory(next);
  return next;
}
