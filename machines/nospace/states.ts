/**
 * The NOSPACE playbook (issue 15) as a state under `procedure`, after the verified snapshot (step 3):
 * - defragment: every member's size read live; followers one at a time, the leader last, each confirmed by typing
 *   its address (a defragment blocks that member: SAFETY rule 3, one node per destructive request); the sizes before
 *   and after shown in the step's row;
 * - disarm alarm: once every member is done (or left out by an explicit override with a reason), EtcdAlarmDisarm
 *   through one node, typed too;
 * - check space: after a few poll intervals (writes keep coming), status and alarms read again: an alarm back means
 *   the database is still over its quota (said, with what to do); else the bytes reclaimed and the quota advice.
 * Resumable: `route` picks the step from the context (a resumed procedure re-enters here), each step re-reads live
 * state first, and a defragment confirmed before a crash goes on without asking again (the ledger checks the node).
 */
import { assign, emit } from 'xstate';
import type { RecoveryContext } from '../recovery-types.js';
import { errorOf, promptTarget } from '../recovery/context.js';
import { promptState, retryAnswers, retryPromptState } from '../recovery/prompts.js';
import { recoverySetup } from '../recovery/setup.js';
import { callStep, failedAt } from '../recovery/states.js';
import {
  alarmWho,
  alarmsBack,
  alarmsOf,
  blockedNode,
  bytes,
  defragmentingNode,
  ETCD_DEFAULT_QUOTA,
  nextToDefragment,
  progressLine,
  quotaAdvice,
  reclaimedBytes,
  withMember,
  withReadings,
} from './space.js';
import type { MemberSpace, NospaceState } from './types.js';
import { G } from './guards.js';

/** The nodes the playbook acts on: the control-plane nodes given, without workers or blank machines. */
export function memberNodes(context: RecoveryContext): string[] {
  return context.nodes.filter((n) => {
    const o = context.observations.find((x) => x.node === n);
    return !o || (o.machineType !== 'worker' && !o.maintenance);
  });
}

const state = (context: RecoveryContext): NospaceState =>
  context.nospace ?? { order: [], members: [], disarmed: false };

/** A fresh read folded in, and the defragment row's result showing the progress. */
function foldReadings(context: RecoveryContext, readings: MemberSpace[]): Partial<RecoveryContext> {
  const next = withReadings(context.nospace ?? null, memberNodes(context), readings);
  return { nospace: next, steps: withProgress(context, next) };
}

function withProgress(context: RecoveryContext, next: NospaceState): RecoveryContext['steps'] {
  return context.steps.map((s) =>
    s.name === 'defragment' && s.status === 'active' ? { ...s, result: progressLine(next) } : s,
  );
}

const quotaText = (s: NospaceState): string =>
  s.quotaBytes ? bytes(s.quotaBytes) : `${bytes(ETCD_DEFAULT_QUOTA)}, etcd's default`;

const reclaimedText = (s: NospaceState): string => `${bytes(reclaimedBytes(s))} reclaimed`;

/** A read that could not be made: the step's "Try again?" question. */
const readAttempt = { action: 'reading etcd status and alarms', node: null };

/**
 * A step's first read (defragment, disarm): every member's database size and alarms folded in, then the step's
 * `deciding`; a failed read is tried again on its own, then asked about (`failed`).
 */
const readSpaceThenDecide = () => ({
  ...callStep({
    call: 'reading',
    retry: 'retryRead',
    invoke: {
      src: 'readSpace',
      input: ({ context }) => ({ nodes: memberNodes(context), quota: false }),
      onDone: { target: 'deciding', actions: assign(({ context, event }) => foldReadings(context, event.output)) },
    },
    attempt: readAttempt,
  }),
  failed: retryPromptState(readAttempt.action, 'reading'),
});

