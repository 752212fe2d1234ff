/**
 * Step 2, assess: every node's local etcd view side by side, and the quorum verdict that decides the path: nothing
 * to do (healthy), replace the broken members one at a time (quorum holds: machines/replace-member), ask again
 * (undecided), or recover (lost).
 */
import { and, assign, emit, enqueueActions } from 'xstate';
import { computeVerdict, type NodeObservation } from '../../decisions.js';
import type { RecoveryEvent } from '../../recovery-types.js';
import { brokenWords, initialReplace, initialSwap, swapCandidates } from '../../replace-member/plan.js';
import { snapshotOptions } from '../context.js';
import { promptState, retryPromptState } from '../prompts.js';
import { recoverySetup } from '../setup.js';
import { callStep, stepDone } from '../states.js';
import { SILENT_GATE, silentBeforeRecovery, unansweredNodes } from './1-connect.js';

/**
 * The given sources that are backups whose age tells something: an S3 location, or a talos-backup file (its name ends
 * .snap, .zst or .age; siderolabs/talos-backup names them <cluster>-<RFC3339 time>.snap[.zst][.age]). A plain snapshot
 * file a drill hands over is not one.
 */
export function backupLocations(given: readonly string[]): string[] {
  return given.filter((g) => g.startsWith('s3://') || /\.snap(\.zst)?(\.age)?$|\.(zst|age)$/.test(g));
}

/** Step 3's sources, freshest member first, offered by every path that takes a snapshot next. */
const offerSnapshotSources = recoverySetup.assign({
  snapshotOptions: ({ context }) =>
    snapshotOptions(context.observations, context.verdict?.freshest ?? null, context.givenSnapshots),
});

/** The option id of a planned swap names its node: `swap:<address>`. */
const SWAP_OPTION = 'swap:';

/** The node a `choose` of a planned swap names, when it is one the assessment offered; else null. */
function swapChosen(observations: readonly NodeObservation[], event: RecoveryEvent): NodeObservation | null {
  if (event.type !== 'choose' || !event.option.startsWith(SWAP_OPTION)) return null;
  const node = event.option.slice(SWAP_OPTION.length);
  return swapCandidates(observations).find((o) => o.node === node) ?? null;
}

/** The assessment ends with nothing to do: etcd is healthy, and why. */
const endHealthy = stepDone('assess', ({ context }) => `healthy: ${context.verdict?.reason ?? ''}`);

