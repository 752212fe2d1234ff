/** Moving through a list of options; the cursor starts on the recommended one. Pure reducer, no Ink. */
export interface ChoiceState {
  readonly index: number;
  readonly count: number;
}

export type ChoiceAction = { readonly type: 'up' } | { readonly type: 'down' };

export function choiceReducer(state: ChoiceState, action: ChoiceAction): ChoiceState {
  if (state.count === 0) return state;
  const step = action.type === 'up' ? -1 : 1;
  return { ...state, index: (state.index + step + state.count) % state.count };
}