const defragment = recoverySetup.createStateConfig({
  entry: { type: 'startStep', params: { step: 'defragment' } },
  initial: 'reading',
  states: {
    ...readSpaceThenDecide(),
    // never on a lost quorum: the verdict was NOSPACE and a member still leads
    deciding: {
      always: [{ guard: G.nospaceQuorumHolds, target: 'next' }, { target: 'refused' }],
    },
    refused: {
      always: {
        target: '#recovery.failed',
        actions: [
          { type: 'refuse', params: { rules: ['nospaceQuorumHolds'] } },
          ...failedAt(
            'defragment',
            'refused: quorum not known to hold',
            ({ context }) =>
              context.notice ?? 'the NOSPACE playbook needs quorum; nothing was defragmented or disarmed',
          ),
        ],
      },
    },
    next: {
      always: [
        // confirmed before the process stopped: go on; the ledger checks the node before anything is sent again
        { guard: ({ context }) => defragmentingNode(context.nospace) !== null, target: 'defragmenting' },
        {
          guard: G.nospaceAllDefragmented,
          target: '#recovery.procedure.nospace.disarm',
          actions: {
            type: 'endStep',
            params: ({ context }) => ({
              step: 'defragment',
              status: 'done',
              result: `${progressLine(state(context))}; ${reclaimedText(state(context))}`,
            }),
          },
        },
        { target: 'confirming' },
      ],
    },
    confirming: promptState(
      ({ context }) => {
        const s = state(context);
        const node = nextToDefragment(s) ?? '';
        const m = s.members.find((x) => x.node === node);
        const leader = node === s.leader;
        const others = s.members.filter((x) => x.node !== node).length;
        return {
          id: `defragment:${node}`,
          kind: 'typed-address',
          question: `Defragment etcd on ${node}${leader ? ' (the leader, last)' : ''}?`,
          detail:
            `${node}'s etcd stops answering while it rewrites its ${bytes(m?.dbSizeBefore)} database (${bytes(m?.inUseBefore)} in use)` +
            `${others ? `; the other ${others} keep quorum` : ''}. Followers go first, the leader last; nothing is deleted, and the verified snapshot ${context.snapshot?.file ?? ''} is on local disk.`,
          target: node,
          recommended: { type: 'confirm', address: node },
        };
      },
      {
        on: {
          confirm: [
            {
              guard: G.nospaceMayDefragment,
              target: 'defragmenting',
              actions: [
                'journalConfirmation',
                assign(({ context }) => {
                  const next = withMember(state(context), promptTarget(context) ?? '', {
                    status: 'defragmenting',
                    error: null,
                  });
                  return { nospace: next, steps: withProgress(context, next) };
                }),
              ],
            },
            {
              actions: {
                type: 'refuse',
                params: {
                  rules: ['addressMatches', 'nospaceQuorumHolds', 'oneDefragAtATime', 'leaderDefragmentedLast'],
                },
              },
            },
          ],
          // Esc at the typed confirmation: the member is not defragmented now; say what that means and what is next
          'answer.no': { target: 'blocked' },
        },
      },
    ),
    defragmenting: {
      invoke: {
        src: 'defragmentMember',
        input: ({ context }) => {
          const node = defragmentingNode(context.nospace) ?? '';
          return { node, opId: `defragment:${node}` };
        },
        onDone: {
          target: 'reading',
          actions: [
            assign(({ context, event }) => {
              const o = event.output;
              const prior = state(context).members.find((m) => m.node === o.node);
              const next = withMember(state(context), o.node, {
                status: 'done',
                // a resumed call keeps the size read when it was first sent
                dbSizeBefore: prior?.dbSizeBefore ?? o.before.dbSize,
                inUseBefore: prior?.inUseBefore ?? o.before.dbSizeInUse,
                dbSizeAfter: o.after.dbSize,
                inUseAfter: o.after.dbSizeInUse,
                error: null,
              });
              return { nospace: next, steps: withProgress(context, next), attempt: null };
            }),
            emit(({ context, event }) => {
              const m = state(context).members.find((x) => x.node === event.output.node);
              return {
                type: 'journal' as const,
                entry: {
                  kind: 'observation' as const,
                  step: 'defragment' as const,
                  node: event.output.node,
                  what: 'defragmented',
                  result: `${bytes(m?.dbSizeBefore)} → ${bytes(m?.dbSizeAfter)} (${bytes(m?.inUseAfter)} in use)`,
                  data: {
                    before: m?.dbSizeBefore ?? null,
                    after: m?.dbSizeAfter ?? null,
                    alreadyDone: event.output.alreadyDone,
                  },
                },
              };
            }),
          ],
        },
        onError: {
          target: 'blocked',
          actions: [
            {
              type: 'noteAttempt',
              params: ({ context }) => ({ action: 'defragment', node: defragmentingNode(context.nospace) }),
            },
            assign(({ context, event }) => {
              const node = defragmentingNode(context.nospace) ?? '';
              const next = withMember(state(context), node, { status: 'failed', error: errorOf(event).message });
              return { nospace: next, steps: withProgress(context, next) };
            }),
          ],
        },
      },
    },
    // a defragment that failed or was declined: try again, stop (resumable), or go on without this member by an
    // explicit override with a reason (its file stays over the quota, so the alarm may come back: said on screen)
    blocked: promptState(
      ({ context }) => {
        const node = blockedNode(context.nospace) ?? '';
        const m = state(context).members.find((x) => x.node === node);
        return {
          id: `defragment-blocked:${node}`,
          kind: 'choose',
          question:
            m?.status === 'failed'
              ? `Defragmenting ${node} failed. What now?`
              : `${node} was not defragmented. What now?`,
          detail: `${m?.error ? `${m.error} ` : ''}Left out, ${node}'s file stays at ${bytes(m?.dbSizeBefore)}: if that is over the quota, the next write through it raises the NOSPACE alarm again.`,
          options: [
            { id: 'retry', label: `defragment ${node} (ask again)` },
            { id: 'stop', label: 'stop here (resumable)' },
            { id: 'skip', label: `go on without defragmenting ${node}`, needsReason: true },
          ],
          // a person decides: autopilot never overrides, and does not guess after a failure
          recommended: null,
        };
      },
      {
        on: {
          ...retryAnswers('reading'),
          override: [
            {
              guard: 'reasonGiven',
              target: 'reading',
              actions: [
                {
                  type: 'recordOverride',
                  params: ({ context }) => ({
                    what: `go on without defragmenting ${blockedNode(context.nospace) ?? ''}`,
                  }),
                },
                assign(({ context }) => {
                  const s = state(context);
                  const node = blockedNode(s) ?? '';
                  return { nospace: { ...s, skipped: [...new Set([...(s.skipped ?? []), node])] }, attempt: null };
                }),
              ],
            },
            { actions: { type: 'refuse', params: { rules: ['reasonGiven'] } } },
          ],
        },
      },
    ),
  },
});

