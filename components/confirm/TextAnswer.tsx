import { Text } from 'ink';
import { useTone } from '../theme.js';
import { useTextAnswer } from './use-text-answer.js';

export interface TextAnswerProps {
  readonly label: string;
  /** default true */
  readonly isActive?: boolean;
  readonly onSubmit: (value: string) => void;
  readonly onCancel: () => void;
}

/** "Snapshot file: /backups/etcd-0312.db▏" — one line of typed text, Enter to submit, Esc to go back. */
export function TextAnswer({ label, isActive = true, onSubmit, onCancel }: TextAnswerProps) {
  const tone = useTone();
  const value = useTextAnswer({ isActive, onSubmit, onCancel });
  return (
    <Text>
      {`${label}: `}
      <Text bold color={tone('active')}>
        {value}
      </Text>
      <Text color={tone('muted')}>▏</Text>
    </Text>
  );
}
