/**
 * The member replacement's SAFETY.md rules, each a function of context, event and target that returns null when allowed
 * or the sentence the user sees when refused. Merged into machines/guards.ts's RULES, so `refuse` can name them.
 */
import type { Rule } from '../guards.js';

export const REPLACE_MEMBER_RULES = {} satisfies Record<string, Rule>;
