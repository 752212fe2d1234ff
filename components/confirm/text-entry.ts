/**
 * Editing a one-line answer, shared by the typed confirmations. Pure: no Ink. Control characters (a stray escape
 * sequence, a pasted newline) never land in the answer.
 */
export type EditAction = { readonly type: 'insert'; readonly text: string } | { readonly type: 'backspace' };

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/g;

export function edit(value: string, action: EditAction, maxLength = 200): string {
  if (action.type === 'backspace') return [...value].slice(0, -1).join('');
  return (value + action.text.replace(CONTROL, '')).slice(0, maxLength);
}
