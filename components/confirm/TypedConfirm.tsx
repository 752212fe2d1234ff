import { Box, Text } from 'ink';
import { Paragraph } from '../Paragraph.js';
import { useTone } from '../theme.js';
import { useTypedConfirm } from './use-typed-confirm.js';

export interface TypedConfirmProps {
  /** the one node this destructive action targets; the user must type exactly this */
  readonly target: string;
  /** what will be done to it, as a question, e.g. "Wipe 127.0.0.3 (EPHEMERAL) and reboot it?" */
  readonly question: string;
  /** what it changes and why it is safe, shown between the question and the field */
  readonly detail?: string;
  /** default true; false while another widget owns the keyboard */
  readonly isActive?: boolean;
  readonly onConfirm: () => void;
  /** Esc: go back to the previous choice; absent where there is no way back (Esc then does nothing) */
  readonly onCancel?: () => void;
  /** Esc's answer stops the run (resumable) instead of going back to a choice */
  readonly cancelStops?: boolean;
  readonly onRefused?: (typed: string) => void;
}

/** A destructive confirmation: names the node and the action, and proceeds only when the address is typed exactly. */
export function TypedConfirm({
  target,
  question,
  detail,
  isActive = true,
  onConfirm,
  onCancel,
  cancelStops = false,
  onRefused,
}: TypedConfirmProps) {
  const tone = useTone();
  const state = useTypedConfirm({
    expected: target,
    isActive,
    onConfirm,
    ...(onCancel ? { onCancel, cancelStops } : {}),
    ...(onRefused ? { onRefused } : {}),
  });
  return (
    <Box flexDirection="column">
      <Paragraph lead="Destructive: " {...(tone('warn') ? { leadColor: tone('warn') } : {})}>
        {question}
      </Paragraph>
      {detail && <Paragraph>{detail}</Paragraph>}
      <Text>
        {'Type '}
        <Text bold>{target}</Text>
        {' to confirm: '}
        <Text bold color={tone('active')}>
          {state.value}
        </Text>
        <Text color={tone('muted')}>{state.confirmed ? '' : '▏'}</Text>
      </Text>
      {state.error && <Paragraph color={tone('bad')}>{`✗ ${state.error}`}</Paragraph>}
    </Box>
  );
}
