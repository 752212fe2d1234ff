import { useEffect, useState } from 'react';
import { useStdout } from 'ink';

export interface TerminalSize {
  readonly columns: number;
  readonly rows: number;
}

const sizeOf = (stdout: NodeJS.WriteStream): TerminalSize => ({
  columns: stdout.columns || 80,
  rows: stdout.rows || 24,
});

/**
 * The terminal's size, kept current on resize (Ink 6 has no useWindowSize). A stream that does not say (a pipe, a
 * test double) counts as the smallest terminal we promise to work in: 80×24. The listener goes first, before Ink's
 * own: the screen is laid out for the new size before Ink draws it (drawn at the old layout, a region taller than
 * the terminal makes Ink clear the screen and the scrollback).
 */
export function useTerminalSize(): TerminalSize {
  const { stdout } = useStdout();
  const [size, setSize] = useState(() => sizeOf(stdout));
  useEffect(() => {
    const onResize = () => setSize(sizeOf(stdout));
    stdout.prependListener('resize', onResize);
    return () => {
      stdout.off('resize', onResize);
    };
  }, [stdout]);
  return size;
}