export const assess = recoverySetup.createStateConfig({
  entry: { type: 'startStep', params: { step: 'assess' } },
  initial: 'reading',
  states: {
    ...callStep({
      call: 'reading',
      retry: 'retrying',
      invoke: {
        src: 'assess',
        // the backup locations given are aged here (issue 16); the snapshot files a drill hands over are not backups
        input: ({ context }) => ({ nodes: context.nodes, backups: backupLocations(context.givenSnapshots) }),
        onDone: {
          target: 'deciding',
          actions: [
            { type: 'storeObservations', params: ({ event }) => ({ views: event.output.observations }) },
            enqueueActions(({ event, enqueue }) => {
              for (const age of event.output.backupAges ?? [])
                if (age.worrying) enqueue({ type: 'warn', params: { message: age.sentence } });
            }),
            // A member that matches no node given is one of the verdict's leftovers ("a machine already gone, or a node
            // left out of the node list", machines/verdict.ts), named in the journal and the quorum-holds prompt; member
            // lists need a leader (EtcdMemberList sets WithRequireLeader), so with quorum lost there are none to name.
            assign(({ context, event }) => ({
              verdict: computeVerdict(event.output.observations),
              volumes: { ...context.volumes, ...event.output.volumes },
            })),
            emit(({ event }) => {
              const verdict = computeVerdict(event.output.observations);
              return {
                type: 'journal' as const,
                entry: {
                  kind: 'decision' as const,
                  step: 'assess' as const,
                  what: `quorum verdict: ${verdict.verdict}`,
                  result: verdict.reason,
                  data: {
                    freshest: verdict.freshest,
                    ...(verdict.broken?.length ? { broken: verdict.broken } : {}),
                    ...(verdict.alarms?.length ? { alarms: verdict.alarms } : {}),
                    views: event.output.observations.map((o) => ({
                      node: o.node,
                      reachable: o.reachable,
                      maintenance: Boolean(o.maintenance),
                      machineType: o.machineType,
                      etcdService: o.etcdService,
                      healthy: o.etcdHealthy,
                      raftAppliedIndex: o.status ? String(o.status.raftAppliedIndex) : null,
                      error: o.error ?? o.statusError ?? o.membersError ?? null,
                    })),
                  },
                },
              };
            }),
          ],
        },
      },
      attempt: { action: 'assess', node: null },
    }),
    failed: retryPromptState('assess', 'reading'),
    deciding: {
      always: [
        // healthy, with members enough for a planned swap: nothing to do, unless a member is replaced on purpose
        {
          guard: and(['verdictHealthy', ({ context }) => swapCandidates(context.observations).length > 0]),
          target: 'healthy',
        },
        {
          guard: 'verdictHealthy',
          target: '#recovery.nothingToDo',
          actions: endHealthy,
        },
        { guard: 'quorumOverridden', target: 'lost' },
        { guard: 'verdictNospace', target: 'databaseFull' },
        { guard: 'verdictDegraded', target: 'quorumHolds' },
        { guard: 'verdictUnknown', target: 'undecided' },
        { target: 'lost' },
      ],
    },
    // nothing to recover; a planned swap of a healthy member (a machine to retire or repair) is chosen here on purpose
    healthy: promptState(
      ({ context }) => ({
        id: 'healthy',
        kind: 'choose',
        question: 'etcd is healthy: there is nothing to recover. Replace a healthy member on purpose?',
        detail: `${context.verdict?.reason ?? ''} A planned swap (a machine to retire or repair): a verified snapshot first, then that member hands over its leadership if it leads and leaves etcd by itself (you type its address), its machine is wiped or kept off, and it rejoins as a learner. One member at a time.`,
        options: [
          { id: 'nothing', label: 'nothing to do (recommended)' },
          ...swapCandidates(context.observations).map((o) => ({
            id: `${SWAP_OPTION}${o.node}`,
            label: `replace ${o.node}${o.hostname ? ` (${o.hostname})` : ''}: planned maintenance`,
          })),
        ],
        recommended: { type: 'choose', option: 'nothing' },
      }),
      {
        on: {
          choose: [
            {
              guard: { type: 'chose', params: { option: 'nothing' } },
              target: '#recovery.nothingToDo',
              actions: ['journalConfirmation', endHealthy],
            },
            {
              // the guided replacement's steps, for a member that leaves by itself: a verified snapshot first
              guard: ({ context, event }) => swapChosen(context.observations, event) !== null,
              target: '#recovery.procedure.snapshot',
              actions: [
                'journalConfirmation',
                { type: 'switchProcedure', params: { procedure: 'replace-member' } },
                {
                  type: 'endStep',
                  params: ({ context, event }) => ({
                    step: 'assess',
                    status: 'done',
                    result: `healthy: planned swap of ${swapChosen(context.observations, event)?.node ?? '?'}`,
                  }),
                },
                assign({
                  replace: ({ context, event }) =>
                    initialSwap(swapChosen(context.observations, event) as NodeObservation),
                }),
                offerSnapshotSources,
              ],
            },
          ],
        },
      },
    ),
    quorumHolds: promptState(
      ({ context }) => {
        const broken = context.verdict?.broken ?? [];
        const named = broken.length > 0 ? ` Members to replace, one at a time: ${brokenWords(broken)}.` : '';
        return {
          id: 'quorum-holds',
          kind: 'choose',
          question: 'Quorum still holds. Replace the broken member instead of a full recovery?',
          detail: `${context.verdict?.reason ?? ''}${named} A full recovery would throw away a working cluster's newest writes.`,
          options: [
            ...(broken.length > 0
              ? [
                  {
                    id: 'replace',
                    label:
                      'replace the broken member (recommended): snapshot first, then remove it through a healthy node and let it rejoin',
                  },
                ]
              : []),
            {
              id: 'stop',
              label: `stop here${broken.length > 0 ? '' : ' (recommended)'}: replace the broken member by hand with etcd remove-member and a reset`,
            },
            { id: 'override', label: 'run a full recovery anyway (needs a reason)', needsReason: true },
          ],
          recommended: { type: 'choose', option: broken.length > 0 ? 'replace' : 'stop' },
        };
      },
      {
        on: {
          choose: [
            {
              // the guided replacement (machines/replace-member): a verified snapshot and the configs first
              guard: ({ context, event }) => event.option === 'replace' && (context.verdict?.broken ?? []).length > 0,
              target: '#recovery.procedure.snapshot',
              actions: [
                'journalConfirmation',
                { type: 'switchProcedure', params: { procedure: 'replace-member' } },
                stepDone(
                  'assess',
                  ({ context }) => `quorum holds: replacing ${brokenWords(context.verdict?.broken ?? [])}`,
                ),
                assign({ replace: ({ context }) => initialReplace(context.verdict?.broken ?? []) }),
                offerSnapshotSources,
              ],
            },
            {
              guard: ({ event }) => event.option === 'stop',
              target: '#recovery.stoppedQuorumIntact',
              actions: [
                'journalConfirmation',
                stepDone('assess', ({ context }) => `quorum holds: ${context.verdict?.reason ?? ''}`),
              ],
            },
          ],
          override: [
            {
              guard: 'reasonGiven',
              target: 'lost',
              actions: { type: 'recordOverride', params: { what: 'full recovery' } },
            },
            { actions: { type: 'refuse', params: { rules: ['reasonGiven'] } } },
          ],
        },
      },
    ),
    undecided: promptState(
      ({ context }) => ({
        id: 'quorum-unknown',
        kind: 'choose',
        question: context.verdict?.reason.startsWith('Quorum holds')
          ? "Quorum holds, but a node's etcd could not be read. Assess again?"
          : 'Quorum cannot be decided from the nodes that answered. Assess again?',
        detail: context.verdict?.reason ?? '',
        options: [
          { id: 'again', label: 'assess again (recommended)' },
          { id: 'stop', label: 'stop here' },
          { id: 'override', label: 'treat quorum as lost and recover (needs a reason)', needsReason: true },
        ],
        recommended: { type: 'choose', option: 'again' },
      }),
      {
        on: {
          choose: [
            { guard: ({ event }) => event.option === 'again', target: 'reading' },
            {
              guard: ({ event }) => event.option === 'stop',
              target: '#recovery.stoppedByUser',
              actions: 'journalConfirmation',
            },
          ],
          override: [
            {
              guard: 'reasonGiven',
              target: 'lost',
              actions: { type: 'recordOverride', params: { what: 'full recovery' } },
            },
            { actions: { type: 'refuse', params: { rules: ['reasonGiven'] } } },
          ],
          'give-up': {
            target: '#recovery.failed',
            actions: {
              type: 'setOutcome',
              params: ({ context }) => ({
                outcome: `failed: ${context.verdict?.reason ?? 'quorum could not be decided'}`,
              }),
            },
          },
        },
      },
    ),
    // NOSPACE with quorum: free space on every member and keep them (machines/nospace), after a verified snapshot
    databaseFull: {
      always: {
        target: '#recovery.procedure.snapshot',
        actions: [
          { type: 'switchProcedure', params: { procedure: 'nospace' } },
          {
            type: 'endStep',
            params: ({ context }) => ({ step: 'assess', status: 'done', result: context.verdict?.reason ?? 'NOSPACE' }),
          },
          offerSnapshotSources,
        ],
      },
    },
    lost: {
      always: [
        // a node still silent is never dropped by a full recovery: it must answer or be left out first (issue 12 item 10)
        {
          guard: silentBeforeRecovery,
          target: SILENT_GATE,
          actions: {
            type: 'endStep',
            params: ({ context }) => ({
              step: 'assess',
              status: 'done',
              result: `quorum lost; ${unansweredNodes(context).join(', ')} must answer or be left out first`,
            }),
          },
        },
        {
          target: '#recovery.procedure.snapshot',
          actions: [
            {
              type: 'endStep',
              params: ({ context }) => ({
                step: 'assess',
                status: 'done',
                result: `${context.verdict?.verdict === 'lost' ? 'quorum lost' : `quorum ${context.verdict?.verdict ?? '?'} (overridden)`}; freshest member: ${context.verdict?.freshest ?? 'none answers'}`,
              }),
            },
            offerSnapshotSources,
          ],
        },
      ],
    },
  },
});
