/**
 * The journal ledger of the procedure's actions: every call is journalled before it is sent and after it is
 * answered, under an operation id that survives a restore, and an operation the journal shows as sent but never
 * answered (the process died in between) is first checked against what the node reports now; a destructive call is
 * never sent twice (SAFETY rule 6).
 */
import type { NodeResult, RpcFailure } from '../talos/types.js';
import { classifyFailure, Code, describeFailure, isRetryable, nodeDidNotAnswer } from '../talos/errors.js';
import { ledgerState, readJournal } from '../journal/journal.js';
import { persisted, type EffectDeps } from './deps.js';

/** An action's failure as the machine reads it (machines/errors.ts): a sentence, and whether to try again. */
export class ActionError extends Error {
  constructor(
    message: string,
    readonly retryable = false,
    readonly mayHaveLanded = false,
    /** the node did not answer at all (rebooting, refused, unreachable): the machine waits for it to answer again */
    readonly unanswered = false,
    /** a restore that did not finish left etcd's data directory non-empty: the node needs a new wipe and upload */
    readonly restoreFailed = false,
  ) {
    super(message);
    this.name = 'ActionError';
  }
}

/** The first line of an error's message: never a stack. */
export const messageOf = (error: unknown): string =>
  error instanceof Error ? (error.message.split('\n')[0] ?? 'failed') : String(error);

export function failureError(node: string, failure: RpcFailure, action: string): ActionError {
  return new ActionError(
    describeFailure(node, failure, action),
    isRetryable(failure),
    false,
    nodeDidNotAnswer(failure),
  );
}

/**
 * A call's failure after which the node may have acted on it: no answer came back, though the request may have
 * reached it (a deadline, a cancellation, the connection cut mid-call). A refusal is an answer; a connection refused,
 * or a node apid could not dial, never got it.
 */
export function answerLost(failure: RpcFailure): boolean {
  const kind = classifyFailure(failure);
  if (kind === 'deadline' || kind === 'canceled') return true;
  return (
    failure.code === Code.unavailable &&
    /connection dropped|econnreset|stream removed|rst_stream|goaway/i.test(failure.message)
  );
}

/**
 * A destructive call's failure as the ActionError the machine reads: one whose answer was lost is "may have landed"
 * (and retryable), so the ledger keeps it interrupted and the next attempt checks the node before sending again
 * (SAFETY rule 6); any other is a plain failure.
 */
export function destructiveFailure(node: string, failure: RpcFailure, action: string): ActionError {
  if (answerLost(failure)) return new ActionError(describeFailure(node, failure, action), true, true);
  return failureError(node, failure, action);
}

/** A destructive call's answer, or its failure as destructiveFailure reads it. */
export function unwrapDestructive<T>(result: NodeResult<T>, action: string): T {
  if (result.ok) return result.value;
  throw destructiveFailure(result.node, result.error, action);
}

/** A node's answer, or its failure as the ActionError the machine reads. */
export function unwrap<T>(result: NodeResult<T>, action: string): T {
  if (result.ok) return result.value;
  throw failureError(result.node, result.error, action);
}

export type ActionSpec<T> = ActionSpecCommon<T> &
  (
    | { destructive: false }
    | {
        destructive: true;
        /**
         * The value to go on with when the journal already holds the node's answer: a crash can land after the
         * answer was journalled but before the machine saved the step it led to, and a destructive call is never
         * sent twice (SAFETY rule 6).
         */
        answered: () => T;
      }
  );

interface ActionSpecCommon<T> {
  opId: string;
  action: string;
  node: string | null;
  /** the call itself */
  send: () => Promise<T>;
  /**
   * What the node looked like just before sending, journalled with the "before" line (no secrets). Asked only when
   * the call is about to be sent (a fresh send, or one the check of an interrupted send found never happened), so it
   * may read the node.
   */
  witness?: () => Record<string, unknown> | Promise<Record<string, unknown>>;
  /**
   * For an interrupted operation: what the node shows now, compared with the witness journalled before it was sent.
   * Return a value when it happened, null to send again.
   */
  reconcile?: (witness: Record<string, unknown> | null) => Promise<T | null>;
  describe?: (value: T) => string;
}

