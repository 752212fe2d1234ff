/** The after-restore step's part of the machine's context: kubelet restarts on every node, then a health check. */

export interface AfterRestoreState {
  /** every node whose kubelet is restarted, workers included, with where the list came from */
  nodes: {
    node: string;
    machineType: string;
    status: 'pending' | 'restarting' | 'done' | 'failed';
    detail: string | null;
  }[];
  /** what is still wrong after the health check, one sentence each */
  stillWrong: string[];
}
