/**
 * `drill --autopilot`: gives every prompt its recommended answer (no prompt recommends an override), except where the
 * recommended answer cannot finish and a trainer expects another (rightAnswer), prints `step <n>/<m> <name>: <result>`
 * as steps end, and gives up at the time limit. The answers are journalled by the machine, like a person's, once each.
 */
import type { RecoveryContext, RecoveryEvent } from '../../machines/recovery.js';

/**
 * A wait that does not go away by waiting: time sync is the one condition the node's etcd still waits for (its NTP
 * needs fixing). machined names only the conditions still unmet, joined by ", " (siderolabs/talos
 * internal/app/machined/pkg/system/conditions/all.go String), so a booting node's 'service "cri" to be "up", time
 * sync, network' also names time sync, but waits for its boot, which does finish: that one is not given up on.
 */
function waitsOnlyForTimeSync(p: { state: string | null; cause: string | null }): boolean {
  const conditions = (p.cause ?? '')
    .split(',')
    .map((c) => c.trim())
    .filter((c) => c !== '');
  return conditions.length > 0 && conditions.every((c) => /^time sync$/i.test(c));
}

/**
 * The answer a trainer expects where the recommended one cannot finish. Where keeping on waiting cannot finish (issue
 * 17 item 6, scenarios/stuck-waiting.yaml): when the wait for Preparing ran out and every node still held up waits for
 * time sync, continue without those nodes by an override whose reason names the cause and what to do after. In a
 * planned-swap drill (`retire`, scenarios/planned-swap.yaml): at the healthy verdict, the swap of that machine.
 * Elsewhere, null: the recommended answer stands.
 */
export function rightAnswer(context: RecoveryContext, retire?: string): RecoveryEvent | null {
  if (context.prompt?.id === 'healthy') return retire ? swapOf(context, retire) : null;
  if (context.prompt?.id !== 'preparing-timeout') return null;
  const pending = context.wait?.pending ?? [];
  if (pending.length === 0 || !pending.every(waitsOnlyForTimeSync)) return null;
  const nodes = pending.map((p) => p.node).join(', ');
  return {
    type: 'override',
    reason: `${nodes} ${pending.length === 1 ? 'waits' : 'wait'} for time sync, which waiting does not fix: continue without ${pending.length === 1 ? 'it' : 'them'}, and fix NTP there after the recovery`,
  };
}
import { finished, type Session } from './session.js';

/**
 * A planned-swap drill (its scenario names the machine to take out, `retire`): at the healthy verdict, the planned
 * swap of that machine's member, as the question offers it (`swap:<address>`); null when it is not offered.
 */
function swapOf(context: RecoveryContext, retire: string): RecoveryEvent | null {
  const node = context.observations.find((o) => o.hostname === retire)?.node;
  const option = (context.prompt?.options ?? []).find((o) => o.id === `swap:${node ?? ''}`);
  return option ? { type: 'choose', option: option.id } : null;
}

/** The node's hostname as the assessment or a read named it, else its address. */
function nodeName(context: RecoveryContext, node: string): string {
  const name = context.rows[node]?.hostname ?? context.verdict?.broken?.find((b) => b.node === node)?.name ?? null;
  return name ? `${name} (${node})` : node;
}

/**
 * Why the time limit ended the run, when the machine was waiting for a node: which node and what was awaited ("the
 * time limit was reached while waiting for cp-3 (127.0.0.4) to answer"). Read before the event is sent: the state
 * that waits clears its wait when it is left, before the machine words its outcome. Null: nothing was awaited from
 * a node, and the machine's own reason stands.
 */
export function timeLimitReason(context: RecoveryContext): string | null {
  const pending = context.wait?.pending ?? [];
  if (pending.length === 0) return null;
  const waitedFor = pending.map((p) => {
    const name = nodeName(context, p.node);
    const silent = p.cause === 'not answering' || context.rows[p.node]?.reachable === false;
    if (silent) return `${name} to answer`;
    return `${name} (${[p.state, p.cause].filter(Boolean).join(': ') || 'no reason given'})`;
  });
  return `the time limit was reached while waiting for ${waitedFor.join(' and ')}`;
}

