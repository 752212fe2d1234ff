import { useEffect, useReducer } from 'react';
import { useActiveInput } from '../use-active-input.js';
import { initialTypedConfirmState, typedConfirmReducer, type TypedConfirmState } from './use-typed-confirm-state.js';
import { isTextKey } from './keys.js';

export interface UseTypedConfirmOptions {
  readonly expected: string;
  readonly isActive: boolean;
  readonly onConfirm: () => void;
  readonly onCancel: () => void;
  /** told about each refused wrong address, so the drill can count it */
  readonly onRefused?: (typed: string) => void;
}

/** Binds keys to the typed-confirmation reducer. Inactive without raw mode (Ink would throw on a non-TTY stdin). */
export function useTypedConfirm({
  expected,
  isActive,
  onConfirm,
  onCancel,
  onRefused,
}: UseTypedConfirmOptions): TypedConfirmState {
  const [state, dispatch] = useReducer(typedConfirmReducer, initialTypedConfirmState);

  useActiveInput((input, key) => {
    if (key.escape) onCancel();
    else if (key.return) dispatch({ type: 'submit', expected });
    else if (key.backspace || key.delete) dispatch({ type: 'backspace' });
    else if (isTextKey(key)) dispatch({ type: 'insert', text: input });
  }, isActive);

  // Callbacks fire from effects on the reducer's result, never from a handler's closure, so keys that arrive in
  // one chunk (a paste followed by Enter) are judged on the final value.
  useEffect(() => {
    if (state.confirmed) onConfirm();
  }, [state.confirmed]);
  useEffect(() => {
    if (state.lastRefused !== null) onRefused?.(state.lastRefused);
  }, [state.refusals]);

  return state;
}
