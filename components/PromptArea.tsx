import { useLayoutEffect, useState } from 'react';
import { Box } from 'ink';
import { Paragraph } from './Paragraph.js';
import type { Prompt, RecoveryEvent } from '../machines/recovery-types.js';
import { ChoiceList } from './choose/ChoiceList.js';
import { RiskAcknowledge } from './confirm/RiskAcknowledge.js';
import { TypedConfirm } from './confirm/TypedConfirm.js';
import { TextAnswer } from './confirm/TextAnswer.js';
import { YesNo } from './confirm/YesNo.js';
import { eventForChoice, eventForYesNo, type Accepts } from './answer-events.js';
import { acknowledgeKeys, CHOOSE_KEYS, PATH_KEYS, typedAddressKeys, yesNoKeys } from './keymap.js';
import type { KeyHint } from './view-model.js';

/** What the prompt's widget needs of the keyboard now: whether letters are text, and which keys work. */
export interface PromptMode {
  readonly typing: boolean;
  readonly keys: readonly KeyHint[];
}

export interface PromptAreaProps {
  readonly prompt: Prompt;
  readonly send: (event: RecoveryEvent) => void;
  /** whether the machine accepts an event in its current state (snapshot.can); asked when a key is pressed */
  readonly accepts: Accepts;
  /** whether the machine takes a way back from this prompt now (Esc at a typed confirmation or a risk) */
  readonly canGoBack: boolean;
  /** the machine's "back" from this prompt stops the run (resumable) instead of going back to a choice: Esc says so */
  readonly backStops?: boolean;
  /** what Enter answers at a yes/no question; null: Enter answers nothing */
  readonly yesNoDefault: 'yes' | 'no' | null;
  /** false while the help overlay owns the keyboard */
  readonly isActive: boolean;
  /** told which keys work now and whether the user types free text (screen-wide letter keys then step aside) */
  readonly onMode?: (mode: PromptMode) => void;
}

/** The word typed to accept a risk or override a verdict: short, deliberate, impossible to hit by accident. */
export const ACCEPT_WORD = 'accept';
export const OVERRIDE_WORD = 'override';

/** The event the machine takes as "back" from a typed confirmation or a risk: the same "no" it takes elsewhere. */
export const BACK_EVENT: RecoveryEvent = { type: 'answer.no' };

/**
 * The machine's current question as the right widget. Handlers only translate an answer into the machine's event;
 * the machine's guards decide. A wrong typed address is also sent, so the machine journals the refusal and a drill
 * counts it among the mistakes the guards stopped.
 */
export function PromptArea(props: PromptAreaProps) {
  const { prompt } = props;
  return (
    <Box flexDirection="column">
      {prompt.kind !== 'typed-address' && <Paragraph bold>{prompt.question}</Paragraph>}
      {prompt.kind !== 'typed-address' && prompt.detail && <Paragraph>{prompt.detail}</Paragraph>}
      <PromptWidget key={prompt.id} {...props} />
    </Box>
  );
}

function modeFor(
  prompt: Prompt,
  pending: 'reason' | 'path' | null,
  canGoBack: boolean,
  backStops: boolean,
  yesNoDefault: PromptAreaProps['yesNoDefault'],
): PromptMode {
  if (pending === 'path') return { typing: true, keys: PATH_KEYS };
  if (pending === 'reason') return { typing: true, keys: acknowledgeKeys(true) };
  switch (prompt.kind) {
    case 'typed-address':
      return { typing: true, keys: typedAddressKeys(canGoBack, backStops) };
    case 'acknowledge':
      return { typing: true, keys: acknowledgeKeys(canGoBack, backStops) };
    case 'yes-no':
      return { typing: false, keys: yesNoKeys(yesNoDefault) };
    case 'choose':
      return { typing: false, keys: CHOOSE_KEYS };
  }
}

function PromptWidget({
  prompt,
  send,
  accepts,
  canGoBack,
  backStops = false,
  yesNoDefault,
  isActive,
  onMode,
}: PromptAreaProps) {
  // a choice that needs more from the user: a reason (override) or a path (another snapshot file)
  const [pending, setPending] = useState<{ id: string; needs: 'reason' | 'path' } | null>(null);
  const mode = modeFor(prompt, pending?.needs ?? null, canGoBack, backStops, yesNoDefault);
  const modeKey = `${mode.typing}:${mode.keys.map((k) => k.key).join(' ')}`;
  // A layout effect: the screen-wide keys must step aside in the same commit that shows the text field.
  useLayoutEffect(() => {
    onMode?.(mode);
    // eslint-disable-next-line react-hooks/exhaustive-deps -- told again only when what it says changes
  }, [modeKey]);
  useLayoutEffect(() => () => onMode?.({ typing: false, keys: [] }), [onMode]);
  const sendIfAccepted = (event: RecoveryEvent | null) => {
    if (event) send(event);
  };
  const back = canGoBack ? () => send(BACK_EVENT) : undefined;
  switch (prompt.kind) {
    case 'typed-address': {
      const target = prompt.target ?? '';
      return (
        <TypedConfirm
          target={target}
          question={prompt.question}
          detail={prompt.detail}
          isActive={isActive}
          onConfirm={() => send({ type: 'confirm', address: target })}
          onRefused={(typed) => send({ type: 'confirm', address: typed })}
          {...(back ? { onCancel: back, cancelStops: backStops } : {})}
        />
      );
    }
    case 'acknowledge':
      return (
        <RiskAcknowledge
          risk={prompt.risk ?? prompt.question}
          word={ACCEPT_WORD}
          isActive={isActive}
          // the machine journals the reason with the decision
          onAcknowledge={(reason) => send({ type: 'acknowledge', reason })}
          {...(back ? { onCancel: back, cancelStops: backStops } : {})}
        />
      );
    case 'yes-no':
      return (
        <YesNo
          question="Go ahead?"
          defaultAnswer={yesNoDefault}
          isActive={isActive}
          onAnswer={(yes) => sendIfAccepted(eventForYesNo(yes, accepts))}
        />
      );
    case 'choose': {
      const options = prompt.options ?? [];
      const recommended = prompt.recommended?.type === 'choose' ? prompt.recommended.option : undefined;
      if (pending?.needs === 'path')
        return (
          <TextAnswer
            label={options.find((o) => o.id === pending.id)?.ask ?? 'Snapshot file'}
            isActive={isActive}
            onSubmit={(path) => sendIfAccepted(eventForChoice(pending.id, accepts, path))}
            onCancel={() => setPending(null)}
          />
        );
      if (pending?.needs === 'reason') {
        const option = options.find((o) => o.id === pending.id);
        return (
          <RiskAcknowledge
            risk={`${option?.label ?? pending.id}: this goes against the tool's recommendation and is journalled with your reason.`}
            word={OVERRIDE_WORD}
            isActive={isActive}
            onAcknowledge={(reason) => send({ type: 'override', reason })}
            onCancel={() => setPending(null)}
          />
        );
      }
      return (
        <ChoiceList
          options={options}
          initialIndex={Math.max(
            0,
            options.findIndex((o) => o.id === recommended),
          )}
          {...(recommended ? { recommendedId: recommended } : {})}
          isActive={isActive}
          onChoose={(id) => {
            const option = options.find((o) => o.id === id);
            if (option?.needsReason) setPending({ id, needs: 'reason' });
            else if (id === 'file' || option?.ask) setPending({ id, needs: 'path' });
            else sendIfAccepted(eventForChoice(id, accepts));
          }}
        />
      );
    }
  }
}
