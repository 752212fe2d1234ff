/** The recovery machine and its public shapes, for the files that import them from here (machines/recovery/). */
export * from './recovery-types.js';
export {
  recoveryMachine,
  type RecoveryActor,
  type RecoveryMachine,
  type RecoverySnapshot,
} from './recovery/machine.js';
export { currentStep, formatAge, giveUpReason, snapshotOptions } from './recovery/context.js';
export { talosctlFor } from './recovery/steps.js';
