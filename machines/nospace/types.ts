/** The NOSPACE playbook's part of the machine's context (JSON-serialisable, shaped for the screens). */

export interface NospaceMemberProgress {
  node: string;
  /** the etcd member id (16 hex digits) this node's EtcdStatus reports, when read */
  memberId?: string | null;
  /** database size (bytes) before and after its defragmentation, when read */
  dbSizeBefore: number | null;
  dbSizeAfter: number | null;
  /** the part of the file etcd uses (dbSizeInUse) before and after: a defragment shrinks the file down to it */
  inUseBefore?: number | null;
  inUseAfter?: number | null;
  status: 'pending' | 'defragmenting' | 'done' | 'failed';
  /** why its defragment failed, in one sentence */
  error?: string | null;
}

/** An alarm as the playbook reads it back (the member that raised it, by node when known). */
export interface NospaceAlarm {
  memberId: string;
  node: string | null;
  alarm: 'NOSPACE' | 'CORRUPT';
}

export interface NospaceState {
  /** followers first, the leader last (re-read before every defragment: leadership may move) */
  order: string[];
  members: NospaceMemberProgress[];
  disarmed: boolean;
  /** the node the leader's member runs on, as last read; null when no member named one */
  leader?: string | null;
  /** the alarms read before the disarm, and those read back after it (an alarm back means still over quota) */
  alarmsBefore?: NospaceAlarm[];
  alarmsAfter?: NospaceAlarm[] | null;
  /** the alarms as last read (null when no member could list them) */
  alarmsNow?: NospaceAlarm[] | null;
  /** etcd's quota-backend-bytes as the machine config sets it (cluster.etcd.extraArgs), else etcd's default */
  quotaBytes?: number | null;
  quotaFromConfig?: boolean;
  /** members left out of the defragmentation by an explicit override (with its reason in `overrides`) */
  skipped?: string[];
}

/** One member's space as read live: EtcdStatus (sizes, ids) and EtcdAlarmList. */
export interface MemberSpace {
  node: string;
  /** the node's etcd answered EtcdStatus */
  answered: boolean;
  memberId: string | null;
  /** the leader's member id as this member sees it ("0000000000000000": none) */
  leader: string | null;
  dbSize: number | null;
  dbSizeInUse: number | null;
  /** the cluster's alarms as this member lists them; null when it could not list them */
  alarms: { memberId: string; alarm: 'NOSPACE' | 'CORRUPT' }[] | null;
  /** quota-backend-bytes from this node's machine config (cluster.etcd.extraArgs); null when not set or not read */
  quotaBytes: number | null;
  /** why the node could not be read, one sentence */
  error: string | null;
}

/** What a defragment answered: the member's sizes just before and just after. */
export interface DefragOutput {
  node: string;
  before: { dbSize: number | null; dbSizeInUse: number | null };
  after: { dbSize: number | null; dbSizeInUse: number | null };
  /** the journal showed it already done (a resume): not sent again */
  alreadyDone: boolean;
}

/** What a disarm answered: the alarms etcd disarmed. */
export interface DisarmOutput {
  node: string;
  disarmed: { memberId: string; alarm: 'NOSPACE' | 'CORRUPT' }[];
  alreadyDone: boolean;
}
