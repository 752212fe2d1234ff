import { Box, Text } from 'ink';
import { clock } from './format.js';
import { useTone } from './theme.js';

export interface HeaderProps {
  /** talosconfig context name */
  readonly context: string;
  /** the endpoint requests go through, "host:port"; undefined until the first call answered */
  readonly endpoint?: string;
  /** 1-based number of the current step */
  readonly stepNumber: number;
  readonly stepCount: number;
  readonly stepTitle: string;
  /** ms since the assessment started; undefined before it did */
  readonly sinceAssessmentMs?: number;
  /** a drill shows a banner so nobody mistakes it for the real cluster */
  readonly drill?: { readonly scenario: string; readonly timeLimitSec?: number };
}

/** Two lines: where am I (context, endpoint, drill or not) and which step, with the clock since assessment. */
export function Header({ context, endpoint, stepNumber, stepCount, stepTitle, sinceAssessmentMs, drill }: HeaderProps) {
  const tone = useTone();
  return (
    <Box flexDirection="column">
      {drill && (
        <Text bold color={tone('drill')} wrap="truncate-end">
          {`▌DRILL · simulated cluster · scenario ${drill.scenario}${drill.timeLimitSec ? ` · time limit ${clock(drill.timeLimitSec * 1000)}` : ''}`}
        </Text>
      )}
      <Box>
        <Text wrap="truncate-end">
          <Text bold>talos-dr</Text>
          <Text color={tone('muted')}> · context </Text>
          <Text>{context}</Text>
          <Text color={tone('muted')}> · endpoint </Text>
          <Text>{endpoint ?? 'connecting…'}</Text>
        </Text>
      </Box>
      <Box>
        <Box flexGrow={1}>
          <Text wrap="truncate-end">
            <Text bold color={tone('active')}>{`step ${stepNumber} of ${stepCount}: `}</Text>
            <Text bold>{stepTitle}</Text>
          </Text>
        </Box>
        <Text color={tone('muted')}>
          {sinceAssessmentMs === undefined ? 'not assessed yet' : `${clock(sinceAssessmentMs)} since assessment`}
        </Text>
      </Box>
    </Box>
  );
}
