/**
 * Simulated time: every delay a scenario names (a reboot of 90 s, a join of 5 s) is divided by `speed`, so a drill
 * can run at human pace and the tests at millisecond pace. Every timer is tracked so stop() leaves nothing behind.
 */
export class SimClock {
  private readonly timers = new Set<NodeJS.Timeout>();
  private stopped = false;

  constructor(readonly speed: number) {
    if (!(speed > 0)) throw new Error('The simulator speed must be a positive number.');
  }

  /** Real milliseconds for a simulated duration. */
  real(simMs: number): number {
    return Math.max(0, simMs / this.speed);
  }

  /** Runs fn after a simulated delay; returns a cancel function. */
  after(simMs: number, fn: () => void): () => void {
    if (this.stopped) return () => {};
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      fn();
    }, this.real(simMs));
    this.timers.add(timer);
    return () => {
      clearTimeout(timer);
      this.timers.delete(timer);
    };
  }

  /** Waits a simulated delay; resolves early (false) when the signal aborts. */
  sleep(simMs: number, signal?: AbortSignal): Promise<boolean> {
    return new Promise((resolve) => {
      if (signal?.aborted) return resolve(false);
      const cancel = this.after(simMs, () => {
        signal?.removeEventListener('abort', onAbort);
        resolve(true);
      });
      const onAbort = (): void => {
        cancel();
        resolve(false);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      if (this.stopped) onAbort();
    });
  }

  stop(): void {
    this.stopped = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
  }
}
