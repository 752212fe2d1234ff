/**
 * Time for the recovery machines: only the clock the actor was created with (xstate's SimulatedClock in tests, the
 * wall clock otherwise). `now` reads it; `sleep` is a pause on it.
 */
import { fromCallback } from 'xstate';

/**
 * The time on the actor's clock. xstate's SimulatedClock has `now()`; its default clock only schedules, so then the
 * wall clock is read: the one place it is.
 */
export function now(system: { _clock: unknown }): number {
  const clock = system._clock as { now?: () => number };
  return typeof clock.now === 'function' ? clock.now() : Date.now();
}

/**
 * A pause of `ms` on the actor's clock, ending in a `wake` event to its parent. An invoked actor rather than an
 * `after` delay: a machine restored from state.json starts its invoked actors again, but xstate keeps no delayed event
 * in a persisted snapshot, so a wait or a backoff restored mid-pause would never end (issue 18).
 */
export const sleep = fromCallback<{ type: 'wake' }, { ms: number }>(({ input, system, sendBack }) => {
  const clock = system._clock;
  const id = clock.setTimeout(() => sendBack({ type: 'wake' }), input.ms);
  return () => clock.clearTimeout(id);
});
