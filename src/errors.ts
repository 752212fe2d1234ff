/**
 * The one kind of error that reaches the user: a sentence saying what is wrong and what to do, and the exit code
 * of PRODUCT.md §2 (1 failure, 2 usage or refusal, 3 stopped by user). Anything else that escapes is a bug and
 * is turned into a generic sentence by the entry point, never a stack trace.
 */
export class UserError extends Error {
  readonly exitCode: number;
  constructor(sentence: string, exitCode = 1) {
    super(sentence);
    this.name = 'UserError';
    this.exitCode = exitCode;
  }
}

/** A usage error (bad flags, unknown scenario, no terminal for an interactive command): exit code 2. */
export class UsageError extends UserError {
  constructor(sentence: string) {
    super(sentence, 2);
    this.name = 'UsageError';
  }
}

export const EXIT = { ok: 0, failure: 1, usage: 2, stoppedByUser: 3 } as const;
