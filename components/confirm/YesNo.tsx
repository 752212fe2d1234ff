import { Box, Text } from 'ink';
import { useTone } from '../theme.js';
import { useYesNo } from './use-yes-no.js';

export interface YesNoProps {
  readonly question: string;
  /** what Enter answers, shown in capitals ([Y/n], [y/N]); default none: Enter then says to press y or n */
  readonly defaultAnswer?: 'yes' | 'no' | null;
  /** default true */
  readonly isActive?: boolean;
  readonly onAnswer: (yes: boolean) => void;
}

const CHOICES = { yes: '[Y/n]', no: '[y/N]', none: '[y/n]' } as const;

/** A non-destructive question. */
export function YesNo({ question, defaultAnswer = null, isActive = true, onAnswer }: YesNoProps) {
  const tone = useTone();
  const hint = useYesNo({ isActive, defaultAnswer, onAnswer });
  return (
    <Box flexDirection="column">
      <Text>
        {`${question} `}
        <Text color={tone('muted')}>{CHOICES[defaultAnswer ?? 'none']}</Text>
      </Text>
      {hint && (
        <Text>
          <Text color={tone('warn')}>{'! '}</Text>
          Press y for yes or n for no.
        </Text>
      )}
    </Box>
  );
}
