/**
 * Runs the recovery machine over the in-memory cluster's three nodes (test/components/fake-cluster.ts), answering every
 * question with its recommended answer as soon as it is asked, until it ends or asks "Try again?"; `watch` sees every
 * context on the way. Shared by the machine tests that drive a whole recovery this way.
 */
import { createActor, waitFor } from 'xstate';
import { NODES } from '../components/fake-cluster.js';
import type { RecoveryMachine } from '../../machines/recovery.js';

export type RecoveryContextSeen = ReturnType<ReturnType<typeof createActor<RecoveryMachine>>['getSnapshot']>['context'];

export async function runAnsweringRecommended(
  machine: RecoveryMachine,
  nodeAnswerTimeoutMs?: number,
  watch?: (context: RecoveryContextSeen) => void,
) {
  const actor = createActor(machine, {
    input: {
      nodes: NODES,
      operator: 'tester',
      mode: 'drill',
      timing: { pollMs: 5, backoffMs: 1, ...(nodeAnswerTimeoutMs ? { nodeAnswerTimeoutMs } : {}) },
    },
  });
  let answered = -1;
  actor.subscribe((s) => {
    watch?.(s.context);
    const p = s.context.prompt;
    if (p?.recommended && s.context.promptSeq !== answered) {
      answered = s.context.promptSeq;
      const event = p.recommended;
      setImmediate(() => actor.send(event));
    }
  });
  actor.start();
  const end = await waitFor(actor, (s) => s.status === 'done' || s.context.prompt?.id.startsWith('retry:') === true, {
    timeout: 20_000,
  });
  actor.stop();
  return end.context;
}