const disarm = recoverySetup.createStateConfig({
  entry: { type: 'startStep', params: { step: 'disarm alarm' } },
  initial: 'reading',
  states: {
    ...readSpaceThenDecide(),
    deciding: {
      always: [
        {
          guard: G.nospaceQuorumHolds,
          target: 'alarmsRead',
        },
        {
          target: '#recovery.failed',
          actions: [
            { type: 'refuse', params: { rules: ['nospaceQuorumHolds'] } },
            ...failedAt(
              'disarm alarm',
              'refused: quorum not known to hold',
              ({ context }) => context.notice ?? 'the alarm is disarmed only while quorum holds',
            ),
          ],
        },
      ],
    },
    alarmsRead: {
      always: [
        // already disarmed (a resume after the disarm landed): nothing to send
        {
          guard: G.nospaceNoAlarm,
          target: '#recovery.procedure.nospace.checkSpace',
          actions: [
            assign(({ context }) => ({ nospace: { ...state(context), disarmed: true } })),
            {
              type: 'endStep',
              params: { step: 'disarm alarm', status: 'done', result: 'no alarm is active: nothing to disarm' },
            },
          ],
        },
        { target: 'confirming' },
      ],
    },
    confirming: promptState(
      ({ context }) => {
        const s = state(context);
        const node = s.order[0] ?? context.nodes[0] ?? '';
        const alarms = s.alarmsNow ?? s.alarmsBefore ?? [];
        const skipped = s.skipped ?? [];
        return {
          id: `disarm:${node}`,
          kind: 'typed-address',
          question: `Disarm the etcd alarms through ${node}?`,
          detail:
            `etcd disarms every alarm of the cluster (${alarms.map((a) => `${a.alarm} on ${a.node ?? a.memberId}`).join(', ') || 'none listed'}) and accepts writes again; ` +
            `${skipped.length ? `${skipped.join(', ')} ${skipped.length === 1 ? 'was' : 'were'} left out of the defragmentation by your override, so the alarm may come back` : `every member was defragmented (${reclaimedText(s)})`}.`,
          target: node,
          recommended: { type: 'confirm', address: node },
        };
      },
      {
        on: {
          confirm: [
            { guard: G.nospaceMayDisarm, target: 'disarming', actions: 'journalConfirmation' },
            {
              actions: {
                type: 'refuse',
                params: { rules: ['addressMatches', 'nospaceQuorumHolds', 'defragmentedBeforeDisarm'] },
              },
            },
          ],
          'answer.no': { target: '#recovery.stoppedByUser' },
        },
      },
    ),
    ...callStep({
      call: 'disarming',
      invoke: {
        src: 'disarmAlarms',
        input: ({ context }) => ({ node: promptTarget(context) ?? '', opId: 'alarm-disarm' }),
        onDone: {
          target: '#recovery.procedure.nospace.checkSpace',
          actions: [
            assign(({ context }) => ({ nospace: { ...state(context), disarmed: true } })),
            {
              type: 'endStep',
              params: ({ event }) => ({
                step: 'disarm alarm',
                status: 'done',
                result: `${event.output.alreadyDone ? 'already disarmed' : `disarmed ${event.output.disarmed.length} alarm${event.output.disarmed.length === 1 ? '' : 's'}`} through ${event.output.node}`,
              }),
            },
          ],
        },
      },
      attempt: { action: 'disarming the alarm', node: null },
      onFailure: {
        target: 'disarmFailed',
        actions: {
          type: 'noteAttempt',
          params: ({ context }) => ({ action: 'disarming the alarm', node: promptTarget(context) }),
        },
      },
    }),
    disarmFailed: retryPromptState('disarming the alarm', 'reading'),
  },
});

