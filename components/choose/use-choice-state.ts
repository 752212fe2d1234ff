/** Moving through a list of options; the cursor starts on the recommended one. Pure reducer, no Ink. */
export interface ChoiceState {
  readonly index: number;
  readonly count: number;
}

export type ChoiceAction =
  | { readonly type: 'up' }
  | { readonly type: 'down' }
  /** a digit: the cursor goes to that option (0-based here); choosing still takes Enter */
  | { readonly type: 'to'; readonly index: number };

export function choiceReducer(state: ChoiceState, action: ChoiceAction): ChoiceState {
  if (state.count === 0) return state;
  if (action.type === 'to')
    return action.index >= 0 && action.index < state.count ? { ...state, index: action.index } : state;
  const step = action.type === 'up' ? -1 : 1;
  return { ...state, index: (state.index + step + state.count) % state.count };
}
