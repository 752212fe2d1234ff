import type { ReactNode } from 'react';
import { Box, Text } from 'ink';
import { KeyBar } from './KeyBar.js';
import { Paragraph, Width } from './Paragraph.js';
import { useTone } from './theme.js';
import type { KeyHint, StepExplanation } from './view-model.js';

export interface StepPanelProps {
  readonly explanation: StepExplanation;
  readonly keys: readonly KeyHint[];
  /** leave out the "why" and show only the first talosctl line, when rows are few */
  readonly compact?: boolean;
  /** the step's live part: a confirmation, a transfer bar, a wait spinner, a message */
  readonly children?: ReactNode;
}

/**
 * The current step: why it exists, what happens next, the talosctl equivalent, then its live part and the keys.
 * Compact (small terminals) keeps what is needed to act: the talosctl line, the live part, the keys.
 */
export function StepPanel({ explanation, keys, compact = false, children }: StepPanelProps) {
  const tone = useTone();
  const commands = compact ? explanation.talosctl.slice(0, 1) : explanation.talosctl;
  return (
    <Box
      flexDirection="column"
      {...(compact ? {} : { borderStyle: 'round' as const, borderColor: tone('muted'), paddingX: 1 })}
    >
      {/* border and padding take four columns */}
      <Width less={compact ? 0 : 4}>
        {!compact && <Paragraph lead="Why: ">{explanation.why}</Paragraph>}
        {(!compact || !children) && <Paragraph lead="Next: ">{explanation.whatHappens}</Paragraph>}
        {/* a step may give the same command twice (list, disarm, list again): the place makes the key */}
        {commands.map((cmd, i) => (
          <Text key={`${i}:${cmd}`} wrap="truncate-end" color={tone('muted')}>
            {`by hand: ${cmd}`}
          </Text>
        ))}
        {children && (
          <Box marginTop={compact ? 0 : 1} flexDirection="column">
            {children}
          </Box>
        )}
        <KeyBar keys={keys} />
      </Width>
    </Box>
  );
}
