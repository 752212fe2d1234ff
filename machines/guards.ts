/**
 * SAFETY.md's rules as plain functions of the machine's context and the user's event. Each returns null when the
 * action is allowed, or the sentence the user sees when it is refused. The machine's named guards call these, and the
 * refusal action records which rule stopped what (a drill counts these as mistakes the guards stopped).
 */
import type { RecoveryContext, RecoveryEvent } from './recovery-types.js';
import { AFTER_RESTORE_RULES } from './after-restore/rules.js';
import { NOSPACE_RULES } from './nospace/rules.js';
import { PLANNED_SWAP_RULES, REPLACE_MEMBER_RULES } from './replace-member/rules.js';

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

/**
 * Rule 1: the file uploaded, and the file every wipe relies on, is the one verified: checked again right before (its
 * sha256 computed anew). Judged on the check's answer: the sha256 it read, or its failure (the file cannot be read).
 */
export const snapshotUnchanged: Rule = (context, event) => {
  const file = context.snapshot?.file ?? 'the snapshot file';
  const answer = event as { output?: { sha256?: unknown }; error?: unknown };
  const seen = typeof answer.output?.sha256 === 'string' ? answer.output.sha256 : null;
  if (seen !== null && seen === context.snapshot?.sha256) return null;
  if (seen !== null)
    return `${file} changed since it was verified (sha256 ${seen.slice(0, 12)}…, verified ${(context.snapshot?.sha256 ?? '').slice(0, 12)}…): nothing more is wiped or uploaded until the verified file is back.`;
  const why = answer.error instanceof Error ? answer.error.message : `${file} cannot be read any more.`;
  return `${why.replace(/\.$/, '')}: nothing more is wiped or uploaded until the verified file is back.`;
};

const RECOVERY_RULES = {
  addressMatches,
  snapshotVerified,
  sourceKeptUntilVerified,
  quorumLostOrOverridden,
  bootstrapNotSent,
  skipHashCheckAcknowledged,
  snapshotUsable,
  reasonGiven,
  snapshotUnchanged,
} as const;

/** Every procedure's rules under one name each, so `refuse` and the drill score can name any of them. */
export const RULES = {
  ...RECOVERY_RULES,
  ...REPLACE_MEMBER_RULES,
  ...PLANNED_SWAP_RULES,
  ...NOSPACE_RULES,
  ...AFTER_RESTORE_RULES,
} as const;
export type RuleName = keyof typeof RULES;

/**
 * The SAFETY.md rule each guard enforces, so every refusal's journal text names it the same way: "… (SAFETY rule N)."
 * (the screen leaves the citation out: components/selectors.ts userText). An override's reason serves rule 4 (a full
 * recovery against the verdict) or rule 14 (a node left out); SAFETY.md numbers no rule for the NOSPACE playbook's
 * and the kubelet restarts' guards yet (null: their sentences stand alone). A rule added without an entry here does
 * not compile.
 */
export const RULE_CITATION: Record<RuleName, number | ((context: RecoveryContext) => number) | null> = {
  addressMatches: 3,
  snapshotVerified: 2,
  sourceKeptUntilVerified: 3,
  quorumLostOrOverridden: 4,
  bootstrapNotSent: 6,
  skipHashCheckAcknowledged: 7,
  snapshotUsable: 8,
  reasonGiven: (context) =>
    /^(unanswered|leave-out|preparing-timeout)/.test((context.prompt ?? context.lastPrompt)?.id ?? '') ? 14 : 4,
  snapshotUnchanged: 1,
  removalThroughOtherHealthyNode: 12,
  notLastMember: 12,
  notTwoMemberCluster: 12,
  removalKeepsQuorum: 12,
  brokenMemberOnly: 12,
  noLearnerPending: 12,
  // a planned swap's leave: rule 3 for the node typed, rule 12 (membership changes) for the others
  leaveOnTypedNode: 3,
  leaveNeedsThreeMembers: 12,
  leaveKeepsQuorum: 12,
  leaveNoLearnerPending: 12,
  nospaceQuorumHolds: null,
  oneDefragAtATime: null,
  leaderDefragmentedLast: null,
  defragmentedBeforeDisarm: null,
  kubeletRestartAllowed: null,
};

const CITED = /\s*\(SAFETY rule \d+\)/g;

/** A rule's sentence with its citation, once, at its end: "… (SAFETY rule N)." */
export function cited(rule: RuleName, context: RecoveryContext, message: string): string {
  const entry = RULE_CITATION[rule];
  const n = typeof entry === 'function' ? entry(context) : entry;
  const bare = message.replace(CITED, '').trim();
  if (n === null) return bare;
  return `${bare.replace(/[.:;]$/, '')} (SAFETY rule ${n}).`;
}

/** The first rule that refuses, with its name and its sentence citing its SAFETY.md rule, or null when all allow it. */
export function firstRefusal(
  names: readonly RuleName[],
  context: RecoveryContext,
  event: RecoveryEvent,
  target: string | null,
): { rule: RuleName; message: string } | null {
  for (const rule of names) {
    const message = RULES[rule](context, event, target);
    if (message !== null) return { rule, message: cited(rule, context, message) };
  }
  return null;
}
