import { afterEach, describe, expect, it, vi } from 'vitest';
import { render, cleanup } from 'ink-testing-library';
import { TypedConfirm } from '../../components/confirm/TypedConfirm.js';
import { RiskAcknowledge } from '../../components/confirm/RiskAcknowledge.js';
import { YesNo } from '../../components/confirm/YesNo.js';
import { typedConfirmReducer, initialTypedConfirmState } from '../../components/confirm/use-typed-confirm-state.js';
import { KEYS, frameMatching, press, type } from './helpers.js';

afterEach(cleanup);

describe('TypedConfirm (destructive)', () => {
  const mount = () => {
    const onConfirm = vi.fn();
    const onCancel = vi.fn();
    const onRefused = vi.fn();
    const r = render(
      <TypedConfirm
        target="127.0.0.3"
        question="Wipe 127.0.0.3 (EPHEMERAL) and reboot it?"
        onConfirm={onConfirm}
        onCancel={onCancel}
        onRefused={onRefused}
      />,
    );
    return { ...r, onConfirm, onCancel, onRefused };
  };

  it('names the node and the action', () => {
    const { lastFrame } = mount();
    expect(lastFrame()).toContain('Destructive: Wipe 127.0.0.3 (EPHEMERAL) and reboot it?');
    expect(lastFrame()).toContain('Type 127.0.0.3 to confirm:');
  });

  it('refuses a wrong address with a message naming the right one, and does not confirm', async () => {
    const { stdin, lastFrame, onConfirm, onRefused } = mount();
    await type(stdin, '127.0.0.2');
    await press(stdin, KEYS.enter);
    const f = await frameMatching(lastFrame, (x) => x.includes('is not the target node'));
    expect(f).toContain('"127.0.0.2" is not the target node; type 127.0.0.3 exactly to confirm');
    expect(onConfirm).not.toHaveBeenCalled();
    await vi.waitFor(() => expect(onRefused).toHaveBeenCalledWith('127.0.0.2'));
  });

  it('refuses a prefix of the address (127.0.0.3 is not 127.0.0.30 and vice versa)', async () => {
    const { stdin, onConfirm, lastFrame } = mount();
    await type(stdin, '127.0.0.30');
    await press(stdin, KEYS.enter);
    await frameMatching(lastFrame, (x) => x.includes('"127.0.0.30" is not the target node'));
    await type(stdin, '127.0.0.');
    await press(stdin, KEYS.enter);
    await frameMatching(lastFrame, (x) => x.includes('"127.0.0." is not the target node'));
    expect(onConfirm).not.toHaveBeenCalled();
  });

  it('confirms once when the exact address is typed, after a correction with backspace', async () => {
    const { stdin, onConfirm, lastFrame } = mount();
    await type(stdin, '127.0.0.4');
    await press(stdin, KEYS.backspace);
    await type(stdin, '3');
    await frameMatching(lastFrame, (x) => x.includes('to confirm: 127.0.0.3'));
    await press(stdin, KEYS.enter);
    await vi.waitFor(() => expect(onConfirm).toHaveBeenCalledTimes(1));
    await press(stdin, KEYS.enter);
    expect(onConfirm).toHaveBeenCalledTimes(1);
  });

  it('a pasted address that ends in a newline keeps its Enter, as if typed', async () => {
    const { stdin, onConfirm } = mount();
    await press(stdin, '127.0.0.3\n');
    await vi.waitFor(() => expect(onConfirm).toHaveBeenCalledTimes(1));
  });

  it('a pasted wrong address with its newline is refused like a typed one', async () => {
    const { stdin, onConfirm, lastFrame } = mount();
    await press(stdin, '127.0.0.4\r\n');
    await frameMatching(lastFrame, (x) => x.includes('"127.0.0.4" is not the target node'));
    expect(onConfirm).not.toHaveBeenCalled();
  });

  it('goes back with Esc', async () => {
    const { stdin, onCancel, onConfirm } = mount();
    await press(stdin, KEYS.esc);
    await vi.waitFor(() => expect(onCancel).toHaveBeenCalled());
    expect(onConfirm).not.toHaveBeenCalled();
  });

  it('reducer: an empty answer is not counted as a mistake', () => {
    const s = typedConfirmReducer(initialTypedConfirmState, { type: 'submit', expected: '10.0.0.1' });
    expect(s.confirmed).toBe(false);
    expect(s.refusals).toBe(0);
    expect(s.error).toContain('Type the node');
  });
});