/** The data journalled with the newest "before" line of an operation (its witness), or null. */
export function witnessOf(deps: EffectDeps, opId: string): Record<string, unknown> | null {
  const sent = [...readJournal(deps.incident.dir)]
    .reverse()
    .find((r) => r.kind === 'action' && r.opId === opId && r.phase === 'before' && r.data);
  return sent?.data ?? null;
}

/** How many times the journal shows an operation as sent (its "before" lines). */
export function timesSent(deps: EffectDeps, opId: string): number {
  return readJournal(deps.incident.dir).filter((r) => r.kind === 'action' && r.opId === opId && r.phase === 'before')
    .length;
}

/** Journals before and after, and never re-sends an operation the journal shows as sent without checking first. */
export async function ledgered<T>(deps: EffectDeps, spec: ActionSpec<T>): Promise<T> {
  await persisted(deps);
  const records = readJournal(deps.incident.dir);
  const state = ledgerState(records, spec.opId);
  if (state === 'done' && spec.destructive) {
    deps.journal.append({
      kind: 'observation',
      node: spec.node,
      what: `${spec.action}: the journal shows the node already answered it`,
      result: 'not sent again',
      data: { opId: spec.opId },
    });
    return spec.answered();
  }
  if (state === 'interrupted' && spec.reconcile) {
    const sent = [...records]
      .reverse()
      .find((r) => r.kind === 'action' && r.opId === spec.opId && r.phase === 'before');
    const found = await spec.reconcile(sent?.data ?? null);
    deps.journal.append({
      kind: 'action',
      phase: 'after',
      opId: spec.opId,
      node: spec.node,
      what: `${spec.action} (interrupted earlier; checked live state)`,
      ok: found !== null,
      result:
        found !== null ? 'the node shows it happened: not sent again' : 'the node shows it did not happen: sending it',
    });
    if (found !== null) return found;
  }
  // Recorded just before sending: a resume after a crash compares the node with it.
  const witness = spec.witness ? await spec.witness() : null;
  // The run stopped (the user stopped it, a drill's time limit, SIGINT) while this effect was on its way: nothing is
  // sent after that, however long the witness took to read (the boot id before a Reset may take BOOT_ID_READ_MS).
  if (deps.signal?.aborted) {
    deps.journal.append({
      kind: 'observation',
      node: spec.node,
      what: `${spec.action}: not sent, the run had stopped`,
      result: 'not sent',
      data: { opId: spec.opId },
    });
    throw new ActionError(`${spec.action}${spec.node ? ` on ${spec.node}` : ''}: not sent, the run had stopped.`);
  }
  deps.journal.append({
    kind: 'action',
    phase: 'before',
    opId: spec.opId,
    node: spec.node,
    what: spec.action,
    by: deps.operator,
    ...(witness ? { data: witness } : {}),
  });
  try {
    const value = await spec.send();
    if (spec.destructive) await deps.afterDestructive?.();
    deps.journal.append({
      kind: 'action',
      phase: 'after',
      opId: spec.opId,
      node: spec.node,
      what: spec.action,
      ok: true,
      result: spec.describe ? spec.describe(value) : 'ok',
    });
    return value;
  } catch (error) {
    if (spec.destructive) await deps.afterDestructive?.().catch(() => undefined);
    const e = error instanceof ActionError ? error : new ActionError(messageOf(error), false, spec.destructive);
    deps.journal.append({
      kind: 'action',
      phase: 'after',
      opId: spec.opId,
      node: spec.node,
      what: spec.action,
      ok: false,
      result: e.message,
      // a call whose answer was lost stays "interrupted" in the ledger: the next attempt checks before sending
      ...(e.mayHaveLanded ? { data: { mayHaveLanded: true } } : {}),
    });
    if (e.mayHaveLanded)
      deps.journal.append({
        kind: 'action',
        phase: 'before',
        opId: spec.opId,
        node: spec.node,
        what: `${spec.action} (answer lost)`,
        // the witness goes with it: a later check compares the node with the moment it was first sent
        ...(witness ? { data: witness } : {}),
      });
    throw e;
  }
}
