/** A simulator start that cannot go ahead: the message is the one sentence the user sees. */
export class SimStartError extends Error {
  constructor(
    message: string,
    readonly kind: 'usage' | 'failure' = 'failure',
  ) {
    super(message);
  }
}
