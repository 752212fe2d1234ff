/**
 * The after-restore step's effects (issue 15): the named actors machines/after-restore/actors.ts declares, over the Talos client.
 */
import type { EffectDeps, EffectTiming } from './deps.js';

/** The after-restore step's named actors, given to the machine with the recovery's own (src/wizard/actors.ts). */
export function afterRestoreActors(_deps: EffectDeps, _timing: EffectTiming) {
  return {};
}
