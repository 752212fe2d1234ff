import { useEffect, useReducer } from 'react';
import { useActiveInput } from '../use-active-input.js';
import {
  initialRiskAcknowledgeState,
  riskAcknowledgeReducer,
  type RiskAcknowledgeState,
} from './use-risk-acknowledge-state.js';
import { isTextKey, typedParts } from './keys.js';

export interface UseRiskAcknowledgeOptions {
  readonly word: string;
  readonly isActive: boolean;
  readonly onAcknowledge: (reason: string) => void;
  /** Esc: absent where there is no way back (then Esc does nothing) */
  readonly onCancel?: () => void;
  /** Esc's answer stops the run (resumable) rather than going back: the refusal's sentence says so */
  readonly cancelStops?: boolean;
}

export function useRiskAcknowledge({
  word,
  isActive,
  onAcknowledge,
  onCancel,
  cancelStops = false,
}: UseRiskAcknowledgeOptions): RiskAcknowledgeState {
  const [state, dispatch] = useReducer(riskAcknowledgeReducer, initialRiskAcknowledgeState);
  useActiveInput((input, key) => {
    if (key.escape) onCancel?.();
    else if (key.return)
      dispatch({ type: 'submit', expectedWord: word, back: onCancel !== undefined, stops: cancelStops });
    else if (key.backspace || key.delete) dispatch({ type: 'backspace' });
    else if (isTextKey(key))
      for (const part of typedParts(input))
        dispatch(
          part.type === 'enter'
            ? { type: 'submit', expectedWord: word, back: onCancel !== undefined, stops: cancelStops }
            : part,
        );
  }, isActive);
  useEffect(() => {
    if (state.stage === 'done') onAcknowledge(state.reason);
    // eslint-disable-next-line react-hooks/exhaustive-deps -- fires once, when the reducer reaches done
  }, [state.stage]);
  return state;
}
