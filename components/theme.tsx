import { createContext, useContext, type ReactNode } from 'react';

/**
 * Colour is decoration, never the only carrier of meaning: every state also has a symbol or a word. NO_COLOR
 * (no-color.org) turns colour off; chalk (inside Ink) does not read NO_COLOR, so the views ask the theme instead of
 * passing colours straight to <Text>.
 */
/**
 * `warn` (yellow) colours a mark or a short label only, never a whole sentence: yellow text is unreadable on a
 * light background.
 */
export type Tone = 'ok' | 'bad' | 'warn' | 'active' | 'muted' | 'drill' | 'accent';

const PALETTE: Record<Tone, string> = {
  ok: 'green',
  bad: 'red',
  warn: 'yellow',
  active: 'cyan',
  muted: 'gray',
  drill: 'magenta',
  accent: 'blue',
};

export interface Theme {
  readonly color: boolean;
}

const ThemeContext = createContext<Theme>({ color: true });

export function ThemeProvider({ color, children }: { readonly color: boolean; readonly children: ReactNode }) {
  return <ThemeContext.Provider value={{ color }}>{children}</ThemeContext.Provider>;
}

/** The colour for a tone, or undefined when colour is off (so Ink adds no escape code at all). */
export function useTone(): (tone: Tone) => string | undefined {
  const { color } = useContext(ThemeContext);
  return (tone) => (color ? PALETTE[tone] : undefined);
}

/** NO_COLOR set to anything non-empty turns colour off, as no-color.org specifies. */
export const colorFromEnv = (env: NodeJS.ProcessEnv): boolean => !(env.NO_COLOR !== undefined && env.NO_COLOR !== '');
