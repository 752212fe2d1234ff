import { useState } from 'react';
import { useActiveInput } from '../use-active-input.js';

export interface UseYesNoOptions {
  readonly isActive: boolean;
  /** what Enter answers; null: Enter answers nothing and says which keys do */
  readonly defaultAnswer: 'yes' | 'no' | null;
  readonly onAnswer: (yes: boolean) => void;
}

/**
 * y answers yes, n answers no, Enter takes the default when there is one. Where there is none (stopping is never a
 * default: an Enter at the first question silently ended a drill), Enter is answered with a line saying what to press.
 * Returns whether that line is shown.
 */
export function useYesNo({ isActive, defaultAnswer, onAnswer }: UseYesNoOptions): boolean {
  const [hint, setHint] = useState(false);
  useActiveInput((input, key) => {
    if (input === 'y' || input === 'Y') onAnswer(true);
    else if (input === 'n' || input === 'N') onAnswer(false);
    else if (key.return) {
      if (defaultAnswer === null) setHint(true);
      else onAnswer(defaultAnswer === 'yes');
    }
  }, isActive);
  return hint;
}
