/**
 * State of a risk acknowledgement (skip-hash-check, overriding a quorum verdict): first type a short word exactly,
 * then a reason that goes into the journal. Pure reducer, no Ink.
 */
import { edit, type EditAction } from './text-entry.js';

export interface RiskAcknowledgeState {
  readonly stage: 'word' | 'reason' | 'done';
  readonly word: string;
  readonly reason: string;
  readonly error: string | null;
}

export type RiskAcknowledgeAction =
  | EditAction
  /** `back`: whether Esc goes back from here, so the refusal offers it only when it works */
  | { readonly type: 'submit'; readonly expectedWord: string; readonly back?: boolean; readonly stops?: boolean };

export const initialRiskAcknowledgeState: RiskAcknowledgeState = { stage: 'word', word: '', reason: '', error: null };

/** A reason shorter than this says nothing to whoever reads the journal later. */
export const MIN_REASON_LENGTH = 4;

export function riskAcknowledgeReducer(
  state: RiskAcknowledgeState,
  action: RiskAcknowledgeAction,
): RiskAcknowledgeState {
  if (state.stage === 'done') return state;
  if (action.type !== 'submit') {
    return state.stage === 'word'
      ? { ...state, word: edit(state.word, action), error: null }
      : { ...state, reason: edit(state.reason, action), error: null };
  }
  if (state.stage === 'word') {
    if (state.word.trim() === action.expectedWord)
      return { ...state, stage: 'reason', word: action.expectedWord, error: null };
    return {
      ...state,
      word: '',
      error: `Type ${action.expectedWord} to acknowledge the risk${action.back === false ? '' : action.stops ? ', or Esc to stop here (resumable)' : ', or Esc to go back'}.`,
    };
  }
  if (state.reason.trim().length < MIN_REASON_LENGTH)
    return { ...state, error: 'Write the reason in a few words: it goes into the journal and the report.' };
  return { ...state, stage: 'done', reason: state.reason.trim(), error: null };
}
