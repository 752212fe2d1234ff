import { useEffect, useState } from 'react';

/** Wall-clock time that re-renders every `intervalMs`, for the header clock, ETAs and "no answer for 12s". */
export function useNow(intervalMs = 1000): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), intervalMs);
    return () => clearInterval(timer);
  }, [intervalMs]);
  return now;
}
