/**
 * How a recovery ended, in one place: the exit code of each outcome (PRODUCT.md §2, in ./exit-codes.ts so the
 * wizard's first frame does not load the rest) and the drill's score, the same for autopilot's printed line and the
 * interactive summary.
 */
import type { RecoveryContext } from '../../machines/recovery-types.js';
import { formatDuration } from '../journal/report.js';
import type { SimCluster } from '../sim/types.js';
import { timeToRecoverMs } from '../../machines/decisions.js';

export { exitCodeForMachine, exitCodeForOutcome } from './exit-codes.js';
export { timeToRecoverMs } from '../../machines/decisions.js';

export interface DrillScore {
  timeToRecover: string;
  dataLost: string;
  mistakesStopped: number;
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

export function drillScore(context: RecoveryContext, sim: SimCluster): DrillScore {
  const ms = timeToRecoverMs(context);
  return {
    timeToRecover: ms === null ? 'not recovered' : formatDuration(ms),
    dataLost: dataLostText(sim),
    mistakesStopped: context.guardStops.length,
  };
}

export function scoreLine(score: DrillScore): string {
  return `score: time to recover ${score.timeToRecover}; data lost ${score.dataLost}; mistakes the guards stopped ${score.mistakesStopped}`;
}
