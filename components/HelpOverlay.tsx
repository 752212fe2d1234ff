import { Box, Text } from 'ink';
import { useTone } from './theme.js';
import type { KeyHint } from './view-model.js';

export interface HelpOverlayProps {
  /** the keys of the current screen */
  readonly keys: readonly KeyHint[];
  /** where the state is saved, so "q" can say how to come back */
  readonly incidentDir: string;
}

/** `?`: what every key does, what the table's columns mean, and that quitting is always safe. */
export function HelpOverlay({ keys, incidentDir }: HelpOverlayProps) {
  const tone = useTone();
  return (
    <Box flexDirection="column" borderStyle="round" borderColor={tone('accent')} paddingX={1}>
      <Text bold>Help — press ? or Esc to close</Text>
      {keys.map((k) => (
        <Text key={k.key}>
          <Text bold color={tone('accent')}>
            {k.key.padEnd(8)}
          </Text>
          {k.does}
        </Text>
      ))}
      <Text>
        <Text bold color={tone('accent')}>
          {'Ctrl-C'.padEnd(8)}
        </Text>
        same as q: stop safely
      </Text>
      <Text> </Text>
      <Text>Node table: UP yes, or "no 12s" = no answer for 12s · TYPE cp = controlplane · MEMB = members this</Text>
      <Text>node sees · APPLIED = raft applied index (the freshest node holds the newest data).</Text>
      <Text>{`q stops at any moment: every step is saved in ${incidentDir} before it acts, and`}</Text>
      <Text>{`talos-dr resume ${incidentDir} continues where you stopped, never repeating a finished wipe.`}</Text>
    </Box>
  );
}
