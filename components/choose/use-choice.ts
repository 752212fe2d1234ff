import { useRef, useState } from 'react';
import { useActiveInput } from '../use-active-input.js';
import { choiceReducer, type ChoiceAction, type ChoiceState } from './use-choice-state.js';

export interface UseChoiceOptions {
  readonly count: number;
  readonly initialIndex: number;
  readonly isActive: boolean;
  readonly onChoose: (index: number) => void;
}

/** ↑/↓ (or k/j) move, Enter chooses, a digit chooses that option directly. */
export function useChoice({ count, initialIndex, isActive, onChoose }: UseChoiceOptions): ChoiceState {
  // The handler reads the latest state from a ref, not from its closure: "↓ ↓ Enter" arriving in one chunk must
  // choose the third option, not the first.
  const current = useRef<ChoiceState>({ index: initialIndex, count });
  const [state, setState] = useState(current.current);
  const apply = (action: ChoiceAction) => {
    current.current = choiceReducer(current.current, action);
    setState(current.current);
  };
  useActiveInput((input, key) => {
    if (key.upArrow || input === 'k') apply({ type: 'up' });
    else if (key.downArrow || input === 'j') apply({ type: 'down' });
    else if (key.return) onChoose(current.current.index);
    else if (/^[1-9]$/.test(input) && Number(input) <= count) onChoose(Number(input) - 1);
  }, isActive);
  return state;
}
