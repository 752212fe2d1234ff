import { Box, Text } from 'ink';
import { useTone } from './theme.js';

export interface QuitNoticeProps {
  readonly incidentDir: string;
  /** the step that was current when the user stopped */
  readonly stoppedAt?: string;
}

/** The last thing on screen after `q`: nothing is lost, and the exact command to continue. */
export function QuitNotice({ incidentDir, stoppedAt }: QuitNoticeProps) {
  const tone = useTone();
  return (
    <Box flexDirection="column">
      <Text bold>
        <Text color={tone('warn')}>{'! '}</Text>
        {`Stopped${stoppedAt ? ` at ${stoppedAt}` : ''}. Your progress is saved in ${incidentDir}.`}
      </Text>
      <Text>
        {'To continue: '}
        <Text bold>{`talos-dr resume ${incidentDir}`}</Text>
      </Text>
    </Box>
  );
}
