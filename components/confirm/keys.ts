import type { Key } from 'ink';

/** A key that types text into an answer (not a navigation key, not a Ctrl/Meta chord). */
export const isTextKey = (key: Key): boolean =>
  !key.ctrl &&
  !key.meta &&
  !key.upArrow &&
  !key.downArrow &&
  !key.leftArrow &&
  !key.rightArrow &&
  !key.tab &&
  !key.pageUp &&
  !key.pageDown &&
  !key.return &&
  !key.escape;

/** One thing a chunk of typed text asks for: text to insert, or Enter. */
export type TypedPart = { readonly type: 'insert'; readonly text: string } | { readonly type: 'enter' };

/**
 * A chunk of text as the keystrokes it stands for. A terminal delivers a paste as one chunk: an address copied with
 * its line ending ("127.0.0.3\n", or "\r\n" from some terminals) is the address and then Enter, as if typed.
 */
export function typedParts(input: string): TypedPart[] {
  const parts: TypedPart[] = [];
  for (const [i, piece] of input.split(/\r\n|\r|\n/).entries()) {
    if (i > 0) parts.push({ type: 'enter' });
    if (piece !== '') parts.push({ type: 'insert', text: piece });
  }
  return parts;
}
