import { useState } from 'react';
import { Box, Text, useStdout } from 'ink';
import { STEP_NAMES } from '../machines/recovery-types.js';
import { clock, spinnerFrame } from './format.js';
import { Header } from './Header.js';
import { KeyBar } from './KeyBar.js';
import { StepList } from './StepList.js';
import { STEP_TEXT } from './step-text.js';
import { useTone } from './theme.js';
import { useActiveInput } from './use-active-input.js';
import { useNow } from './use-now.js';
import { useTerminalSize } from './use-terminal-size.js';
import type { BriefingView, KeyHint, StepView } from './view-model.js';
import { Briefing } from './Briefing.js';
import { Width } from './Paragraph.js';

export interface StartingScreenProps {
  /** the talosconfig context; undefined while the talosconfig is still being read */
  readonly context?: string;
  /** a drill shows its banner from the first frame on */
  readonly drill?: { readonly scenario: string; readonly timeLimitSec?: number };
  /** what is being done right now, e.g. "Starting the drill cluster" */
  readonly status: string;
  /** when the command started (the clock beside the status) */
  readonly since: number;
  /** q or Ctrl-C: the command stops as soon as the wizard is up (which saves its state and names resume) */
  readonly onQuit?: () => void;
  /** a drill's briefing, on screen until Enter begins the drill (nothing runs against the cluster before) */
  readonly briefing?: { readonly view: BriefingView; readonly incidentDir: string; readonly onBegin: () => void };
}

const KEYS: readonly KeyHint[] = [{ key: 'q', does: 'quit' }];
const BRIEFING_KEYS: readonly KeyHint[] = [
  { key: 'Enter', does: 'begin the drill' },
  { key: 'q', does: 'quit' },
];

/**
 * The wizard's first frame, drawn before the cluster (or the drill's simulated cluster) is reached: the same header
 * and step list as the wizard, so the screen does not jump when it takes over, and one line saying what is being
 * done. Nothing has been asked or changed yet; the wizard replaces this frame once its first step runs.
 */
export function StartingScreen({ context, drill, status, since, onQuit, briefing }: StartingScreenProps) {
  const tone = useTone();
  const now = useNow(1000);
  const { stdout } = useStdout();
  const { columns, rows } = useTerminalSize();
  const [stopping, setStopping] = useState(false);
  useActiveInput((input, key) => {
    if (input === 'q' || (key.ctrl && input === 'c')) {
      setStopping(true);
      onQuit?.();
    } else if (briefing && key.return) briefing.onBegin();
  }, !stopping);
  // the wizard's header at its first step, before the talosconfig is read: the same behind the briefing and the wait
  const header = (
    <Header
      context={context ?? 'reading the talosconfig…'}
      stepNumber={1}
      stepCount={STEP_NAMES.length}
      stepTitle={STEP_TEXT.connect.title}
      {...(drill ? { drill } : {})}
    />
  );
  if (briefing && !stopping)
    return (
      <Box flexDirection="column" width={columns}>
        {header}
        <Width width={columns}>
          <Briefing briefing={briefing.view} incidentDir={briefing.incidentDir} />
        </Width>
        <KeyBar keys={BRIEFING_KEYS} />
      </Box>
    );
  const steps: StepView[] = STEP_NAMES.map((name, i) => ({
    n: i + 1,
    title: STEP_TEXT[name].title,
    status: i === 0 ? 'current' : 'pending',
  }));
  // header (2–3 lines), steps, status, note, keys: the full list fits 80×24; a short terminal gets the one-line list
  const compact = rows < steps.length + 8;
  return (
    <Box flexDirection="column" width={columns}>
      {header}
      <StepList steps={steps} stepCount={steps.length} compact={compact} />
      <Text wrap="truncate-end">
        <Text color={tone('active')}>{stdout.isTTY ? spinnerFrame(now) : '…'}</Text>
        {` ${stopping ? 'Stopping: the state is saved as soon as the wizard is up' : status}…`}
        <Text color={tone('muted')}>{` (${clock(Math.max(0, now - since))})`}</Text>
      </Text>
      <Text wrap="truncate-end" color={tone('muted')}>
        Nothing has been asked or changed yet.
      </Text>
      {!stopping && <KeyBar keys={KEYS} />}
    </Box>
  );
}
