/**
 * The NOSPACE playbook's SAFETY.md rules, each a function of context, event and target that returns null when allowed
 * or the sentence the user sees when refused. Merged into machines/guards.ts's RULES, so `refuse` can name them.
 */
import type { Rule } from '../guards.js';

export const NOSPACE_RULES = {} satisfies Record<string, Rule>;
