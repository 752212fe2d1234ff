/** The exit code of each way a recovery can end (PRODUCT.md §2): the one map, for autopilot and the screen. */
import type { RecoveryContext } from '../../machines/recovery-types.js';
import { EXIT } from '../errors.js';

/** Exit code for an outcome (PRODUCT.md §2); no outcome means the user stopped (the incident can be resumed). */
export function exitCodeForOutcome(outcome: string | null): number {
  if (
    outcome === 'recovered' ||
    outcome === 'member-replaced' ||
    outcome === 'nospace-cleared' ||
    outcome === 'stopped-quorum-intact' ||
    outcome === 'nothing-to-do'
  )
    return EXIT.ok;
  if (outcome === 'stopped-by-user' || outcome === null) return EXIT.stoppedByUser;
  return EXIT.failure;
}

/** Exit code for a machine as it stands: an error is a failure, a machine not at its final state was stopped. */
export function exitCodeForMachine(snap: { status: string; context: Pick<RecoveryContext, 'outcome'> }): number {
  if (snap.status === 'error') return EXIT.failure;
  if (snap.status !== 'done') return EXIT.stoppedByUser;
  return exitCodeForOutcome(snap.context.outcome);
}
