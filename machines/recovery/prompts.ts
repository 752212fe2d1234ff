/**
 * Questions: a state that asks one (its prompt set on entry, cleared on exit, whatever answer leaves it), and the
 * "Try again?" question every failed action asks, with the answers it takes.
 */
import type { Prompt, RecoveryContext } from '../recovery-types.js';
import { recoverySetup } from './setup.js';
import type { StateConfig } from './states.js';

export const EXTERNAL_CONTROLLERS =
  'If Omni or Cluster API manages this cluster, pause them first: they may reboot, replace or re-provision nodes during the recovery.';

/** A state that asks one question: the prompt is set on entry and cleared on exit, whatever answer leaves it. */
export function promptState(prompt: (args: { context: RecoveryContext }) => Prompt, config: StateConfig): StateConfig {
  return recoverySetup.createStateConfig({
    ...config,
    entry: { type: 'ask', params: prompt },
    exit: 'clearPrompt',
  });
}

/** A failed action's prompt, asked as yes/no: yes (or retry) goes back to `again` to call anew; no stops, resumable. */
export function retryPromptState(action: string | ((context: RecoveryContext) => string), again: string): StateConfig {
  return promptState(
    ({ context }) =>
      retryPrompt(typeof action === 'function' ? action(context) : action, context.attempt?.lastError ?? null),
    { on: retryAnswers(again) },
  );
}

/**
 * What a failure's prompt takes, however the answer comes: yes, `retry` or the option "retry" goes back to `target`
 * and tries again; no or the option "stop" stops (resumable). (A prompt saved as a list of those two options before
 * failure prompts became yes/no questions is answered the same way after a resume.)
 */
export function retryAnswers(target: string, again: 'clearAttempt' | 'retryFailedPreps' = 'clearAttempt') {
  return {
    retry: { target, actions: again },
    'answer.yes': { target, actions: again },
    'answer.no': { target: '#recovery.stoppedByUser' },
    choose: [
      { guard: { type: 'chose' as const, params: { option: 'retry' } }, target, actions: again },
      { guard: { type: 'chose' as const, params: { option: 'stop' } }, target: '#recovery.stoppedByUser' },
    ],
  };
}

/**
 * A failure's "Try again?": trying again is its default and its recommended answer (issue 17 item 5: "a retry prompt
 * defaults to retrying"; the screen's Enter retries), so the screen and autopilot agree. Autopilot takes it once per
 * question and gives up when the same failure comes back (src/wizard/autopilot.ts): then a person is needed.
 */
export function retryPrompt(action: string, error: string | null): Prompt {
  return {
    id: `retry:${action}`,
    kind: 'yes-no',
    question: `${action} failed. Try again?`,
    detail: error ?? 'The action failed.',
    recommended: { type: 'retry' },
  };
}

type On = NonNullable<StateConfig['on']>;
/** The actions a chosen answer runs after its journal entry (the `choose` event's transition actions). */
type ChoiceActions = Extract<NonNullable<On['choose']>, readonly unknown[]>[number] extends infer T
  ? T extends { actions?: infer A }
    ? A
    : never
  : never;

/** Where one answer goes: a target (with `reenter` to start that state afresh) and what it does besides journalling. */
export type Choice = string | { target: string; reenter?: boolean; actions?: ChoiceActions };

/**
 * A question answered by choosing (promptState with its answers): each option id of a `choose` prompt, or `yes` / `no`
 * of a yes-no prompt, goes to its target, journalled as the user's confirmation first. The options are tried in the
 * order given; an answer that names none stays in the state.
 */
export function choicePrompt(
  prompt: (args: { context: RecoveryContext }) => Prompt,
  choices: Record<string, Choice>,
): StateConfig {
  const transition = (choice: Choice) => {
    const { target, reenter, actions } = typeof choice === 'string' ? { target: choice } : choice;
    const rest = actions === undefined ? [] : Array.isArray(actions) ? actions : [actions];
    return { target, ...(reenter ? { reenter } : {}), actions: ['journalConfirmation', ...rest] as ChoiceActions };
  };
  const { yes, no, ...options } = choices;
  const on: On = {};
  if (yes !== undefined) on['answer.yes'] = transition(yes) as On['answer.yes'];
  if (no !== undefined) on['answer.no'] = transition(no) as On['answer.no'];
  const chosen = Object.entries(options);
  if (chosen.length)
    on.choose = chosen.map(([option, choice]) => ({
      guard: { type: 'chose' as const, params: { option } },
      ...transition(choice),
    }));
  return promptState(prompt, { on });
}
