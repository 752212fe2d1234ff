import { useActiveInput } from '../use-active-input.js';

export interface UseYesNoOptions {
  readonly isActive: boolean;
  readonly onAnswer: (yes: boolean) => void;
}

/** y answers yes, n answers no, Enter takes the default, which is always No. */
export function useYesNo({ isActive, onAnswer }: UseYesNoOptions): void {
  useActiveInput((input, key) => {
    if (input === 'y' || input === 'Y') onAnswer(true);
    else if (input === 'n' || input === 'N' || key.return) onAnswer(false);
  }, isActive);
}
