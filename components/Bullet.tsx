import type { ReactNode } from 'react';
import { Box, Text } from 'ink';
import { Paragraph, Width } from './Paragraph.js';

/**
 * A marker and text whose wrapped lines stay indented under the text, not under the marker. `color` colours both;
 * `markerColor` only the marker (a warning's "!" in yellow, its sentence in the terminal's own colour).
 */
export function Bullet({
  marker,
  children,
  color,
  markerColor,
}: {
  marker: string;
  children: ReactNode;
  color?: string;
  markerColor?: string;
}) {
  const markColour = markerColor ?? color;
  return (
    <Box>
      <Text {...(markColour ? { color: markColour } : {})}>{marker}</Text>
      <Box flexGrow={1} flexShrink={1}>
        <Width less={marker.length}>
          {typeof children === 'string' ? (
            <Paragraph {...(color ? { color } : {})}>{children}</Paragraph>
          ) : (
            <Text {...(color ? { color } : {})}>{children}</Text>
          )}
        </Width>
      </Box>
    </Box>
  );
}
