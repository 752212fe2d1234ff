import type { ReactNode } from 'react';
import { Box, Text } from 'ink';

/** A marker and text whose wrapped lines stay indented under the text, not under the marker. */
export function Bullet({ marker, children, color }: { marker: string; children: ReactNode; color?: string }) {
  return (
    <Box>
      <Text {...(color ? { color } : {})}>{marker}</Text>
      <Box flexGrow={1} flexShrink={1}>
        <Text {...(color ? { color } : {})}>{children}</Text>
      </Box>
    </Box>
  );
}
