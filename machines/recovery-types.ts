/**
 * The recovery machine's public shapes: its input, its JSON-serialisable context (what the Ink screens read through
 * useSelector), its events (what the screens and autopilot send), and the inputs/outputs of its named actors (what
 * the runtime in src/wizard supplies). Everything here survives JSON.stringify: no bigint, no Error, no class instances.
 */
import type { EtcdVolumeKind, MachineType } from '../src/talos/types.js';
import type { SnapshotKind } from '../src/etcd/types.js';
import type { NodeObservation, NodePlan, VerdictResult } from './decisions.js';
import type { Procedure, StepName } from './recovery/steps.js';
import type { ReplaceMemberState } from './replace-member/types.js';
import type { NospaceState } from './nospace/types.js';
import type { AfterRestoreState } from './after-restore/types.js';

// the steps' names, numbers and texts live in one table: machines/recovery/steps.ts
export { STEP_NAMES, type Procedure, type StepName } from './recovery/steps.js';

export type StepStatus = 'pending' | 'active' | 'done' | 'skipped' | 'failed';

export interface StepRow {
  /** 1-based, as printed: step n/9 */
  n: number;
  name: StepName;
  status: StepStatus;
  /** one line saying what came of it */
  result: string | null;
  startedAt: number | null;
  endedAt: number | null;
  /** the equivalent talosctl command(s), so the engineer learns the procedure and can fall back to it */
  talosctl: string[];
}

/** A node's observation kept in context: like NodeObservation, but with indices as decimal strings. */
export type NodeView = NodeObservation & {
  /** newest etcd service events, oldest first (message only), for wait causes and interrupted-bootstrap checks */
  etcdEvents?: string[];
  /**
   * When the etcd service's event history begins (ms, its oldest event), or null when the history may have been
   * trimmed (Talos keeps 64 events). Services start a new history at every boot, so a start after a moment means the
   * node rebooted since.
   */
  etcdHistoryStart?: number | null;
  talosVersion?: string | null;
};

export type PrepStatus = 'planned' | 'confirmed' | 'sending' | 'rebooting' | 'retrying' | 'done' | 'failed';

/** One node's row on screen: what it is, what its etcd says, and how its preparation goes. */
export interface NodeRow {
  node: string;
  hostname: string | null;
  reachable: boolean;
  maintenance: boolean;
  machineType: MachineType;
  etcdService: string | null;
  healthy: boolean | null;
  raftAppliedIndex: string | null;
  error: string | null;
  /** set while the node sits in Waiting: what it waits for */
  waitingFor: string | null;
  prep: {
    plan: 'wipe' | 'recreate' | null;
    labels: string[];
    status: PrepStatus | null;
    detail: string | null;
    attempts: number;
  };
}

export interface SnapshotInfo {
  file: string;
  sha256: string;
  method: 'api' | 'raw' | 'file';
  /** the node it came from (null for a file the user gave) */
  node: string | null;
  /** that node's raft applied index when it was taken, as a decimal string, if known */
  raftAppliedIndex: string | null;
  revision: number | null;
  totalKeys: number | null;
  totalSize: number | null;
  hash: string | null;
  integrity: 'verified' | 'absent' | 'mismatch';
  kind: SnapshotKind;
  structure: 'ok' | 'damaged';
  usable: boolean;
  needsSkipHashCheck: boolean;
  problems: string[];
  bytes: number;
  /** when the data was taken (ms since epoch): now for a fresh snapshot, the file time for a given file */
  takenAt: number;
  /** `meta/storageVersion` of the etcd that wrote it (3.6+), null when absent; absent in folders saved before */
  storageVersion?: string | null;
  /** the raw copies compared when no member could say which data was freshest (one per node, failed ones too) */
  candidates?: SnapshotCandidate[];
  /** why this copy was chosen among the candidates, one sentence for the screen and the journal */
  choice?: string;
  /** the backup it was imported from (a talos-backup file or s3:// object), when it was one */
  source?: string;
  /** a file's or backup's revision against the newest data a member held when read in this incident */
  freshness?: SnapshotFreshnessView;
}

