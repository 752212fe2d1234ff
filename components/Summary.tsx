import { Box, Text } from 'ink';
import { Bullet } from './Bullet.js';
import { Copyable, Paragraph, Width } from './Paragraph.js';
// the same words as the score line and report.md
import { formatDuration, timeToRecoverText } from '../src/journal/report.js';
import { useTone, type Tone } from './theme.js';
import { shellWord, useCliName } from './cli-name.js';
import { outcomeLine, type DrillScore, type DrillVerdictView, type Outcome } from './view-model.js';

export interface SummaryProps {
  readonly outcome: Outcome;
  readonly incidentDir: string;
  /** present for a drill */
  readonly score?: DrillScore;
  /** what to do next (restart kubelets, talosctl health, …), one sentence each */
  readonly followUp?: readonly string[];
  /** terminal width */
  readonly columns?: number;
}

const OUTCOME_TONE: Record<Outcome['kind'], Tone> = {
  recovered: 'ok',
  'member-replaced': 'ok',
  'nospace-cleared': 'ok',
  'nothing-to-do': 'ok',
  'stopped-quorum-intact': 'warn',
  'stopped-by-user': 'warn',
  failed: 'bad',
};

const HEADLINE: Record<Outcome['kind'], string> = {
  recovered: '✓ etcd recovered: every control-plane node is Running and healthy, and their member lists agree.',
  'member-replaced':
    '✓ Members replaced: every control-plane node is Running and healthy, and their member lists agree.',
  'nospace-cleared': '✓ Space freed and the NOSPACE alarm disarmed: etcd accepts writes again.',
  'nothing-to-do': '✓ etcd is healthy: there is nothing to recover.',
  'stopped-quorum-intact': '! Quorum holds: replace the broken member instead of a full recovery. Nothing was wiped.',
  'stopped-by-user': '! Stopped by you; the recovery can be resumed.',
  failed: '✗ The recovery did not finish.',
};

/**
 * The final frame: the outcome in words, the drill score, what to do next, and the outcome line that is also the
 * last line on stdout. Pure props, so it also works with Ink's renderToString after the session has ended.
 */
export function Summary({ outcome, incidentDir, score, followUp = [], columns = 80 }: SummaryProps) {
  const tone = useTone();
  const cli = useCliName();
  return (
    <Width width={columns}>
      <Box flexDirection="column">
        {/* the mark carries the tone; a yellow sentence would be unreadable on a light background */}
        <Paragraph
          bold
          lead={HEADLINE[outcome.kind].slice(0, 2)}
          {...(tone(OUTCOME_TONE[outcome.kind]) ? { leadColor: tone(OUTCOME_TONE[outcome.kind]) } : {})}
        >
          {HEADLINE[outcome.kind].slice(2)}
        </Paragraph>
        {followUp.length > 0 && (
          <Box flexDirection="column" marginTop={1}>
            <Text bold>Next:</Text>
            {followUp.map((line) => (
              <Bullet key={line} marker="  • ">
                {line}
              </Bullet>
            ))}
          </Box>
        )}
        {score && (
          <Box flexDirection="column" marginTop={1}>
            <Text bold color={tone('drill')}>
              {`Drill score — ${score.scenario}`}
            </Text>
            {score.verdict && <Verdict verdict={score.verdict} />}
            <Text>
              {`  time to recover: ${timeToRecoverText(score.timeToRecoverMs, score.verdict?.correct ?? false)}`}
              {score.timeLimitSec !== undefined && (
                <Text color={tone('muted')}>{` (limit ${formatDuration(score.timeLimitSec * 1000)})`}</Text>
              )}
            </Text>
            <Text>{`  data lost: ${score.dataLost}`}</Text>
            <Text>{`  mistakes the guards stopped: ${score.mistakesStopped.length}`}</Text>
            {score.mistakesStopped.map((m, i) => (
              <Bullet key={`${i}:${m}`} marker="    – " {...(tone('muted') ? { color: tone('muted') } : {})}>
                {m}
              </Bullet>
            ))}
          </Box>
        )}
        {/* the command names the incident folder: one line to copy, and the final frame stays within 80×24 */}
        <Box marginTop={1} flexDirection="column">
          <Copyable>{`${cli} report ${shellWord(incidentDir)}`}</Copyable>
          <Text bold>{outcomeLine(outcome)}</Text>
        </Box>
      </Box>
    </Width>
  );
}

/** The trainer's verdict: the mark carries the tone (the sentence stays readable), the right answer when wrong. */
function Verdict({ verdict }: { verdict: DrillVerdictView }) {
  const tone = useTone();
  const mark = verdict.line.slice(0, 2);
  const color = tone(verdict.correct ? 'ok' : 'bad');
  return (
    <>
      <Bullet marker={`  ${mark}`} {...(color ? { markerColor: color } : {})}>
        {verdict.line.slice(2)}
      </Bullet>
      {!verdict.correct && <Bullet marker="    right answer: ">{verdict.rightAnswer}</Bullet>}
    </>
  );
}
