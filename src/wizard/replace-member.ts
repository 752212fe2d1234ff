/**
 * The member replacement's effects (issue 15): the named actors machines/replace-member/actors.ts declares, over the Talos client.
 */
import type { EffectDeps, EffectTiming } from './deps.js';

/** The member replacement's named actors, given to the machine with the recovery's own (src/wizard/actors.ts). */
export function replaceMemberActors(_deps: EffectDeps, _timing: EffectTiming) {
  return {};
}