/** One member's raw copy as compared at step 3: its file and revision, or why it could not be used. */
export interface SnapshotCandidate {
  node: string;
  file: string | null;
  revision: number | null;
  error: string | null;
}

/** What the machine needs of src/backups/freshness.ts's verdict (the sentence is shown and journalled). */
export interface SnapshotFreshnessView {
  verdict: 'current' | 'older' | 'newer' | 'unknown';
  /** revisions the newest live data is ahead of the snapshot */
  behind: number;
  liveNode: string | null;
  sentence: string;
}

/** One way to get a snapshot, offered at step 3. */
export interface SnapshotOption {
  id: string;
  /** 'backup': a talos-backup file or an s3:// location (the newest under a prefix), decoded and verified first */
  method: 'api' | 'raw' | 'file' | 'backup';
  node: string | null;
  /** raw only: copy every one of these nodes' databases and use the highest revision (no member could say) */
  nodes?: string[];
  file: string | null;
  label: string;
  /** set once tried and failed (the sentence) */
  failed: string | null;
}

export type PromptKind = 'typed-address' | 'acknowledge' | 'yes-no' | 'choose';

export interface PromptOption {
  id: string;
  label: string;
  /** an override needs a reason, typed by the user and journalled */
  needsReason?: boolean;
  /** the option needs a line of text first (this is the field's label), sent as the choose event's `path` */
  ask?: string;
}

/** The one question the machine is waiting on. `recommended` is what autopilot answers (never an override). */
export interface Prompt {
  id: string;
  kind: PromptKind;
  /** what it asks, one sentence */
  question: string;
  /** why it asks / what happens on yes, one or two sentences */
  detail: string;
  /** typed-address: the exact node address the user must type */
  target?: string;
  /** acknowledge: the risk being accepted */
  risk?: string;
  options?: PromptOption[];
  recommended: RecoveryEvent | null;
}

export interface Attempt {
  action: string;
  node: string | null;
  count: number;
  max: number;
  lastError: string | null;
  /** when the next try starts (ms since epoch) */
  nextAt: number | null;
  /** failures where the node did not answer at all (rebooting, refusing connections): not counted against `max` */
  unanswered?: number;
  /** set while the call waits for its node to answer again (a reboot) before trying again */
  awaiting?: AwaitedNode | null;
}

/** A node that stopped answering (rebooting, refusing connections) and is asked a cheap call until it answers. */
export interface AwaitedNode {
  node: string;
  /** the line the screen shows: "waiting for <node> to answer again" */
  what: string;
  /** when the node was first found silent (ms since epoch) */
  since: number;
  /** past this, the call's failure is put to the user (since + timing.nodeAnswerTimeoutMs) */
  deadline: number;
  /** when the node was last asked (the actor's clock); past the deadline, the wait is over */
  checkedAt: number | null;
}

export interface Transfer {
  node: string;
  file: string;
  bytes: number;
  total: number;
  /** restarts from zero after a cut stream (Talos streams cannot resume) */
  restarts: number;
  /** what the screen says, for a transfer that is not step 8's upload (step 3's download, import or verify) */
  label?: string;
}

export interface WaitStatus {
  what: 'node back' | 'Preparing' | 'recovery';
  since: number;
  /** when the wait times out into a clear state (ms since epoch) */
  deadline: number;
  /** when the nodes were last read for it (ms since epoch); past the deadline, the wait has expired */
  checkedAt?: number;
  message: string;
  /** nodes still holding up the wait, with why */
  pending: { node: string; state: string | null; cause: string | null }[];
}

export interface GuardStop {
  rule: string;
  message: string;
  at: number;
}

export interface Override {
  what: string;
  reason: string;
  by: string;
  at: number;
}

