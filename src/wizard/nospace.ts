/**
 * The NOSPACE playbook's effects (issue 15): the named actors machines/nospace/actors.ts declares, over the Talos client.
 */
import type { EffectDeps, EffectTiming } from './deps.js';

/** The NOSPACE playbook's named actors, given to the machine with the recovery's own (src/wizard/actors.ts). */
export function nospaceActors(_deps: EffectDeps, _timing: EffectTiming) {
  return {};
}
