import type { Writable } from 'node:stream';

import type { GlobalFlags } from '../talos/global-flags.js';

export type { GlobalFlags } from '../talos/global-flags.js';

export interface CommandIO {
  stdout: Writable & { isTTY?: boolean; columns?: number; rows?: number };
  stderr: Writable & { isTTY?: boolean };
  stdinIsTTY: boolean;
  env: NodeJS.ProcessEnv;
  cwd: string;
}

export interface CommandContext {
  /** Arguments after the command name, global flags already removed. */
  args: string[];
  global: GlobalFlags;
  io: CommandIO;
  /** Aborted on SIGINT/SIGTERM: every long-running command must stop cleanly and leave no half-written file. */
  signal: AbortSignal;
}

/** Every command module default-exports one of these; it returns the exit code. Failures throw UserError. */
export type CommandRun = (ctx: CommandContext) => Promise<number>;
