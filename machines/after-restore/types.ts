/** The after-restore step's part of the machine's context: kubelet restarts on every node, then a health check. */

export type AfterRestoreRole = 'controlplane' | 'worker';

/** One node whose kubelet the step restarts (control-plane nodes and workers). */
export interface AfterRestoreNode {
  node: string;
  machineType: string;
  hostname?: string | null;
  status: 'pending' | 'restarting' | 'done' | 'failed';
  /** the node's reply, or why its restart failed (one sentence) */
  detail: string | null;
}

export interface AfterRestoreState {
  /** every node whose kubelet is restarted, workers included, control-plane nodes first */
  nodes: AfterRestoreNode[];
  /** where the list came from, one sentence for the screen and the journal (absent in folders saved before) */
  source?: string;
  /** the workers were read from the cluster's discovery members; false: only the control-plane nodes are known */
  workersListed?: boolean;
  /**
   * when discovery named no workers: the user typed their addresses, or chose the control-plane nodes only (null or
   * absent until answered; absent in folders saved before the question existed)
   */
  workersAnswer?: 'typed' | 'control-plane-only' | null;
  /** the workers' addresses the user typed, kept across a resume's new listing */
  typedWorkers?: string[];
  /** what the user answered to the restart question (null until answered) */
  decision?: 'restart' | 'declined' | null;
  /** what is still wrong after the health check, one sentence each */
  stillWrong: string[];
}

/** What the listing actor found: every node, control-plane first, and where the list came from. */
export interface AfterRestoreListing {
  nodes: { node: string; machineType: AfterRestoreRole | string; hostname: string | null }[];
  source: string;
  workersListed: boolean;
}

/** One node as the health check read it (pure data; machines/after-restore/health.ts says what is wrong). */
export interface HealthReading {
  node: string;
  role: AfterRestoreRole;
  /** why apid did not answer Version on this node; null when it answered */
  apidError: string | null;
  /** the kubelet service as ServiceList gives it; null when the list could not be read or has no kubelet */
  kubelet: { state: string; healthy: boolean | null; message: string | null } | null;
  /** why the service list could not be read; null when it was */
  servicesError: string | null;
  /** control-plane nodes only: the etcd service, its health and this node's member list (ids) */
  etcd: { service: string | null; healthy: boolean | null; members: string[] | null; error: string | null } | null;
}