export interface BootstrapState {
  node: string | null;
  skipHashCheck: boolean;
  uploadSent: boolean;
  uploaded: boolean;
  bootstrapSent: boolean;
  bootstrapAnswered: boolean;
  /** upload restarts so far (each failed upload starts again from zero, under a new operation id) */
  uploadRestarts?: number;
  /**
   * Which wipe-upload-Bootstrap round this is: absent or 0 the first; each failed restore the user chose to redo
   * (the node wiped again) adds one, and every destructive call of a later round has its own operation id (SAFETY
   * rule 6: a round's Reset, upload and Bootstrap are each sent once, and a resume never sends them again).
   */
  round?: number;
  /** the sentence of the failed restore that asked for the next round, shown under its question */
  restoreFailure?: string | null;
  /** when the round's node was seen to go down after its new wipe, and when last read while coming back */
  rewipeSince?: number | null;
  /** the new wipe was seen through: the node came back waiting for bootstrap */
  rewipeDone?: boolean;
  rewipeCheckedAt?: number | null;
}

export type Outcome =
  | 'recovered'
  | 'member-replaced'
  | 'nospace-cleared'
  | 'stopped-quorum-intact'
  | 'nothing-to-do'
  | 'stopped-by-user'
  | `failed: ${string}`;

export interface Timing {
  /** between live re-reads during waits */
  pollMs: number;
  /** a node coming back after wipe/re-create */
  nodeBackTimeoutMs: number;
  /** all nodes Preparing */
  preparingTimeoutMs: number;
  /** Running + healthy + members agreeing after bootstrap */
  verifyTimeoutMs: number;
  /** first retry delay; doubles each attempt */
  backoffMs: number;
  /** tries of a call whose node answers but refuses for now ("not ready yet"), before the failure is put to the user */
  maxAttempts: number;
  /**
   * How long a call waits for its node to answer again when the node does not answer at all (while it reboots nothing
   * listens on its address, so connections are refused with no gRPC status), before the failure is put to the user.
   * A reboot takes 45 s in drills and minutes on real hardware (firmware, disks, network).
   */
  nodeAnswerTimeoutMs: number;
}

export const DEFAULT_TIMING: Timing = {
  pollMs: 2000,
  nodeBackTimeoutMs: 10 * 60_000,
  preparingTimeoutMs: 10 * 60_000,
  verifyTimeoutMs: 15 * 60_000,
  backoffMs: 1000,
  maxAttempts: 5,
  nodeAnswerTimeoutMs: 10 * 60_000,
};

export interface RecoveryInput {
  /** the control-plane nodes (-n or the talosconfig's nodes) */
  nodes: string[];
  /** who answers the prompts: the OS user, or "autopilot" */
  operator: string;
  mode: 'recover' | 'drill';
  /** snapshot files the scenario (or routine backups) handed over, offered at step 3 */
  givenSnapshots?: string[];
  timing?: Partial<Timing>;
}

export interface RecoveryContext {
  nodes: string[];
  operator: string;
  mode: 'recover' | 'drill';
  timing: Timing;
  startedAt: number;
  steps: StepRow[];
  rows: Record<string, NodeRow>;
  observations: NodeView[];
  verdict: VerdictResult | null;
  volumes: Record<string, EtcdVolumeKind | null>;
  givenSnapshots: string[];
  snapshotOptions: SnapshotOption[];
  snapshot: SnapshotInfo | null;
  skipHashCheckAcknowledged: boolean;
  configs: Record<string, { file: string; source: 'live' | 'given' }>;
  plan: NodePlan[];
  /** init nodes still to convert */
  initQueue: string[];
  converted: string[];
  /** init nodes whose conversion was sent (it may have landed even when its answer was lost): no way back after one */
  convertsSent?: string[];
  /** nodes whose destructive step the user confirmed by typing the address */
  confirmed: string[];
  wiped: string[];
  prepared: string[];
  /** nodes left out by an explicit override (stuck in Waiting) */
  excluded: string[];
  bootstrap: BootstrapState;
  prompt: Prompt | null;
  /** counts every question asked: a question asked again (same id) is a new question */
  promptSeq: number;
  /** the prompt just answered (exit actions clear `prompt` before a transition's own actions run) */
  lastPrompt: Prompt | null;
  attempt: Attempt | null;
  transfer: Transfer | null;
  wait: WaitStatus | null;
  overrides: Override[];
  guardStops: GuardStop[];
  warnings: string[];
  /** the last refusal, shown under the prompt */
  notice: string | null;
  dataLossWindow: string | null;
  followUp: string[];
  outcome: Outcome | null;
  /** the procedure the assessment chose; absent in incident folders saved before there was more than one */
  procedure?: Procedure;
  /** member replacement (machines/replace-member), null until chosen */
  replace?: ReplaceMemberState | null;
  /** the NOSPACE playbook (machines/nospace), null until chosen */
  nospace?: NospaceState | null;
  /** the after-restore step (machines/after-restore), null until reached */
  afterRestore?: AfterRestoreState | null;
}

