/**
 * How a recovery ended, in one place: the exit code of each outcome (PRODUCT.md §2, in ./exit-codes.ts so the
 * wizard's first frame does not load the rest) and the drill's score, the same for autopilot's printed line and the
 * interactive summary.
 */
import type { RecoveryContext } from '../../machines/recovery-types.js';
import { timeToRecoverText } from '../journal/report.js';
import type { ExpectedOutcome, SimCluster } from '../sim/types.js';
import { timeToRecoverMs } from '../../machines/decisions.js';
import { localDiskFailure } from '../journal/local-disk.js';

export { exitCodeForMachine, exitCodeForOutcome } from './exit-codes.js';
export { timeToRecoverMs } from '../../machines/decisions.js';

export interface DrillScore {
  timeToRecover: string;
  dataLost: string;
  mistakesStopped: number;
  /** the trainer's verdict on the call: compared with the scenario's expected outcome and right answer */
  verdict: DrillVerdict;
}

/** Whether the trainee made the call the scenario expects, why, and (when not) what the right answer was. */
export interface DrillVerdict {
  correct: boolean;
  /** "✓ correct call: …" or "✗ …", one sentence */
  line: string;
  /** the scenario's right answer, shown when the call was wrong */
  rightAnswer: string;
}

/** What the verdict needs of the scenario (ScenarioInfo has it; a resumed drill reads the same from the simulator). */
export interface DrillExpectation {
  expectedOutcome: ExpectedOutcome;
  rightAnswer: string;
  /** a planned-swap drill's control-plane machine to take out (its hostname): a swap of another member is wrong */
  retire?: string;
}

type VerdictContext = Pick<RecoveryContext, 'outcome' | 'snapshot' | 'verdict' | 'replace'>;

/** The quorum-holding outcomes: a full recovery (wipe all, restore) there was the wrong call. */
const QUORUM_HELD: readonly string[] = ['member-replaced', 'nospace-cleared', 'nothing-to-do', 'stopped-quorum-intact'];

/** Why the call was right, in the trainer's words, by the outcome the scenario expects. */
function rightCallWhy(expected: ExpectedOutcome, lost: number | null): string {
  switch (expected) {
    case 'recovered':
      return lost === null || lost === 0
        ? 'etcd is back from the freshest data, nothing lost'
        : `etcd is back from the freshest data there was (${lost} revisions lost, no fresher source was available)`;
    case 'member-replaced':
      return 'quorum held and only the broken member was replaced; nothing else was wiped';
    case 'nospace-cleared':
      return 'quorum held: space was freed and the NOSPACE alarm disarmed, nothing wiped';
    case 'nothing-to-do':
      return 'quorum held and you waited: the member came back by itself, nothing removed or wiped';
    case 'stopped-quorum-intact':
      return 'quorum held and you stopped: nothing was wiped';
    case 'failed':
      return 'the scenario cannot be recovered and nothing was wiped in trying';
  }
}

/**
 * A file (a given backup, another file) was restored while a live member could have been snapshotted: the choice
 * that loses the writes since the file (issue 17: "one press chose a 9-hour-old snapshot … 40 revisions lost"). A
 * live member is one the assessment read EtcdStatus from (its freshest); a wiped node's raw copy, though offered, holds
 * nothing (single-node), so offered options alone do not count.
 */
function fresherSourceMissed(context: VerdictContext, lost: number | null): boolean {
  if (!lost || !context.snapshot || context.snapshot.method !== 'file') return false;
  return (context.verdict?.freshest ?? null) !== null;
}

/** Why the call was wrong: what happened against what was expected. */
function wrongCallWhy(context: VerdictContext, expected: ExpectedOutcome, lost: number | null): string {
  const outcome = context.outcome ?? 'stopped-by-user';
  if (outcome === expected && fresherSourceMissed(context, lost))
    return `a fresher snapshot was available: ${lost} revisions lost`;
  if (outcome === 'recovered' && QUORUM_HELD.includes(expected))
    return 'quorum held: a full recovery (every member wiped and restored) was not needed';
  if (outcome === 'member-replaced' && expected === 'nothing-to-do' && context.replace?.swap)
    return 'the cluster was healthy: replacing a healthy member is planned maintenance, not needed here';
  if (outcome === 'member-replaced' && expected === 'nothing-to-do')
    return 'the member would have come back by itself: removing it was not needed';
  if (outcome === 'stopped-quorum-intact' && expected === 'member-replaced')
    return 'stopped while quorum held: the broken member was not replaced';
  if (outcome === 'stopped-quorum-intact' && expected === 'nospace-cleared')
    return 'stopped while quorum held: the NOSPACE alarm was not cleared, etcd still refuses writes';
  if (outcome === 'stopped-by-user') return 'stopped before the end: the drill was not finished';
  if (outcome.startsWith('failed: ')) return `not finished: ${outcome.slice('failed: '.length)}`;
  return `ended ${outcome}, where the scenario expects ${expected}`;
}

