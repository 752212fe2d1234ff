/**
 * The NOSPACE playbook's SAFETY.md rules, each a function of context, event and target that returns null when allowed
 * or the sentence the user sees when refused. Merged into machines/guards.ts's RULES, so `refuse` can name them.
 *
 * Defragment and AlarmDisarm are destructive calls (SAFETY.md): a defragment blocks its member while it runs, and a
 * disarm makes a full database writable again. Each is confirmed by typing the address of the one node it goes to
 * (SAFETY rule 3: every destructive request names exactly one node, typed by the user), and each of these rules
 * stands between the typed address and the call.
 */
import type { Rule } from '../guards.js';
import { allDefragmented } from './space.js';

/** Never on a lost quorum: the playbook runs only on a NOSPACE verdict (quorum holds) and while a member leads. */
export const nospaceQuorumHolds: Rule = (context) => {
  if (context.verdict?.verdict !== 'nospace')
    return `The assessment's verdict is ${context.verdict?.verdict ?? 'not known'}, not NOSPACE with quorum holding: nothing is defragmented or disarmed on this path.`;
  if (context.nospace && !context.nospace.leader)
    return 'No member names a leader in its status now: quorum may be lost, so nothing is defragmented or disarmed; run talos-dr again to assess the cluster.';
  return null;
};

/** One member at a time: a second defragment never starts while one runs (each blocks its member). */
export const oneDefragAtATime: Rule = (context, _event, target) => {
  const running = context.nospace?.members.find((m) => m.status === 'defragmenting' && m.node !== target);
  return running
    ? `${running.node} is still being defragmented: one member at a time, so ${target ?? 'another member'} waits until it is done.`
    : null;
};

/** The leader last: never before every follower is defragmented (a blocked leader stalls every write). */
export const leaderDefragmentedLast: Rule = (context, _event, target) => {
  const state = context.nospace;
  if (!state || target === null || target !== state.leader) return null;
  const waiting = state.members.filter(
    (m) => m.node !== target && m.status !== 'done' && !(state.skipped ?? []).includes(m.node),
  );
  return waiting.length
    ? `${target} leads the cluster: it is defragmented last, after ${waiting.map((m) => m.node).join(', ')}.`
    : null;
};

/** No disarm before every member was defragmented, unless the user left one out by an override with a reason. */
export const defragmentedBeforeDisarm: Rule = (context) => {
  const state = context.nospace;
  if (allDefragmented(state)) return null;
  const left = (state?.members ?? []).filter((m) => m.status !== 'done' && !(state?.skipped ?? []).includes(m.node));
  return `The alarm is disarmed only once every member is defragmented (${left.map((m) => m.node).join(', ') || 'none read yet'} not yet): disarmed earlier, the next write over the quota raises it again.`;
};

export const NOSPACE_RULES = {
  nospaceQuorumHolds,
  oneDefragAtATime,
  leaderDefragmentedLast,
  defragmentedBeforeDisarm,
} satisfies Record<string, Rule>;
