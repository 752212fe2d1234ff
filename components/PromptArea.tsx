import { useState } from 'react';
import { Box, Text } from 'ink';
import type { Prompt, RecoveryEvent } from '../machines/recovery-types.js';
import { ChoiceList } from './choose/ChoiceList.js';
import { RiskAcknowledge } from './confirm/RiskAcknowledge.js';
import { TypedConfirm } from './confirm/TypedConfirm.js';
import { YesNo } from './confirm/YesNo.js';

export interface PromptAreaProps {
  readonly prompt: Prompt;
  readonly send: (event: RecoveryEvent) => void;
  /** false while the help overlay owns the keyboard */
  readonly isActive: boolean;
}

/** The word typed to accept a risk or override a verdict: short, deliberate, impossible to hit by accident. */
export const ACCEPT_WORD = 'accept';
export const OVERRIDE_WORD = 'override';

/**
 * The machine's current question as the right widget. Handlers only translate an answer into the machine's event;
 * the machine's guards decide. A wrong typed address is also sent, so the machine journals the refusal and a drill
 * counts it among the mistakes the guards stopped.
 */
export function PromptArea({ prompt, send, isActive }: PromptAreaProps) {
  return (
    <Box flexDirection="column">
      {prompt.kind !== 'typed-address' && <Text bold>{prompt.question}</Text>}
      {prompt.detail && <Text>{prompt.detail}</Text>}
      <PromptWidget key={prompt.id} prompt={prompt} send={send} isActive={isActive} />
    </Box>
  );
}

function PromptWidget({ prompt, send, isActive }: PromptAreaProps) {
  const [overriding, setOverriding] = useState<string | null>(null);
  switch (prompt.kind) {
    case 'typed-address': {
      const target = prompt.target ?? '';
      return (
        <TypedConfirm
          target={target}
          action={prompt.question}
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
          onAcknowledge={(reason) => send({ type: 'acknowledge', reason } as RecoveryEvent)}
          onCancel={() => send({ type: 'answer.no' })}
        />
      );
    case 'yes-no':
      return (
        <YesNo
          question="Go ahead?"
          isActive={isActive}
          onAnswer={(yes) => send({ type: yes ? 'answer.yes' : 'answer.no' })}
        />
      );
    case 'choose': {
      const options = prompt.options ?? [];
      const recommended = prompt.recommended?.type === 'choose' ? prompt.recommended.option : undefined;
      if (overriding !== null) {
        const option = options.find((o) => o.id === overriding);
        return (
          <RiskAcknowledge
            risk={`${option?.label ?? overriding}: this goes against the tool's recommendation and is journalled with your reason.`}
            word={OVERRIDE_WORD}
            isActive={isActive}
            onAcknowledge={(reason) => send({ type: 'override', reason })}
            onCancel={() => setOverriding(null)}
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
            if (options.find((o) => o.id === id)?.needsReason) setOverriding(id);
            else send({ type: 'choose', option: id });
          }}
        />
      );
    }
  }
}
