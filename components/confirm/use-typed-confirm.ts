import { useEffect, useReducer } from 'react';
import { useActiveInput } from '../use-active-input.js';
import { initialTypedConfirmState, typedConfirmReducer, type TypedConfirmState } from './use-typed-confirm-state.js';
import { isTextKey, typedParts } from './keys.js';

export interface UseTypedConfirmOptions {
  readonly expected: string;
  readonly isActive: boolean;
  readonly onConfirm: () => void;
  /** Esc: go back to the previous choice; absent where the machine offers no way back (then Esc does nothing) */
  readonly onCancel?: () => void;
  /** Esc's answer stops the run (resumable) rather than going back: the refusal's sentence says so */
  readonly cancelStops?: boolean;
  /** told about each refused wrong address, so the drill can count it */
  readonly onRefused?: (typed: string) => void;
}

/** Binds keys to the typed-confirmation reducer. Inactive without raw mode (Ink would throw on a non-TTY stdin). */
export function useTypedConfirm({
  expected,
  isActive,
  onConfirm,
  onCancel,
  cancelStops = false,
  onRefused,
}: UseTypedConfirmOptions): TypedConfirmState {
  const [state, dispatch] = useReducer(typedConfirmReducer, initialTypedConfirmState);
  const back = onCancel !== undefined;

  useActiveInput((input, key) => {
    if (key.escape) onCancel?.();
    else if (key.return) dispatch({ type: 'submit', expected, back, stops: cancelStops });
    else if (key.backspace || key.delete) dispatch({ type: 'backspace' });
    else if (isTextKey(key))
      // a pasted address keeps the Enter it was copied with
      for (const part of typedParts(input))
        dispatch(part.type === 'enter' ? { type: 'submit', expected, back, stops: cancelStops } : part);
  }, isActive);

  // Callbacks fire from effects on the reducer's result, never from a handler's closure, so keys that arrive in
  // one chunk (a paste followed by Enter) are judged on the final value.
  useEffect(() => {
    if (state.confirmed) onConfirm();
    // eslint-disable-next-line react-hooks/exhaustive-deps -- fires once, when the reducer confirms
  }, [state.confirmed]);
  useEffect(() => {
    if (state.lastRefused !== null) onRefused?.(state.lastRefused);
    // eslint-disable-next-line react-hooks/exhaustive-deps -- fires once per refusal
  }, [state.refusals]);

  return state;
}
