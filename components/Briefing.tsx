import { Box, Text } from 'ink';
import { clock } from './format.js';
import { Copyable, Paragraph } from './Paragraph.js';
import { useTone } from './theme.js';
import type { BriefingView } from './view-model.js';

/**
 * What every drill asks of the trainee, the same for every scenario: naming the procedure (or the outcome a trainer
 * expects) would give the answer away, as `drill --list` would.
 */
export const DRILL_TASK =
  'Find out what is wrong with etcd on this cluster and make it healthy again, with as little data lost as you can, or decide that it needs nothing. Every change waits for your confirmation.';

export const DRILL_SCORING =
  'Scored at the end: your call against the trainer’s, the time from the assessment, the data lost, and the mistakes the guards stopped.';

/**
 * A drill's briefing, shown before anything is asked: the scenario's name, what happened, the Talos version, the time
 * limit and what the trainee is asked to do — never the right answer or the expected outcome — and the incident
 * folder where the state, the journal and the report go.
 */
export function Briefing({ briefing, incidentDir }: { briefing: BriefingView; incidentDir: string }) {
  const tone = useTone();
  return (
    <Box flexDirection="column" marginTop={1}>
      <Text bold color={tone('drill')} wrap="truncate-end">
        {`Briefing — ${briefing.scenario} · Talos ${briefing.talosVersion} · ${briefing.nodeCount} nodes · time limit ${clock(briefing.timeLimitSec * 1000)}`}
      </Text>
      <Paragraph>{briefing.description}</Paragraph>
      <Box marginTop={1}>
        <Paragraph lead="Your task: ">{DRILL_TASK}</Paragraph>
      </Box>
      <Paragraph {...(tone('muted') ? { color: tone('muted') } : {})}>{DRILL_SCORING}</Paragraph>
      <Box marginTop={1} flexDirection="column">
        <Text {...(tone('muted') ? { color: tone('muted') } : {})}>Incident folder (state, journal, report):</Text>
        <Copyable>{incidentDir}</Copyable>
      </Box>
    </Box>
  );
}
