/**
 * Word wrapping for the screens' sentences. Ink wraps a <Text> itself (wrap-ansi with `hard: true, trim: false`),
 * which starts a wrapped line with the space it broke at and cuts a word longer than the line, a file path
 * included, in the middle. Here a sentence is wrapped before Ink sees it: lines start with a word, and a word is never
 * cut (one longer than the line stands alone on its line). Pure: no Ink.
 */
import wrapAnsi from 'wrap-ansi';

export function wrapWords(text: string, width: number): string[] {
  const w = Math.max(10, width);
  return text
    .split('\n')
    .flatMap((paragraph) =>
      wrapAnsi(paragraph.replace(/\s+/g, ' ').trim(), w, { hard: false, trim: true }).split('\n'),
    );
}
