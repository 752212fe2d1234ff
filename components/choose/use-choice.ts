import { useRef, useState } from 'react';
import { useActiveInput } from '../use-active-input.js';
import { choiceReducer, type ChoiceAction, type ChoiceState } from './use-choice-state.js';

export interface UseChoiceOptions {
  readonly count: number;
  readonly initialIndex: number;
  readonly isActive: boolean;
  readonly onChoose: (index: number) => void;
}

/**
 * ↑/↓ (or k/j) move, a digit moves to that option, and only Enter chooses: one stray key never commits a choice
 * (a digit that chose at once picked a 9-hour-old snapshot with a single press).
 */
export function useChoice({ count, initialIndex, isActive, onChoose }: UseChoiceOptions): ChoiceState {
  const [state, setState] = useState<ChoiceState>({ index: initialIndex, count });
  // The handler reads the latest state from a ref, not from its closure: "↓ ↓ Enter" arriving in one chunk must
  // choose the third option, not the first. Only the handler touches the ref; the screen shows the state.
  const latest = useRef<ChoiceState | null>(null);
  const apply = (action: ChoiceAction) => {
    latest.current = choiceReducer(latest.current ?? state, action);
    setState(latest.current);
  };
  useActiveInput((input, key) => {
    if (key.upArrow || input === 'k') apply({ type: 'up' });
    else if (key.downArrow || input === 'j') apply({ type: 'down' });
    else if (key.return) onChoose((latest.current ?? state).index);
    else if (/^[1-9]$/.test(input)) apply({ type: 'to', index: Number(input) - 1 });
  }, isActive);
  return state;
}
