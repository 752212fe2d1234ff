/** The after-restore step's named guards (pure functions of context and event), spread into setup.ts. */
import type { GuardArgs } from '../recovery-types.js';

export const AFTER_RESTORE_GUARDS = {} satisfies Record<string, (args: GuardArgs) => boolean>;
