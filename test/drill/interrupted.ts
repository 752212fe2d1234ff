/**
 * What the tests of an interrupted destructive call (the *-interrupted-landed files) share: the journal as a crash or
 * a lost answer leaves it and the lines the check writes, the drill's timing, and the simulator's node internals a test
 * holds a moment of on purpose. The client that loses answers is lossy-client.ts's.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readJournal } from '../../src/journal/journal.js';
import type { SimCluster } from '../../src/sim/types.js';
import type { Ground } from './harness.js';

/**
 * lost-quorum renamed `name`, with every Read of the nodes `held` (hostnames) held open and never answered (the
 * simulator's hold fault): a boot id that does not come. The scenario file's path.
 */
export function lostQuorumWithHeldReads(name: string, held: string[]): string {
  const lostQuorum = readFileSync(join(import.meta.dirname, '..', '..', 'scenarios', 'lost-quorum.yaml'), 'utf8');
  const holds = held.map((h) => `  - { kind: hold, node: ${h}, method: Read, times: 1000 }\n`);
  const yaml = lostQuorum.replace('name: lost-quorum', `name: ${name}`).concat(`faults:\n${holds.join('')}`);
  const file = join(mkdtempSync(join(tmpdir(), `talos-dr-${name}-`)), `${name}.yaml`);
  writeFileSync(file, yaml);
  return file;
}

/** The drill's own timing at SPEED (src/wizard/run.ts timingFor): 100 ms polls, 20 s for a node to come back. */
export const DRILL_TIMING = { pollMs: 100, nodeBackTimeoutMs: 20_000 };

/**
 * The deadline of a status read in the tests whose check has the drill's 20 s to decide (DRILL_TIMING): each poll of
 * a node without etcd quorum, or with etcd Preparing, waits out every etcd read's deadline, 1 s in the drill. A read
 * that misses it is no evidence either way, and costs the check one more poll inside its 20 s, so a shorter one
 * changes nothing the tests assert, only how long a poll of such a node takes.
 */
export const QUICK_READS_MS = 300;

/** The "after" line of a call the check found done, and of one it found never sent. */
export const LANDED = 'the node shows it happened: not sent again';
export const NOT_LANDED = 'the node shows it did not happen: sending it';

/** The journal as the crash left it: the call journalled as about to be sent (with its send time), never answered. */
export function journalSent(g: Ground, call: { opId: string; node: string; what: string; sentAt?: number }): void {
  g.journal.append({
    kind: 'action',
    phase: 'before',
    opId: call.opId,
    node: call.node,
    what: call.what,
    by: g.operator,
    data: { sentAt: call.sentAt ?? Date.now() },
  });
}

/** The results of an operation's "after" lines, oldest first: each attempt's outcome, and each check's finding. */
export const afterResults = (g: Ground, opId: string): (string | undefined)[] =>
  readJournal(g.incident.dir)
    .filter((r) => r.kind === 'action' && r.opId === opId && r.phase === 'after')
    .map((r) => r.result);

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Resolves once `condition` holds, asked every `everyMs`. */
export async function until(condition: () => boolean | Promise<boolean>, everyMs = 5): Promise<void> {
  while (!(await condition())) await sleep(everyMs);
}

/** The simulator's node object (its internals, to hold a moment of its life on purpose). */
export interface NodeInternals {
  address: string;
  reachable: boolean;
  state: { pendingReset: unknown; bootId: string; clockOffsetMs?: number };
  reset: (wipe: { labels: string[]; wholeDisk: boolean }, reboot: boolean) => void;
  beginReset: () => void;
}
export const simNode = (sim: SimCluster, node: string): NodeInternals =>
  (sim as unknown as { nodesList: NodeInternals[] }).nodesList.find((n) => n.address === node)!;

/** A node clock ten minutes behind this machine's (state.clockOffsetMs): its new boot's events are dated before a send. */
export const CLOCK_BEHIND_MS = -10 * 60_000;

/** Resolves once the node has gone down and answers again (its reboot, as the client sees the listener). */
export async function rebooted(sim: SimCluster, node: string): Promise<void> {
  const n = simNode(sim, node);
  await until(() => !n.reachable);
  await until(() => n.reachable);
}
