import { useLayoutEffect, useState } from 'react';
import { Box, Text } from 'ink';
import type { Prompt, RecoveryEvent } from '../machines/recovery-types.js';
import { ChoiceList } from './choose/ChoiceList.js';
import { RiskAcknowledge } from './confirm/RiskAcknowledge.js';
import { TypedConfirm } from './confirm/TypedConfirm.js';
import { TextAnswer } from './confirm/TextAnswer.js';
import { YesNo } from './confirm/YesNo.js';
import { eventForChoice, eventForYesNo, type Accepts } from './answer-events.js';

export interface PromptAreaProps {
  readonly prompt: Prompt;
  readonly send: (event: RecoveryEvent) => void;
  /** whether the machine accepts an event in its current state (snapshot.can) */
  readonly accepts: Accepts;
  /** false while the help overlay owns the keyboard */
  readonly isActive: boolean;
  /** told when the user starts or stops typing free text, so screen-wide letter keys (q, ?) step aside */
  readonly onTyping?: (typing: boolean) => void;
}

/** The word typed to accept a risk or override a verdict: short, deliberate, impossible to hit by accident. */
export const ACCEPT_WORD = 'accept';
export const OVERRIDE_WORD = 'override';

/**
 * The machine's current question as the right widget. Handlers only translate an answer into the machine's event;
 * the machine's guards decide. A wrong typed address is also sent, so the machine journals the refusal and a drill
 * counts it among the mistakes the guards stopped.
 */
export function PromptArea({ prompt, send, accepts, isActive, onTyping }: PromptAreaProps) {
  return (
    <Box flexDirection="column">
      {prompt.kind !== 'typed-address' && <Text bold>{prompt.question}</Text>}
      {prompt.kind !== 'typed-address' && prompt.detail && <Text>{prompt.detail}</Text>}
      <PromptWidget
        key={prompt.id}
        prompt={prompt}
        send={send}
        accepts={accepts}
        isActive={isActive}
        {...(onTyping ? { onTyping } : {})}
      />
    </Box>
  );
}

function PromptWidget({ prompt, send, accepts, isActive, onTyping }: PromptAreaProps) {
  // a choice that needs more from the user: a reason (override) or a path (another snapshot file)
  const [pending, setPending] = useState<{ id: string; needs: 'reason' | 'path' } | null>(null);
  const typing = prompt.kind === 'typed-address' || prompt.kind === 'acknowledge' || pending !== null;
  // A layout effect: the screen-wide keys must step aside in the same commit that shows the text field.
  useLayoutEffect(() => {
    onTyping?.(typing);
    return () => onTyping?.(false);
  }, [typing]);
  const sendIfAccepted = (event: RecoveryEvent | null) => {
    if (event) send(event);
  };
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
          onCancel={() => send({ type: 'answer.no' })}
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
          onCancel={() => send({ type: 'answer.no' })}
        />
      );
    case 'yes-no':
      return (
        <YesNo
          question="Go ahead?"
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
            label="Snapshot file"
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
            if (options.find((o) => o.id === id)?.needsReason) setPending({ id, needs: 'reason' });
            else if (id === 'file') setPending({ id, needs: 'path' });
            else sendIfAccepted(eventForChoice(id, accepts));
          }}
        />
      );
    }
  }
}
