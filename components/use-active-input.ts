import { useLayoutEffect, useRef } from 'react';
import { useInput, useStdin, type Key } from 'ink';

/**
 * Ink's useInput, but a handler stops receiving keys the moment its component leaves the screen or turns inactive.
 * Ink removes the listener in a passive effect, which React may run after the next keystroke has already arrived
 * (seen: a `y` typed right after `?` opened the help still answered the hidden question). A layout effect runs in
 * the same commit that changes the screen, so what is on screen is what listens. Inactive without raw mode:
 * Ink throws on a stdin that is not a terminal.
 */
export function useActiveInput(handler: (input: string, key: Key) => void, isActive: boolean): void {
  const { isRawModeSupported } = useStdin();
  const live = useRef(false);
  useLayoutEffect(() => {
    live.current = isActive;
    return () => {
      live.current = false;
    };
  }, [isActive]);
  // Ink's own listener stays subscribed while the component is on screen: Ink subscribes in a passive effect, so a
  // key pressed right after a widget turned active again (a "y" just after Esc closed the help) was lost.
  useInput(
    (input, key) => {
      if (live.current) handler(input, key);
    },
    { isActive: isRawModeSupported },
  );
}
