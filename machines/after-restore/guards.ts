/**
 * The after-restore step's guards (pure functions of context and event), used inline by states.ts as `G.<name>`. Not
 * spread into setup.ts: a guard typed outside setup's own object literal makes TypeScript infer setup's parameterised
 * guards (chose, procedureIs) with unknown params (machines/replace-member/guards.ts found the same).
 */
import type { GuardArgs } from '../recovery-types.js';
import { kubeletRestartAllowed, nextKubeletNode } from './rules.js';
import { parseWorkers } from './workers.js';

/** The control-plane nodes on the step's list (the nodes a typed worker must not be). */
export const controlPlaneListed = (context: GuardArgs['context']): string[] =>
  (context.afterRestore?.nodes ?? []).filter((n) => n.machineType !== 'worker').map((n) => n.node);

export const G = {
  /** a resumed step does not ask again what was already answered */
  afterRestoreDecided: ({ context }: GuardArgs) => (context.afterRestore?.decision ?? null) !== null,
  /** no kubelet left to restart: every listed node was restarted or failed */
  kubeletsAllSent: ({ context }: GuardArgs) => nextKubeletNode(context) === null,
  /** SAFETY: the next restart is allowed (verified restore, a yes, a listed node, not sent before) */
  kubeletRestartAllowed: ({ context, event }: GuardArgs) => kubeletRestartAllowed(context, event, null) === null,
  /** discovery named no workers and the user has not yet typed them or chosen the control-plane nodes only */
  workersToAsk: ({ context }: GuardArgs) =>
    context.afterRestore?.workersListed === false && (context.afterRestore.workersAnswer ?? null) === null,
  /** "type the workers' addresses", with addresses that are all valid (machines/after-restore/workers.ts) */
  workersTypedValid: ({ context, event }: GuardArgs) =>
    event.type === 'choose' &&
    event.option === 'type' &&
    parseWorkers(event.path ?? '', controlPlaneListed(context)).ok,
  /** the health check found nothing wrong */
  afterRestoreHealthy: ({ context }: GuardArgs) => (context.afterRestore?.stillWrong.length ?? 0) === 0,
} satisfies Record<string, (args: GuardArgs) => boolean>;