export interface AutopilotOptions {
  /** one plain line per step, then the score and the outcome (stdout) */
  print: (line: string) => void;
  /** the scenario's time limit: a wait that cannot finish ends here as failed */
  timeLimitMs: number;
  /** pause before answering a prompt that repeats (e.g. "assess again") */
  repeatPauseMs: number;
  /** a planned-swap drill's machine to take out (hostname): its swap is chosen at the healthy verdict */
  retire?: string;
}

/**
 * How many times autopilot takes a failure's recommended "try again" (machines/recovery/prompts.ts retryPrompt) at
 * the same question before it gives up: a failure that comes back after another round of tries needs a person.
 */
const RETRIES_PER_QUESTION = 1;

export function driveAutopilot(session: Pick<Session, 'actor'>, opts: AutopilotOptions): () => void {
  const { actor } = session;
  const printed = new Set<string>();
  const retried = new Map<string, number>();
  let lastPrompt: string | null = null;
  let lastAnsweredAt = 0;
  let pending: NodeJS.Timeout | null = null;

  const printSteps = (context: RecoveryContext) => {
    const total = context.steps.length;
    for (const s of context.steps) {
      if (s.status !== 'done' && s.status !== 'skipped' && s.status !== 'failed') continue;
      const line = `step ${s.n}/${total} ${s.name}: ${s.status === 'done' ? '' : `${s.status}: `}${s.result ?? ''}`;
      const key = `${s.n}:${s.endedAt ?? ''}`;
      if (printed.has(key)) continue;
      printed.add(key);
      opts.print(line);
    }
  };

  const onSnapshot = (snap: ReturnType<typeof actor.getSnapshot>) => {
    printSteps(snap.context);
    const prompt = snap.context.prompt;
    if (!prompt || finished(snap)) return;
    const key = `${snap.context.promptSeq}`;
    if (key === lastPrompt && pending) return;
    lastPrompt = key;
    if (pending) clearTimeout(pending);
    const delay = Date.now() - lastAnsweredAt < opts.repeatPauseMs ? opts.repeatPauseMs : 0;
    pending = setTimeout(() => {
      pending = null;
      const now = actor.getSnapshot();
      if (now.context.prompt?.id !== prompt.id || finished(now)) return;
      lastAnsweredAt = Date.now();
      const answer = rightAnswer(now.context, opts.retire) ?? prompt.recommended;
      // a failure's "try again", as Enter on the screen, once per question; the same failure again needs a person
      if (answer?.type === 'retry') {
        const tries = retried.get(prompt.id) ?? 0;
        if (tries >= RETRIES_PER_QUESTION) return void actor.send({ type: 'give-up' });
        retried.set(prompt.id, tries + 1);
      }
      // no recommended answer (a choice that needs a person): autopilot does not guess
      actor.send(answer ?? { type: 'give-up' });
    }, delay);
  };
  const sub = actor.subscribe(onSnapshot);
  const limit = setTimeout(() => {
    const snap = actor.getSnapshot();
    if (finished(snap)) return;
    const reason = timeLimitReason(snap.context);
    // the machine words its outcome with the reason it is given, else names what held it up itself
    actor.send({ type: 'give-up', ...(reason ? { reason } : {}) });
  }, opts.timeLimitMs);
  // A subscription only hears later transitions: a resumed session may already wait at a prompt (e.g. killed right
  // after the snapshot step asked for its source), and nothing would ever change to make the autopilot answer it.
  onSnapshot(actor.getSnapshot());
  return () => {
    sub.unsubscribe();
    clearTimeout(limit);
    if (pending) clearTimeout(pending);
  };
}
