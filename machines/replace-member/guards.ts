/** The member replacement's named guards (pure functions of context and event), spread into setup.ts. */
import type { GuardArgs } from '../recovery-types.js';

export const REPLACE_MEMBER_GUARDS = {} satisfies Record<string, (args: GuardArgs) => boolean>;
