/**
 * Which machine event carries a user's answer. The machine listens for different events at different prompts (a
 * retry question takes `retry`, a stop option takes `abort`), so the answer is matched against what the current
 * state accepts (`snapshot.can`) rather than guessed. Pure: no Ink, no actor.
 */
import type { RecoveryEvent } from '../machines/recovery-types.js';

export type Accepts = (event: RecoveryEvent) => boolean;

/** The first candidate the machine accepts now, or null (then nothing is sent and the prompt stays). */
const firstAccepted = (accepts: Accepts, candidates: RecoveryEvent[]): RecoveryEvent | null =>
  candidates.find((e) => accepts(e)) ?? null;

export function eventForYesNo(yes: boolean, accepts: Accepts): RecoveryEvent | null {
  return yes
    ? firstAccepted(accepts, [{ type: 'answer.yes' }, { type: 'retry' }])
    : firstAccepted(accepts, [{ type: 'answer.no' }, { type: 'abort' }]);
}

export function eventForChoice(option: string, accepts: Accepts, path?: string): RecoveryEvent | null {
  const choose: RecoveryEvent = path === undefined ? { type: 'choose', option } : { type: 'choose', option, path };
  const byName: Record<string, RecoveryEvent[]> = {
    retry: [{ type: 'retry' }],
    stop: [{ type: 'abort' }],
  };
  return firstAccepted(accepts, [choose, ...(byName[option] ?? [])]);
}