const checkSpace = recoverySetup.createStateConfig({
  entry: { type: 'startStep', params: { step: 'check space' } },
  initial: 'settling',
  states: {
    // the apiservers keep writing: a member still over its quota raises the alarm again at its next write, so the
    // read-back waits a few poll intervals (10 s on a real cluster) for that to show
    settling: {
      invoke: { src: 'sleep', input: ({ context }) => ({ ms: context.timing.pollMs * 5 }) },
      on: { wake: 'reading' },
    },
    ...callStep({
      call: 'reading',
      retry: 'retryRead',
      invoke: {
        src: 'readSpace',
        input: ({ context }) => ({ nodes: memberNodes(context), quota: true }),
        onDone: {
          target: 'check',
          actions: [
            assign(({ context, event }) => {
              const folded = foldReadings(context, event.output);
              const read = event.output.some((r) => r.alarms !== null);
              return { ...folded, nospace: { ...folded.nospace!, alarmsAfter: read ? alarmsOf(event.output) : null } };
            }),
          ],
        },
      },
      attempt: readAttempt,
    }),
    failed: retryPromptState(readAttempt.action, 'reading'),
    check: {
      always: [
        {
          guard: G.nospaceAlarmBack,
          target: '#recovery.failed',
          actions: [
            assign(({ context }) => ({ followUp: quotaAdvice(state(context), true).lines })),
            ...failedAt(
              'check space',
              ({ context }) => `the NOSPACE alarm is back on ${alarmWho(alarmsBack(context.nospace))}`,
              ({ context }) =>
                `the NOSPACE alarm came back on ${alarmWho(alarmsBack(context.nospace))} after the disarm: the database is still over its quota (${quotaText(state(context))}); raise quota-backend-bytes in cluster.etcd.extraArgs (the YAML is below) or delete data, then run talos-dr again to defragment and disarm`,
            ),
          ],
        },
        // no member could list its alarms: the disarm cannot be confirmed yet
        {
          guard: ({ context }) => context.nospace?.alarmsAfter === null,
          target: 'failed',
          actions: assign({
            attempt: ({ context }) => ({
              action: readAttempt.action,
              node: null,
              count: (context.attempt?.count ?? 0) + 1,
              max: context.timing.maxAttempts,
              lastError: 'No member could list its alarms, so the disarm cannot be confirmed yet.',
              nextAt: null,
            }),
          }),
        },
        {
          target: '#recovery.nospaceCleared',
          actions: [
            assign(({ context }) => ({ followUp: quotaAdvice(state(context)).lines })),
            {
              type: 'endStep',
              params: ({ context }) => ({
                step: 'check space',
                status: 'done',
                result: `no alarm after the disarm; ${reclaimedText(state(context))}; ${quotaAdvice(state(context)).lines[0]}`,
              }),
            },
          ],
        },
      ],
    },
  },
});

export const nospace = recoverySetup.createStateConfig({
  initial: 'route',
  states: {
    // a resumed procedure re-enters here: the step to continue with is read from the context
    route: {
      always: [
        { guard: G.nospaceDisarmed, target: 'checkSpace' },
        { guard: G.nospaceAllDefragmented, target: 'disarm' },
        { target: 'defragment' },
      ],
    },
    defragment,
    disarm,
    checkSpace,
  },
});
