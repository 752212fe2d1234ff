/**
 * What each key does on each screen, as data: the key bar, the help overlay and the key hooks all read it, so what
 * the screen promises is what the keys do. A key is listed only where it works: Esc "back" only where the machine
 * takes a way back, Enter only where it answers something.
 */
import type { KeyHint } from './view-model.js';

export const GLOBAL_KEYS: readonly KeyHint[] = [
  { key: 'q', does: 'quit (saved)' },
  { key: '?', does: 'help' },
];

/** While a text answer is being typed, q is a letter: Ctrl-C is the way out. */
export const TYPING_GLOBAL_KEYS: readonly KeyHint[] = [{ key: 'Ctrl-C', does: 'quit (saved)' }];

const ESC_BACK: KeyHint = { key: 'Esc', does: 'back' };
/** Where the machine's "no" from a typed question stops the run (resumable) instead of going back to a choice. */
const ESC_STOP: KeyHint = { key: 'Esc', does: 'no, stop (resumable)' };

const escKeys = (back: boolean, stops: boolean): KeyHint[] => (back ? [stops ? ESC_STOP : ESC_BACK] : []);

/** A typed address (wipe, re-create, convert, bootstrap); `stops`: Esc's "no" stops the run rather than going back. */
export const typedAddressKeys = (back: boolean, stops = false): readonly KeyHint[] => [
  { key: 'Enter', does: 'confirm' },
  ...escKeys(back, stops),
];

/** A typed word and then a reason (accepting a risk, overriding a recommendation). */
export const acknowledgeKeys = (back: boolean, stops = false): readonly KeyHint[] => [
  { key: 'Enter', does: 'next' },
  ...escKeys(back, stops),
];

/** A file path typed after "use another snapshot file". */
export const PATH_KEYS: readonly KeyHint[] = [
  { key: 'Enter', does: 'use this file' },
  { key: 'Esc', does: 'back to the list' },
];

/** A yes/no question; Enter answers only where there is a default (shown in capitals: [Y/n]). */
export const yesNoKeys = (defaultAnswer: 'yes' | 'no' | null): readonly KeyHint[] => [
  { key: defaultAnswer === 'yes' ? 'y/Enter' : 'y', does: 'yes' },
  { key: defaultAnswer === 'no' ? 'n/Enter' : 'n', does: 'no' },
];

/** A list: arrows or the option's number move the cursor; only Enter chooses. */
export const CHOOSE_KEYS: readonly KeyHint[] = [
  { key: '↑↓/1-9', does: 'move' },
  { key: 'Enter', does: 'choose' },
];

export const RETRY_KEYS: readonly KeyHint[] = [{ key: 'r', does: 'retry now' }];
