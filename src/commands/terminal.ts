/**
 * Whether an interactive command has a terminal, kept free of imports so that a command can decide before it loads
 * anything heavy (its first frame is drawn before the client and the simulator load).
 */
import { UsageError } from '../errors.js';
import type { CommandContext } from './types.js';

/** An interactive command needs a terminal on both ends and no CI (Ink renders nothing useful there). */
export function hasTerminal(ctx: Pick<CommandContext, 'io'>): boolean {
  const ci = ctx.io.env.CI ?? ctx.io.env.CONTINUOUS_INTEGRATION;
  const inCi = ci !== undefined && ci !== '0' && ci !== 'false';
  return ctx.io.stdinIsTTY && Boolean(ctx.io.stdout.isTTY) && !inCi;
}

export function refuseWithoutTerminal(ctx: Pick<CommandContext, 'io'>, command: string, alternative: string): void {
  if (!hasTerminal(ctx))
    throw new UsageError(`"${command}" is interactive and needs a terminal; without one, use ${alternative}.`);
}
