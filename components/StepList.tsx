import { Box, Text } from 'ink';
import { duration } from './format.js';
import { useTone, type Tone } from './theme.js';
import type { StepStatus, StepView } from './view-model.js';

/** A symbol for every status, so the list reads the same without colour. */
const MARK: Record<StepStatus, { symbol: string; tone: Tone }> = {
  done: { symbol: '✓', tone: 'ok' },
  current: { symbol: '▸', tone: 'active' },
  pending: { symbol: '·', tone: 'muted' },
  failed: { symbol: '✗', tone: 'bad' },
  skipped: { symbol: '–', tone: 'muted' },
};

export interface StepLineProps {
  readonly step: StepView;
  readonly stepCount: number;
}

/** One step: "✓ 3/9 Snapshot — verified, rev 4821 (4.2s)". Also what <Static> history writes once per finished step. */
export function StepLine({ step, stepCount }: StepLineProps) {
  const tone = useTone();
  const mark = MARK[step.status];
  const finished = step.status === 'done' || step.status === 'failed' || step.status === 'skipped';
  return (
    <Text wrap="truncate-end">
      <Text color={tone(mark.tone)}>{`${mark.symbol} `}</Text>
      <Text color={step.status === 'pending' ? tone('muted') : undefined} bold={step.status === 'current'}>
        {`${step.n}/${stepCount} ${step.title}`}
      </Text>
      {step.result && <Text color={step.status === 'failed' ? tone('bad') : undefined}>{` — ${step.result}`}</Text>}
      {finished && step.durationMs !== undefined && (
        <Text color={tone('muted')}>{` (${duration(step.durationMs)})`}</Text>
      )}
    </Text>
  );
}

export interface StepListProps {
  readonly steps: readonly StepView[];
  readonly stepCount: number;
  /** one line ("next: 4 Back up configs · 5 Init nodes …") instead of one line per step, when rows are few */
  readonly compact?: boolean;
}

/** The steps not yet in history: the current one and those still to come (or all of them, for the summary). */
export function StepList({ steps, stepCount, compact = false }: StepListProps) {
  const tone = useTone();
  if (compact) {
    const pending = steps.filter((s) => s.status === 'pending');
    const others = steps.filter((s) => s.status !== 'pending');
    return (
      <Box flexDirection="column">
        {others.map((s) => (
          <StepLine key={s.n} step={s} stepCount={stepCount} />
        ))}
        {pending.length > 0 && (
          <Text wrap="truncate-end" color={tone('muted')}>
            {`· next: ${pending.map((s) => `${s.n} ${s.title}`).join(' · ')}`}
          </Text>
        )}
      </Box>
    );
  }
  return (
    <Box flexDirection="column">
      {steps.map((s) => (
        <StepLine key={s.n} step={s} stepCount={stepCount} />
      ))}
    </Box>
  );
}
