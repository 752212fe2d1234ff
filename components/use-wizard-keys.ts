import { useActiveInput } from './use-active-input.js';

export interface WizardKeyHandlers {
  readonly onQuit: () => void;
  readonly onToggleHelp: () => void;
  readonly onCloseHelp: () => void;
  /** present when a failed action can be tried again now */
  readonly onRetry?: () => void;
}

/**
 * The screen-wide keys. Ctrl-C always quits safely (raw mode turns it into a keystroke, so it is ours to handle).
 * While the user types an answer, letters belong to the answer: q and ? are not intercepted then.
 */
export function useWizardKeys(
  handlers: WizardKeyHandlers,
  { typing, isActive }: { typing: boolean; isActive: boolean },
) {
  useActiveInput((input, key) => {
    if (key.ctrl && input === 'c') handlers.onQuit();
    else if (key.escape) handlers.onCloseHelp();
    else if (typing) return;
    else if (input === 'q') handlers.onQuit();
    else if (input === '?') handlers.onToggleHelp();
    else if (input === 'r') handlers.onRetry?.();
  }, isActive);
}
