import { Text } from 'ink';
import { clock, spinnerFrame } from './format.js';
import { useTone } from './theme.js';
import type { WaitView } from './view-model.js';

export interface WaitSpinnerProps {
  readonly wait: WaitView;
  readonly now: number;
  /** false when stdout is not a terminal: a static mark instead of frames nobody can see */
  readonly animate: boolean;
}

/** The count-down to the wait's end, when it has one: ", 1:52 left". */
function timeLeft(wait: WaitView, now: number): string {
  return wait.deadline === undefined ? '' : `, ${clock(Math.max(0, wait.deadline - now))} left`;
}

/** What is awaited, for how long (and how long is left), and the latest state seen. */
export function WaitSpinner({ wait, now, animate }: WaitSpinnerProps) {
  const tone = useTone();
  return (
    <>
      <Text wrap="truncate-end">
        <Text color={tone('active')}>{animate ? spinnerFrame(now) : '…'}</Text>
        {` Waiting for ${wait.awaiting}`}
        <Text color={tone('muted')}>{` (${clock(now - wait.since)}${timeLeft(wait, now)})`}</Text>
      </Text>
      {wait.latest && <Text wrap="truncate-end" color={tone('muted')}>{`  latest: ${wait.latest}`}</Text>}
    </>
  );
}
