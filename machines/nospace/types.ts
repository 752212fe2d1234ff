/** The NOSPACE playbook's part of the machine's context (JSON-serialisable, shaped for the screens). */

export interface NospaceMemberProgress {
  node: string;
  /** database size (bytes) before and after its defragmentation, when read */
  dbSizeBefore: number | null;
  dbSizeAfter: number | null;
  status: 'pending' | 'defragmenting' | 'done' | 'failed';
}

export interface NospaceState {
  /** followers first, the leader last */
  order: string[];
  members: NospaceMemberProgress[];
  disarmed: boolean;
}
