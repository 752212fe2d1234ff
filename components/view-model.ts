/**
 * What the screens show, in the screens' own terms. The presentational components take these as readonly props;
 * App derives them from the recovery machine's snapshot (components/selectors.ts), so a change in the machine's
 * context touches one file, not every view. No Ink import here: these are plain data.
 */

export type StepStatus = 'done' | 'current' | 'pending' | 'failed' | 'skipped';

export interface StepView {
  /** 1-based position in the procedure */
  readonly n: number;
  readonly title: string;
  readonly status: StepStatus;
  /** one line saying how a finished (or failed) step ended, e.g. "snapshot verified: rev 4821, 3.1 MiB" */
  readonly result?: string;
  /** how long the step took, ms, when finished */
  readonly durationMs?: number;
}

export type MachineTypeView = 'controlplane' | 'init' | 'worker' | 'unknown';

/** One control-plane node as the last fan-out round saw it. `null` = the node could not answer that field. */
export interface NodeRow {
  readonly address: string;
  readonly hostname: string | null;
  readonly reachable: boolean;
  readonly machineType: MachineTypeView;
  /** Talos service state of etcd: Running, Preparing, Waiting, Failed, Finished, … */
  readonly etcdService: string | null;
  /** etcd service health: true healthy, false unhealthy, null unknown */
  readonly healthy: boolean | null;
  /** size of this node's local member view */
  readonly members: number | null;
  /** raft applied index, as a decimal string (64-bit: never a JS number) */
  readonly raftAppliedIndex: string | null;
  /** the latest etcd service event message */
  readonly lastEvent: string | null;
  /** ms since epoch when the node last answered; shown as "no answer for 12s" once it stops */
  readonly lastAnsweredAt: number | null;
}

/** Column keys of the node table; a changed cell is named `${address}:${column}`. */
export type NodeColumn =
  'hostname' | 'reachable' | 'machineType' | 'etcdService' | 'healthy' | 'members' | 'raftAppliedIndex' | 'lastEvent';

export const cellKey = (address: string, column: NodeColumn): string => `${address}:${column}`;

/** What the current step explains: why, what happens on Enter, and the talosctl equivalent. */
export interface StepExplanation {
  readonly why: string;
  readonly whatHappens: string;
  /** the equivalent talosctl command(s), one per line */
  readonly talosctl: readonly string[];
}

/** A key and what it does, as the panel and the help overlay print it. */
export interface KeyHint {
  readonly key: string;
  readonly does: string;
}

export interface TransferView {
  readonly label: string;
  readonly bytes: number;
  /** total when known (uploads); a download of unknown size shows bytes and rate only */
  readonly total?: number;
  /** ms since epoch when the transfer started, for the rate and the ETA */
  readonly startedAt: number;
}

export interface WaitView {
  /** what is awaited, e.g. "every node's etcd to reach Preparing" */
  readonly awaiting: string;
  /** the latest state seen, e.g. "127.0.0.3 Waiting: time not in sync" */
  readonly latest?: string;
  readonly since: number;
  /** when the wait ends in a question (ms since epoch): shown as the time left */
  readonly deadline?: number;
}

export type Outcome =
  | { readonly kind: 'recovered' }
  | { readonly kind: 'member-replaced' }
  | { readonly kind: 'nospace-cleared' }
  | { readonly kind: 'stopped-quorum-intact' }
  | { readonly kind: 'nothing-to-do' }
  | { readonly kind: 'stopped-by-user' }
  | { readonly kind: 'failed'; readonly reason: string };

export interface DrillScore {
  readonly scenario: string;
  /** ms from the assessment to the recovery (null if it never recovered) */
  readonly timeToRecoverMs: number | null;
  readonly timeLimitSec?: number;
  /** as the simulator counts it, e.g. "none: snapshot taken after the last write" or "12 writes after revision 4821" */
  readonly dataLost: string;
  /** each guard that refused something, one sentence each */
  readonly mistakesStopped: readonly string[];
  /** the trainer's verdict: the run against the scenario's expected outcome and right answer */
  readonly verdict?: DrillVerdictView;
}

/** "✓ correct call: …" or "✗ <why>", and the right answer, shown when the call was wrong. */
export interface DrillVerdictView {
  readonly correct: boolean;
  readonly line: string;
  readonly rightAnswer: string;
}

/** What a drill tells the trainee before it starts: what happened and what to do, never the answer. */
export interface BriefingView {
  readonly scenario: string;
  readonly description: string;
  readonly talosVersion: string;
  readonly timeLimitSec: number;
  readonly nodeCount: number;
}

export const outcomeLine = (o: Outcome): string =>
  o.kind === 'failed' ? `outcome: failed: ${o.reason}` : `outcome: ${o.kind}`;
