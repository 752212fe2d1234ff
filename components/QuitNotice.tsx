import { Box, Text } from 'ink';
import { Copyable, Paragraph, Width } from './Paragraph.js';
import { useTone } from './theme.js';
import { shellWord, useCliName } from './cli-name.js';

export interface QuitNoticeProps {
  readonly incidentDir: string;
  /** the step that was current when the user stopped */
  readonly stoppedAt?: string;
  /** terminal width */
  readonly columns?: number;
}

/** The last thing on screen after `q`: nothing is lost, and the exact command to continue. */
export function QuitNotice({ incidentDir, stoppedAt, columns = 80 }: QuitNoticeProps) {
  const tone = useTone();
  const cli = useCliName();
  return (
    <Width width={columns}>
      <Box flexDirection="column">
        <Paragraph bold lead="! " {...(tone('warn') ? { leadColor: tone('warn') } : {})}>
          {`Stopped${stoppedAt ? ` at ${stoppedAt}` : ''}. Your progress is saved in ${incidentDir}.`}
        </Paragraph>
        <Text>To continue:</Text>
        <Copyable bold>{`${cli} resume ${shellWord(incidentDir)}`}</Copyable>
      </Box>
    </Width>
  );
}
