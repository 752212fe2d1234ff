/**
 * A choice that needs a line of text (an option with `ask`, e.g. step 10's "type the workers' addresses" when
 * discovery names no workers) opens a text field with that label, and Enter sends the choice with the text typed.
 * Before, only the snapshot-file option opened a field: choosing "type" sent no addresses at all.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { cleanup, render } from 'ink-testing-library';
import { PromptArea } from '../../components/PromptArea.js';
import type { Prompt, RecoveryEvent } from '../../machines/recovery-types.js';
import { KEYS, flush, frameMatching, press, type } from './helpers.js';

afterEach(cleanup);

const prompt: Prompt = {
  id: 'after-restore:workers',
  kind: 'choose',
  question: "The workers could not be found. Type the workers' addresses?",
  detail: 'Discovery named no workers.',
  options: [
    { id: 'type', label: "type the workers' addresses", ask: "Workers' addresses (commas or spaces)" },
    { id: 'control-plane-only', label: 'control-plane nodes only' },
  ],
  recommended: { type: 'choose', option: 'control-plane-only' },
};

describe('a choice that asks for a line of text', () => {
  it("opens a field labelled with the option's ask and sends the typed text with the choice", async () => {
    const sent: RecoveryEvent[] = [];
    const send = vi.fn((e: RecoveryEvent) => void sent.push(e));
    const { stdin, lastFrame } = render(
      <PromptArea
        prompt={prompt}
        send={send}
        accepts={(e) => e.type === 'choose'}
        canGoBack={false}
        yesNoDefault={null}
        isActive
      />,
    );
    await frameMatching(lastFrame, (f) => f.includes("type the workers' addresses"));
    await press(stdin, KEYS.up, KEYS.enter);
    await frameMatching(lastFrame, (f) => f.includes("Workers' addresses (commas or spaces)"));
    expect(send).not.toHaveBeenCalled();
    await flush(); // the field takes the keys once it has mounted, as a person's first key would come later
    await type(stdin, '127.0.0.9, 127.0.0.10');
    await press(stdin, KEYS.enter);
    await vi.waitFor(() => expect(sent).toEqual([{ type: 'choose', option: 'type', path: '127.0.0.9, 127.0.0.10' }]));
  });
});
