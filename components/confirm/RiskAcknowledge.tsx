import { Box, Text } from 'ink';
import { Paragraph } from '../Paragraph.js';
import { useTone } from '../theme.js';
import { useRiskAcknowledge } from './use-risk-acknowledge.js';

export interface RiskAcknowledgeProps {
  /** the risk in one or two sentences, e.g. "writes after the copy point may be missing" */
  readonly risk: string;
  /** the word to type, e.g. "accept" or "override" */
  readonly word: string;
  /** default true */
  readonly isActive?: boolean;
  readonly onAcknowledge: (reason: string) => void;
  /** Esc: absent where there is no way back */
  readonly onCancel?: () => void;
  /** Esc's answer stops the run (resumable) instead of going back */
  readonly cancelStops?: boolean;
}

/** Accepting a risk takes a typed word and a reason, both journalled: never one keystroke. */
export function RiskAcknowledge({
  risk,
  word,
  isActive = true,
  onAcknowledge,
  onCancel,
  cancelStops = false,
}: RiskAcknowledgeProps) {
  const tone = useTone();
  const state = useRiskAcknowledge({ word, isActive, onAcknowledge, ...(onCancel ? { onCancel, cancelStops } : {}) });
  const cursor = <Text color={tone('muted')}>▏</Text>;
  return (
    <Box flexDirection="column">
      <Paragraph lead="Risk: " {...(tone('warn') ? { leadColor: tone('warn') } : {})}>
        {risk}
      </Paragraph>
      <Text>
        {`Type `}
        <Text bold>{word}</Text>
        {` to accept it: `}
        <Text bold color={tone('active')}>
          {state.word}
        </Text>
        {state.stage === 'word' && cursor}
      </Text>
      {state.stage !== 'word' && (
        <Text>
          {'Reason (journalled): '}
          <Text bold color={tone('active')}>
            {state.reason}
          </Text>
          {state.stage === 'reason' && cursor}
        </Text>
      )}
      {state.error && <Paragraph color={tone('bad')}>{`✗ ${state.error}`}</Paragraph>}
    </Box>
  );
}
