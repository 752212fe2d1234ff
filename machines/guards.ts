/**
 * SAFETY.md's rules as plain functions of the machine's context and the user's event. Each returns null when the
 * action is allowed, or the sentence the user sees when it is refused. The machine's named guards call these, and the
 * refusal action records which rule stopped what (a drill counts these as mistakes the guards stopped).
 */
import type { RecoveryContext, RecoveryEvent } from './recovery-types.js';
import { AFTER_RESTORE_RULES } from './after-restore/rules.js';
import { NOSPACE_RULES } from './nospace/rules.js';
import { REPLACE_MEMBER_RULES } from './replace-member/rules.js';

export type Rule = (context: RecoveryContext, event: RecoveryEvent, target: string | null) => string | null;

const typed = (event: RecoveryEvent): string | null => (event.type === 'confirm' ? event.address.trim() : null);

/** Rule 3: every destructive request names exactly one node, typed by the user. */
export const addressMatches: Rule = (_c, event, target) => {
  const address = typed(event);
  if (target === null) return 'There is no node to act on right now.';
  if (address === target) return null;
  return `You typed "${address ?? ''}", but this step acts on ${target}; type ${target} exactly to confirm.`;
};

/** Rule 2: nothing is wiped before a verified snapshot exists on local disk. */
export const snapshotVerified: Rule = (context) => {
  const s = context.snapshot;
  if (s && s.usable && s.structure === 'ok' && s.integrity !== 'mismatch' && s.sha256) return null;
  return 'No verified snapshot is on local disk yet: nothing is wiped before one is (SAFETY rule 2).';
};

/**
 * Rule 3: the snapshot's source node and the last node whose etcd still holds data keep their data until the
 * snapshot is verified.
 */
export const sourceKeptUntilVerified: Rule = (context, event, target) => {
  if (snapshotVerified(context, event, target) === null) return null;
  const holders = context.observations.filter(
    (o) => !o.maintenance && o.reachable && !context.wiped.includes(o.node) && o.machineType !== 'worker',
  );
  if (target !== null && target === context.verdict?.freshest)
    return `${target} is the snapshot source: it keeps its data until the snapshot is verified (SAFETY rule 3).`;
  if (holders.length <= 1 && holders[0]?.node === target)
    return `${target} is the last node whose etcd still holds data: it keeps it until the snapshot is verified (SAFETY rule 3).`;
  return null;
};

/** Rule 4: a full recovery only when quorum is lost from every node's view, or with an explicit, journalled override. */
export const quorumLostOrOverridden: Rule = (context) => {
  if (context.verdict?.verdict === 'lost') return null;
  if (context.overrides.some((o) => o.what === 'full recovery')) return null;
  return `Quorum is not known to be lost (${context.verdict?.verdict ?? 'not assessed'}): a full recovery needs an explicit override with a reason (SAFETY rule 4).`;
};

/** Rule 6: Bootstrap is never sent twice while a restore may run. */
export const bootstrapNotSent: Rule = (context) =>
  context.bootstrap.bootstrapSent
    ? `Bootstrap was already sent to ${context.bootstrap.node ?? 'a node'}: a restore may be running there, so it is not sent again (SAFETY rule 6).`
    : null;

/** Rule 7: skip-hash-check only for a raw copy whose bbolt check passed, and only after the acknowledgement. */
export const skipHashCheckAcknowledged: Rule = (context) => {
  const s = context.snapshot;
  if (!s || !s.needsSkipHashCheck) return null;
  if (s.integrity !== 'absent' || s.structure !== 'ok')
    return 'Only a raw copy whose bbolt check passed may be restored with skip-hash-check (SAFETY rule 7).';
  return context.skipHashCheckAcknowledged
    ? null
    : 'This raw copy needs skip-hash-check: acknowledge first that writes after the copy point may be missing (SAFETY rule 7).';
};

/** Rule 8: never upload a file that is not a plain, usable etcd snapshot. */
export const snapshotUsable: Rule = (context) => {
  const s = context.snapshot;
  if (s && s.usable && s.kind === 'bbolt') return null;
  return s
    ? `${s.file} is not a usable etcd snapshot (${s.problems[0] ?? s.kind}); it is not uploaded (SAFETY rule 8).`
    : 'There is no snapshot to upload.';
};

/** An override needs a reason, which is journalled. */
export const reasonGiven: Rule = (_c, event) =>
  event.type === 'override' && event.reason.trim().length >= 3
    ? null
    : 'An override needs a reason (a few words), which is written to the journal.';

const RECOVERY_RULES = {
  addressMatches,
  snapshotVerified,
  sourceKeptUntilVerified,
  quorumLostOrOverridden,
  bootstrapNotSent,
  skipHashCheckAcknowledged,
  snapshotUsable,
  reasonGiven,
} as const;

/** Every procedure's rules under one name each, so `refuse` and the drill score can name any of them. */
export const RULES = { ...RECOVERY_RULES, ...REPLACE_MEMBER_RULES, ...NOSPACE_RULES, ...AFTER_RESTORE_RULES } as const;
export type RuleName = keyof typeof RULES;

/** The first rule that refuses, with its name and sentence, or null when all allow it. */
export function firstRefusal(
  names: readonly RuleName[],
  context: RecoveryContext,
  event: RecoveryEvent,
  target: string | null,
): { rule: RuleName; message: string } | null {
  for (const rule of names) {
    const message = RULES[rule](context, event, target);
    if (message !== null) return { rule, message };
  }
  return null;
}