describe('RiskAcknowledge', () => {
  const mount = () => {
    const onAcknowledge = vi.fn();
    const onCancel = vi.fn();
    const r = render(
      <RiskAcknowledge
        risk="this is a raw copy without an integrity trailer; writes after the copy point may be missing."
        word="accept"
        onAcknowledge={onAcknowledge}
        onCancel={onCancel}
      />,
    );
    return { ...r, onAcknowledge, onCancel };
  };

  it('needs the exact word, then a reason, and hands the reason over', async () => {
    const { stdin, lastFrame, onAcknowledge } = mount();
    await type(stdin, 'yes');
    await press(stdin, KEYS.enter);
    await frameMatching(lastFrame, (f) => f.includes('Type accept to acknowledge the risk'));
    await type(stdin, 'accept');
    await press(stdin, KEYS.enter);
    await frameMatching(lastFrame, (f) => f.includes('Reason (journalled):'));
    await press(stdin, KEYS.enter);
    await frameMatching(lastFrame, (f) => f.includes('Write the reason in a few words'));
    expect(onAcknowledge).not.toHaveBeenCalled();
    await type(stdin, 'snapshot API fails on every node');
    await press(stdin, KEYS.enter);
    await vi.waitFor(() => expect(onAcknowledge).toHaveBeenCalledWith('snapshot API fails on every node'));
  });

  it('goes back with Esc', async () => {
    const { stdin, onCancel, onAcknowledge } = mount();
    await press(stdin, KEYS.esc);
    await vi.waitFor(() => expect(onCancel).toHaveBeenCalled());
    expect(onAcknowledge).not.toHaveBeenCalled();
  });
});

describe('YesNo', () => {
  it('a bare Enter answers nothing where there is no default, and says which keys do', async () => {
    const onAnswer = vi.fn();
    const { stdin, lastFrame } = render(<YesNo question="Back up the machine configs now?" onAnswer={onAnswer} />);
    expect(lastFrame()).toBe('Back up the machine configs now? [y/n]');
    await press(stdin, KEYS.enter);
    expect(onAnswer).not.toHaveBeenCalled();
    expect(lastFrame()).toContain('Press y for yes or n for no.');
    await press(stdin, 'n');
    expect(onAnswer).toHaveBeenCalledWith(false);
  });

  it('a bare Enter takes the default shown in capitals', async () => {
    const onAnswer = vi.fn();
    const { stdin, lastFrame } = render(<YesNo question="Try again?" defaultAnswer="yes" onAnswer={onAnswer} />);
    expect(lastFrame()).toBe('Try again? [Y/n]');
    await press(stdin, KEYS.enter);
    expect(onAnswer).toHaveBeenCalledWith(true);
  });

  it('answers Yes only on y, and ignores other keys', async () => {
    const onAnswer = vi.fn();
    const { stdin } = render(<YesNo question="Continue?" onAnswer={onAnswer} />);
    await press(stdin, 'x', ' ', KEYS.up);
    expect(onAnswer).not.toHaveBeenCalled();
    await press(stdin, 'y');
    expect(onAnswer).toHaveBeenCalledWith(true);
  });

  it('listens to nothing when inactive', async () => {
    const onAnswer = vi.fn();
    const { stdin } = render(<YesNo question="Continue?" onAnswer={onAnswer} isActive={false} />);
    await press(stdin, 'y', KEYS.enter);
    expect(onAnswer).not.toHaveBeenCalled();
  });
});

describe('a refusal that wraps', () => {
  it('wraps at words: the continuation line starts with a word, not the space it broke at', async () => {
    const r = render(
      <TypedConfirm
        target="127.139.39.3"
        question="Wipe 127.139.39.3 (EPHEMERAL) and reboot it?"
        onConfirm={vi.fn()}
        onCancel={vi.fn()}
      />,
    );
    await type(r.stdin, '127.0.0.250');
    await press(r.stdin, KEYS.enter);
    const f = await frameMatching(r.lastFrame, (x) => x.includes('is not the target node'));
    const lines = f.split('\n');
    const at = lines.findIndex((l) => l.startsWith('✗ "127.0.0.250" is not the target node'));
    expect(at).toBeGreaterThanOrEqual(0);
    // the sentence is longer than the 80 columns, so it goes on below, from a word
    expect(lines[at + 1]).toMatch(/^\S/);
    expect(lines.slice(at, at + 2).join(' ')).toContain('or Esc to go back.');
  });
});
