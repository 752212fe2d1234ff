import { useRef } from 'react';
import type { StepView } from './view-model.js';

export interface HistoryItem {
  /** unique and stable: <Static> keys its items */
  readonly key: string;
  readonly step: StepView;
}

/**
 * Finished steps in the order they finished, append-only, for <Static>: Ink writes each item once and never again,
 * so an item must never change or move. A step that fails and later succeeds (after a retry or a resume) reads like
 * a log: one line for each ending.
 */
export function useHistory(steps: readonly StepView[]): HistoryItem[] {
  const history = useRef<HistoryItem[]>([]);
  for (const step of steps) {
    if (step.status !== 'done' && step.status !== 'failed' && step.status !== 'skipped') continue;
    const key = `${step.n}:${step.status}`;
    if (!history.current.some((h) => h.key === key)) history.current = [...history.current, { key, step }];
  }
  return history.current;
}
