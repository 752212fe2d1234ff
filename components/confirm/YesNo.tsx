import { Text } from 'ink';
import { useTone } from '../theme.js';
import { useYesNo } from './use-yes-no.js';

export interface YesNoProps {
  readonly question: string;
  /** default true */
  readonly isActive?: boolean;
  readonly onAnswer: (yes: boolean) => void;
}

/** A non-destructive question; Enter alone answers No. */
export function YesNo({ question, isActive = true, onAnswer }: YesNoProps) {
  const tone = useTone();
  useYesNo({ isActive, onAnswer });
  return (
    <Text>
      {`${question} `}
      <Text color={tone('muted')}>[y/N]</Text>
    </Text>
  );
}
