import { useRef, useState } from 'react';
import { useActiveInput } from '../use-active-input.js';
import { edit, type EditAction } from './text-entry.js';
import { isTextKey, typedParts } from './keys.js';

export interface UseTextAnswerOptions {
  readonly isActive: boolean;
  readonly onSubmit: (value: string) => void;
  readonly onCancel: () => void;
}

/** A one-line free-text answer (a file path). Enter with an empty field does nothing. */
export function useTextAnswer({ isActive, onSubmit, onCancel }: UseTextAnswerOptions): string {
  // The latest value lives in a ref so that keys arriving in one chunk each see the previous key's edit.
  const value = useRef('');
  const [shown, setShown] = useState('');
  const apply = (action: EditAction) => {
    value.current = edit(value.current, action, 4096);
    setShown(value.current);
  };
  const submit = () => {
    if (value.current.trim() !== '') onSubmit(value.current.trim());
  };
  useActiveInput((input, key) => {
    if (key.escape) onCancel();
    else if (key.return) submit();
    else if (key.backspace || key.delete) apply({ type: 'backspace' });
    // a pasted path keeps the Enter it was copied with
    else if (isTextKey(key))
      for (const part of typedParts(input)) {
        if (part.type === 'enter') submit();
        else apply(part);
      }
  }, isActive);
  return shown;
}