/** The trainer's verdict: a right stop or a right wait scores as right, not as "not recovered". */
export function judgeDrill(
  context: VerdictContext,
  expect: DrillExpectation,
  lostRevisions: number | null,
): DrillVerdict {
  const swapped = context.replace?.swap?.name ?? null;
  const wrongMachine = expect.retire !== undefined && swapped !== null && swapped !== expect.retire;
  const correct =
    context.outcome === expect.expectedOutcome && !fresherSourceMissed(context, lostRevisions) && !wrongMachine;
  return {
    correct,
    line: correct
      ? `✓ correct call: ${rightCallWhy(expect.expectedOutcome, lostRevisions)}`
      : wrongMachine && context.outcome === expect.expectedOutcome
        ? `✗ ${swapped} was swapped; the machine to take out was ${expect.retire}`
        : `✗ ${wrongCallWhy(context, expect.expectedOutcome, lostRevisions)}`,
    rightAnswer: expect.rightAnswer,
  };
}

/** The verdict as printed lines: the call, and the right answer when the call was wrong. */
export function verdictLines(v: DrillVerdict): string[] {
  return v.correct ? [v.line] : [v.line, `right answer: ${v.rightAnswer}`];
}

/** What was lost in revisions, or null when nothing was restored (a procedure that keeps the data). */
function lostRevisionsOf(sim: SimCluster): number | null {
  const data = sim.dataReport();
  return data.restoredRevision === null ? null : data.lostRevisions;
}

/** What the simulator says was lost, in words ("none", "12 revisions (…)"). */
export function dataLostText(sim: SimCluster): string {
  const data = sim.dataReport();
  const lost =
    data.restoredRevision === null
      ? 'nothing restored'
      : data.lostRevisions === 0
        ? 'none'
        : `${data.lostRevisions} revisions (last write ${data.lastWriteRevision}, restored ${data.restoredRevision})`;
  // with --etcd real the revisions and keys are what the etcd members answered, not the model's bookkeeping
  const checked =
    data.etcd === 'real' && data.restoredRevision !== null
      ? data.keysMatchSnapshot
        ? ' (data checked on real etcd: the restored keys equal the snapshot)'
        : ' (data checked on real etcd: the restored keys DIFFER from the snapshot)'
      : '';
  return lost + checked;
}

/** The verdict on a drill's run, as the simulator counts the data lost (the final screen's and the score's). */
export function judgeOnSim(context: VerdictContext, sim: SimCluster): DrillVerdict {
  return judgeDrill(context, sim.scenario, lostRevisionsOf(sim));
}

export function drillScore(context: RecoveryContext, sim: SimCluster): DrillScore {
  const ms = timeToRecoverMs(context);
  const verdict = judgeOnSim(context, sim);
  return {
    timeToRecover: timeToRecoverText(ms, verdict.correct),
    dataLost: dataLostText(sim),
    mistakesStopped: context.guardStops.length,
    verdict,
  };
}

/** The score as score.json keeps it for report.md: the call, the right answer, then the figures. */
export function scoreRecord(scenario: string, score: DrillScore): Record<string, string | number> {
  return {
    scenario,
    call: score.verdict.line,
    'right answer': score.verdict.rightAnswer,
    'time to recover': score.timeToRecover,
    'data lost': score.dataLost,
    'mistakes the guards stopped': score.mistakesStopped,
  };
}

export function scoreLine(score: DrillScore): string {
  return `score: time to recover ${score.timeToRecover}; data lost ${score.dataLost}; mistakes the guards stopped ${score.mistakesStopped}`;
}

/** The trainer's verdict as autopilot prints it, just above the score line: `verdict: ✓ …` or `verdict: ✗ …` and the right answer. */
export function verdictPrinted(v: DrillVerdict): string[] {
  return verdictLines(v).map((l) => `verdict: ${l}`);
}

/**
 * The last line of an autopilot run (PRODUCT.md §2). A failed local write stops the machine as q does (the entry
 * aborts the run, so the machine's outcome reads stopped-by-user and its state can be resumed), but the user did not
 * stop it: the line says the disk's sentence, which names the file, its disk and how to continue (exit code 1).
 */
export function outcomeLine(outcome: string | null, disk: Error | null = localDiskFailure()): string {
  const stopped = outcome === null || outcome === 'stopped-by-user';
  if (stopped && disk) return `outcome: failed: ${disk.message}`;
  return `outcome: ${outcome ?? 'stopped-by-user'}`;
}