/** What a named guard is given (procedures define their guards outside setup.ts with this shape). */
export interface GuardArgs {
  context: RecoveryContext;
  event: RecoveryEvent;
}

export type RecoveryEvent =
  | { type: 'answer.yes' }
  | { type: 'answer.no' }
  | { type: 'choose'; option: string; path?: string }
  | { type: 'confirm'; address: string }
  /** accepts a prompt's risk; `reason` is what the person gave for accepting it, journalled with the decision */
  | { type: 'acknowledge'; reason?: string }
  | { type: 'override'; reason: string }
  | { type: 'retry' }
  | { type: 'skip' }
  | { type: 'abort' }
  | { type: 'resume' }
  /**
   * autopilot's scenario time limit: end the current wait as failed, naming what it waited for (`reason`: said by
   * autopilot from the live context, as the wait's exit clears what the machine would read)
   */
  | { type: 'give-up'; reason?: string }
  | { type: 'prep.update'; node: string; status: PrepStatus; detail: string; attempts: number }
  | { type: 'prep.done'; node: string; wiped: boolean }
  | { type: 'prep.failed'; node: string; error: string }
  | { type: 'upload.progress'; bytes: number; total: number; restarts: number }
  | { type: 'snapshot.progress'; label: string; bytes: number; total: number }
  | { type: 'upload.done' }
  /** `unanswered`: the node did not answer at all (rebooting, connection refused, unavailable) */
  | { type: 'upload.failed'; error: string; retryable: boolean; unanswered?: boolean }
  /** a pause (poll interval or backoff) is over */
  | { type: 'wake' }
  /** an effect that waits on a node says why, and until when (null: the wait is over) */
  | { type: 'effect.notice'; text: string | null };

/** What the machine emits for the journal (observations, decisions, confirmations, overrides, refusals, outcome). */
export interface JournalEmit {
  type: 'journal';
  entry: {
    kind: 'step' | 'observation' | 'decision' | 'confirmation' | 'override' | 'refusal' | 'warning' | 'outcome';
    step?: StepName;
    node?: string | null;
    what: string;
    by?: string;
    result?: string;
    data?: Record<string, unknown>;
  };
}

// ---- named actors: what src/commands supplies -------------------------------------------------------------------

/** Every action carries an operation id that is stable across a restore, so the effect layer can recognise an
 * interrupted call in the journal and check live state instead of re-sending it. */
export interface OpInput {
  opId: string;
}

export interface ConnectOutput {
  nodes: { node: string; ok: boolean; version: string | null; error: string | null }[];
}

export interface AssessOutput {
  observations: NodeView[];
  volumes: Record<string, EtcdVolumeKind | null>;
  /** the newest backup's age at each backup location given (issue 16), when the assessment was asked for them */
  backupAges?: { location: string; sentence: string; worrying: boolean }[];
}

export interface BackupOutput {
  configs: { node: string; file: string | null; source: 'live' | 'given' | null; error: string | null }[];
}
