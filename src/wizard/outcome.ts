/**
 * How a recovery ended, in one place: the exit code of each outcome (PRODUCT.md §2, in ./exit-codes.ts so the
 * wizard's first frame does not load the rest) and the drill's score, the same for autopilot's printed line and the
 * interactive summary.
 */
import type { RecoveryContext } from '../../machines/recovery-types.js';
import { formatDuration } from '../journal/report.js';
import type { SimCluster } from '../sim/types.js';
import { timeToRecoverMs } from '../../machines/decisions.js';
import { localDiskFailure } from '../journal/local-disk.js';

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
