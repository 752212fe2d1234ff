/**
 * Test helpers for Ink screens (STYLE practice 11): keys as bytes, a flush that lets Ink and React render, a
 * press that writes keys one by one, and a condition-based wait instead of sleeps. `renderSized` is a thin copy of
 * ink-testing-library's render with a terminal size of our choosing (it hard-codes 100 columns and no rows), so
 * screens are tested at 80×24 as a user would see them.
 */
import { EventEmitter } from 'node:events';
import type { ReactElement } from 'react';
import { render as inkRender } from 'ink';

export const KEYS = {
  up: '\u001B[A',
  down: '\u001B[B',
  left: '\u001B[D',
  right: '\u001B[C',
  enter: '\r',
  esc: '\u001B',
  tab: '\t',
  backspace: '\u007F',
  ctrlC: '\u0003',
} as const;

export const flush = () => new Promise<void>((resolve) => setImmediate(() => setTimeout(resolve, 0)));

export async function press(stdin: { write(s: string): void }, ...keys: string[]): Promise<void> {
  for (const k of keys) {
    stdin.write(k);
    await flush();
  }
}

/** Type a string one character at a time, as a person would. */
export const type = (stdin: { write(s: string): void }, text: string) => press(stdin, ...text.split(''));

export async function frameMatching(
  lastFrame: () => string | undefined,
  ok: (frame: string) => boolean,
  ms = 2000,
): Promise<string> {
  const end = Date.now() + ms;
  let frame = lastFrame() ?? '';
  while (!ok(frame) && Date.now() < end) {
    await flush();
    frame = lastFrame() ?? '';
  }
  if (!ok(frame)) throw new Error(`frame never matched:\n${frame}`);
  return frame;
}

/** Widest line of a frame, to prove it fits the terminal. */
export const widest = (frame: string) => Math.max(0, ...frame.split('\n').map((l) => [...l].length));

export class FakeStdout extends EventEmitter {
  readonly frames: string[] = [];
  isTTY = true;
  constructor(
    public columns: number,
    public rows: number,
  ) {
    super();
  }
  write = (frame: string) => {
    this.frames.push(frame);
    return true;
  };
  /** the last frame Ink wrote, skipping bare control writes (cursor show/hide, a lone newline at unmount) */
  lastFrame = () =>
    this.frames.findLast((f) => f.replaceAll('\u001B[?25h', '').replaceAll('\u001B[?25l', '').trim() !== '');
}

export class FakeStdin extends EventEmitter {
  isTTY = true;
  private data: string | null = null;
  write = (data: string) => {
    this.data = data;
    this.emit('readable');
    this.emit('data', data);
  };
  read = () => {
    const { data } = this;
    this.data = null;
    return data;
  };
  setEncoding() {}
  setRawMode() {}
  resume() {}
  pause() {}
  ref() {}
  unref() {}
}

export interface SizedRender {
  stdin: FakeStdin;
  stdout: FakeStdout;
  frames: string[];
  lastFrame: () => string | undefined;
  rerender: (tree: ReactElement) => void;
  unmount: () => void;
  waitUntilExit: () => Promise<unknown>;
}

/**
 * A fake terminal for code that opens its own Ink render (the starting screen, runInteractive): `streams` to pass it,
 * and the two ends a test types into and reads.
 */
export function fakeTerminal(columns = 80, rows = 24) {
  const stdin = new FakeStdin();
  const stdout = new FakeStdout(columns, rows);
  const streams = {
    stdin: stdin as unknown as NodeJS.ReadStream,
    stdout: stdout as unknown as NodeJS.WriteStream,
    stderr: new FakeStdout(columns, rows) as unknown as NodeJS.WriteStream,
    // vitest replaces the console; Ink's console patch cannot wrap it
    patchConsole: false,
  };
  return { stdin, stdout, streams };
}

const mounted: SizedRender[] = [];

/**
 * `debug: false` renders as on a real terminal: Ink erases and redraws the live region in place and writes only what
 * changed (debug mode writes every render whole).
 */
export function renderSized(tree: ReactElement, { columns = 80, rows = 24, debug = true } = {}): SizedRender {
  const stdout = new FakeStdout(columns, rows);
  const stderr = new FakeStdout(columns, rows);
  const stdin = new FakeStdin();
  const instance = inkRender(tree, {
    stdout: stdout as unknown as NodeJS.WriteStream,
    stderr: stderr as unknown as NodeJS.WriteStream,
    stdin: stdin as unknown as NodeJS.ReadStream,
    debug,
    exitOnCtrlC: false,
    patchConsole: false,
  });
  // Ink 6 creates the exit promise lazily: asked for after the app has exited, it would never settle.
  const exited = instance.waitUntilExit();
  exited.catch(() => {});
  const r: SizedRender = {
    stdin,
    stdout,
    frames: stdout.frames,
    lastFrame: stdout.lastFrame,
    rerender: instance.rerender,
    unmount: instance.unmount,
    waitUntilExit: () => exited,
  };
  mounted.push(r);
  return r;
}

/** Unmount everything renderSized mounted; call from afterEach. */
export function cleanupSized(): void {
  for (const r of mounted.splice(0)) r.unmount();
}
