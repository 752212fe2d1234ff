/**
 * What each key does on each screen, as data: the key bar, the help overlay and the key hooks all read it, so what
 * the screen promises is what the keys do.
 */
import type { PromptKind } from '../machines/recovery-types.js';
import type { KeyHint } from './view-model.js';

export const GLOBAL_KEYS: readonly KeyHint[] = [
  { key: 'q', does: 'quit (saved)' },
  { key: '?', does: 'help' },
];

/** While a text answer is being typed, q is a letter: Ctrl-C is the way out. */
export const TYPING_GLOBAL_KEYS: readonly KeyHint[] = [{ key: 'Ctrl-C', does: 'quit (saved)' }];

export const PROMPT_KEYS: Record<PromptKind, readonly KeyHint[]> = {
  'typed-address': [
    { key: 'Enter', does: 'confirm' },
    { key: 'Esc', does: 'back' },
  ],
  acknowledge: [
    { key: 'Enter', does: 'next' },
    { key: 'Esc', does: 'back' },
  ],
  'yes-no': [
    { key: 'y', does: 'yes' },
    { key: 'n/Enter', does: 'no' },
  ],
  choose: [
    { key: '↑↓', does: 'move' },
    { key: 'Enter', does: 'choose' },
  ],
};

export const RETRY_KEYS: readonly KeyHint[] = [{ key: 'r', does: 'retry now' }];
