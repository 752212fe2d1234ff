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
