import { Box, Text } from 'ink';
import { Copyable, Paragraph, Width } from './Paragraph.js';
import { useTone } from './theme.js';
import { shellWord, useCliName } from './cli-name.js';
import type { KeyHint, StepExplanation } from './view-model.js';

export interface HelpOverlayProps {
  /** the keys of the current screen */
  readonly keys: readonly KeyHint[];
  /** where the state is saved, so "q" can say how to come back */
  readonly incidentDir: string;
  /** the current step: its title, why it exists, what it does and its talosctl equivalents */
  readonly step?: { readonly n: number; readonly count: number; readonly title: string } & StepExplanation;
}

/** What each column of the node table means, in the table's order: column name, meaning, two to a line. */
export const COLUMN_HELP: readonly (readonly (readonly [string, string])[])[] = [
  [
    ['NODE', 'address, HOST its hostname'],
    ['UP', 'answers now ("no 12s": silent for 12s)'],
  ],
  [
    ['TYPE', 'cp = controlplane'],
    ['ETCD', 'etcd service'],
    ['HEALTH', 'etcd health check'],
  ],
  [
    ['MEMB', 'members it sees'],
    ['APPLIED', 'raft applied index (highest = newest data)'],
  ],
  [['LAST EVENT', 'what the node, or the wizard on it, did last']],
];

/** `?`: this step in a few lines, what every key does, what the table's columns mean, and that quitting is safe. */
export function HelpOverlay({ keys, incidentDir, step }: HelpOverlayProps) {
  const tone = useTone();
  const cli = useCliName();
  return (
    <Box flexDirection="column" borderStyle="round" borderColor={tone('accent')} paddingX={1}>
      {/* border and padding take four columns */}
      <Width less={4}>
        <Text bold>Help — press ? or Esc to close</Text>
        {step && (
          <>
            <Text bold>{`Step ${step.n} of ${step.count}: ${step.title}`}</Text>
            <Paragraph>{step.why}</Paragraph>
            <Paragraph lead="Next: ">{step.whatHappens}</Paragraph>
            {step.talosctl.slice(0, 1).map((cmd) => (
              <Text key={cmd} wrap="truncate-end" color={tone('muted')}>{`by hand: ${cmd}`}</Text>
            ))}
          </>
        )}
        <Text>
          {keys.map((k, i) => (
            <Text key={k.key}>
              {i > 0 ? ' · ' : ''}
              <Text bold color={tone('accent')}>
                {k.key}
              </Text>
              {` ${k.does}`}
            </Text>
          ))}
          {keys.some((k) => k.key === 'Ctrl-C') ? '' : ' · Ctrl-C same as q'}
        </Text>
        {COLUMN_HELP.map((line) => (
          <Text key={line[0]?.[0]}>
            {line.map(([column, meaning], i) => (
              <Text key={column}>
                {i > 0 ? ' · ' : ''}
                <Text bold color={tone('accent')}>
                  {column}
                </Text>
                {` ${meaning}`}
              </Text>
            ))}
          </Text>
        ))}
        <Text>q stops safely at any moment, every step saved first; to continue later:</Text>
        <Copyable>{`${cli} resume ${shellWord(incidentDir)}`}</Copyable>
      </Width>
    </Box>
  );
}
