import { useEffect, useReducer } from 'react';
import { useActiveInput } from '../use-active-input.js';
import {
  initialRiskAcknowledgeState,
  riskAcknowledgeReducer,
  type RiskAcknowledgeState,
} from './use-risk-acknowledge-state.js';
import { isTextKey } from './keys.js';

export interface UseRiskAcknowledgeOptions {
  readonly word: string;
  readonly isActive: boolean;
  readonly onAcknowledge: (reason: string) => void;
  readonly onCancel: () => void;
}

export function useRiskAcknowledge({
  word,
  isActive,
  onAcknowledge,
  onCancel,
}: UseRiskAcknowledgeOptions): RiskAcknowledgeState {
  const [state, dispatch] = useReducer(riskAcknowledgeReducer, initialRiskAcknowledgeState);
  useActiveInput((input, key) => {
    if (key.escape) onCancel();
    else if (key.return) dispatch({ type: 'submit', expectedWord: word });
    else if (key.backspace || key.delete) dispatch({ type: 'backspace' });
    else if (isTextKey(key)) dispatch({ type: 'insert', text: input });
  }, isActive);
  useEffect(() => {
    if (state.stage === 'done') onAcknowledge(state.reason);
  }, [state.stage]);
  return state;
}
