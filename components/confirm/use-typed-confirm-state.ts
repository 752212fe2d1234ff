/**
 * State of a destructive confirmation: the user types the target node's address exactly. Pure reducer, no Ink.
 * A wrong address is refused with a sentence that names the right one, and the field is cleared so the next try
 * starts clean.
 */
import { edit, type EditAction } from './text-entry.js';

export interface TypedConfirmState {
  readonly value: string;
  /** why the last Enter was refused; cleared as soon as the user types again */
  readonly error: string | null;
  /** how many wrong answers were refused (a drill counts them as mistakes the guard stopped) */
  readonly refusals: number;
  /** the last wrong address typed */
  readonly lastRefused: string | null;
  readonly confirmed: boolean;
}

export type TypedConfirmAction =
  | EditAction
  /**
   * `back`: whether Esc answers from here, so the refusal offers it only when it works; `stops`: Esc's answer stops
   * the run (resumable) instead of going back, and the refusal says so
   */
  | { readonly type: 'submit'; readonly expected: string; readonly back?: boolean; readonly stops?: boolean };

export const initialTypedConfirmState: TypedConfirmState = {
  value: '',
  error: null,
  refusals: 0,
  lastRefused: null,
  confirmed: false,
};

export function typedConfirmReducer(state: TypedConfirmState, action: TypedConfirmAction): TypedConfirmState {
  if (state.confirmed) return state;
  switch (action.type) {
    case 'insert':
    case 'backspace':
      return { ...state, value: edit(state.value, action), error: null };
    case 'submit': {
      const typed = state.value.trim();
      if (typed === action.expected) return { ...state, value: typed, error: null, confirmed: true };
      const esc = action.stops ? 'to stop here (resumable)' : 'to go back';
      const error =
        typed === ''
          ? `Type the node's address, ${action.expected}, to confirm${action.back ? `; Esc ${action.stops ? 'stops here (resumable)' : 'goes back'}` : ''}.`
          : `"${typed}" is not the target node; type ${action.expected} exactly to confirm${action.back ? `, or Esc ${esc}` : ''}.`;
      if (typed === '') return { ...state, value: '', error };
      return { ...state, value: '', error, refusals: state.refusals + 1, lastRefused: typed };
    }
  }
}
