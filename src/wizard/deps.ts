/**
 * What every effect of a recovery is given: the Talos client, the incident folder and its journal, who answers, and
 * the persist barrier (the machine's state is on disk before an action leaves the process).
 */
import type { MaintenanceClient, TalosClient } from '../talos/types.js';
import type { Journal } from '../journal/journal.js';
import type { IncidentPaths } from '../journal/incident.js';

export interface EffectDeps {
  client: TalosClient;
  /** dials a blank node's maintenance API (server-only TLS); null where that is not possible */
  connectMaintenance: ((node: string) => Promise<MaintenanceClient>) | null;
  incident: IncidentPaths;
  journal: Journal;
  /** who answers (journalled with each action) */
  operator: string;
  /** deadline of the status calls of a live view: a node whose etcd does not answer must not stall the view */
  statusTimeoutMs?: number;
  /** run after every destructive call (a drill saves the simulated cluster here) */
  afterDestructive?: () => Promise<void>;
  /**
   * Resolves once the machine's current state (its children included) is written to state.json: every action
   * awaits it before it touches the journal or the cluster. The session supplies it; without a session (a test of one
   * effect) nothing is persisted and it resolves at once.
   */
  barrier?: () => Promise<void>;
  signal?: AbortSignal;
  /**
   * A sentence for the screen while an effect waits on a node for longer than a poll or two (why it waits, until
   * when); null clears it. The session shows it as the machine's notice.
   */
  notice?: (text: string | null) => void;
}

export interface EffectTiming {
  pollMs: number;
  nodeBackTimeoutMs: number;
}

/** The deadline of one status round of the live views. */
export const statusTimeout = (deps: EffectDeps): number => deps.statusTimeoutMs ?? 4000;

/** Waits for the persist barrier (see EffectDeps.barrier). */
export const persisted = (deps: EffectDeps): Promise<void> => deps.barrier?.() ?? Promise.resolve();
