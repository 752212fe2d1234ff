/**
 * The NOSPACE playbook's decisions as pure functions of what the members said (no I/O, no clock): which member leads,
 * the order of the defragments (followers first, the leader last), the progress line, the bytes reclaimed and the
 * advice on etcd's quota.
 *
 * Why the leader goes last: a defragment blocks the member while it rewrites its file (etcd-io/etcd
 * server/storage/backend/backend.go@v3.6.4:466-483: defrag holds the backend's write and read locks), and Talos runs it on the local member
 * only (siderolabs/talos internal/app/machined/internal/server/v1alpha1/v1alpha1_server.go@v1.13.9:2146-2170). A
 * blocked follower costs nothing while the other two keep quorum; a blocked leader stalls every write until it is done
 * or leadership moves, so it goes once everything else is finished.
 */
import { formatBytes } from '../../src/etcd/format.js';
import type { NospaceAlarm, MemberSpace, NospaceMemberProgress, NospaceState } from './types.js';

const NO_LEADER = '0000000000000000';

/**
 * etcd's quota when none is set: 2 GiB (etcd-io/etcd server/storage/quota.go@v3.6.4:30); it suggests at most 8 GiB
 * (quota.go@v3.6.4:33). Talos sets none of its own: it passes cluster.etcd.extraArgs on as they are
 * (siderolabs/talos internal/app/machined/pkg/controllers/etcd/config.go@v1.13.9:70-76).
 */
export const ETCD_DEFAULT_QUOTA = 2 * 1024 * 1024 * 1024;
export const ETCD_MAX_SUGGESTED_QUOTA = 8 * 1024 * 1024 * 1024;

/** In use above this share of the quota after a defragment, the database fills again soon: raise the quota. */
const NEAR_QUOTA = 0.8;

/** Bytes as people read them (1.5 MiB, src/etcd's own formatter); `?` when the size was not read. */
export function bytes(n: number | null | undefined): string {
  return n === null || n === undefined ? '?' : formatBytes(n);
}

/**
 * The node whose member leads, by the majority of the members that answered (each EtcdStatus names the leader's
 * member id); null when none names one that maps to a node read here.
 */
export function leaderNode(readings: readonly MemberSpace[]): string | null {
  const votes = new Map<string, number>();
  for (const r of readings)
    if (r.answered && r.leader && r.leader !== NO_LEADER) votes.set(r.leader, (votes.get(r.leader) ?? 0) + 1);
  const [id] = [...votes.entries()].sort((a, b) => b[1] - a[1])[0] ?? [];
  return readings.find((r) => r.memberId !== null && r.memberId === id)?.node ?? null;
}

/** Followers first (in the order the nodes were given), the leader last. */
export function defragOrder(nodes: readonly string[], leader: string | null): string[] {
  return [...nodes.filter((n) => n !== leader), ...nodes.filter((n) => n === leader)];
}

/** Every alarm any member listed, once each, named by node where a member id maps to one. */
export function alarmsOf(readings: readonly MemberSpace[]): NospaceAlarm[] {
  const seen = new Map<string, NospaceAlarm>();
  for (const r of readings)
    for (const a of r.alarms ?? [])
      seen.set(`${a.memberId}/${a.alarm}`, {
        ...a,
        node: readings.find((x) => x.memberId === a.memberId)?.node ?? null,
      });
  return [...seen.values()];
}

/**
 * A fresh read folded into the playbook's state: a member not defragmented yet takes its live sizes as its "before";
 * one already done keeps what it had (its "after" was read right after its own defragment). The order is computed
 * anew: leadership may have moved since the last read.
 */
export function withReadings(
  state: NospaceState | null,
  nodes: readonly string[],
  readings: readonly MemberSpace[],
): NospaceState {
  const leader = leaderNode(readings);
  const members = nodes.map<NospaceMemberProgress>((node) => {
    const prior = state?.members.find((m) => m.node === node);
    const live = readings.find((r) => r.node === node);
    // done: its "after" was read right after its own defragment; defragmenting: the process stopped mid-call, and
    // its "before" must stay what it was when the call was sent (the ledger decides from the journal what happened)
    if (prior && (prior.status === 'done' || prior.status === 'defragmenting'))
      return { ...prior, memberId: live?.memberId ?? prior.memberId ?? null };
    return {
      node,
      memberId: live?.memberId ?? prior?.memberId ?? null,
      dbSizeBefore: live?.dbSize ?? prior?.dbSizeBefore ?? null,
      inUseBefore: live?.dbSizeInUse ?? prior?.inUseBefore ?? null,
      dbSizeAfter: null,
      inUseAfter: null,
      status: prior?.status === 'failed' ? 'failed' : 'pending',
      error: prior?.error ?? null,
    };
  });
  const quotas = readings.map((r) => r.quotaBytes).filter((q): q is number => q !== null);
  return {
    order: defragOrder(nodes, leader),
    members,
    disarmed: state?.disarmed ?? false,
    leader,
    alarmsBefore: state?.alarmsBefore ?? alarmsOf(readings),
    alarmsAfter: state?.alarmsAfter ?? null,
    alarmsNow: readings.some((r) => r.alarms !== null) ? alarmsOf(readings) : null,
    quotaBytes: quotas.length ? Math.min(...quotas) : (state?.quotaBytes ?? null),
    quotaFromConfig: quotas.length > 0 || (state?.quotaFromConfig ?? false),
    skipped: state?.skipped ?? [],
  };
}

const finished = (state: NospaceState, m: NospaceMemberProgress): boolean =>
  m.status === 'done' || (state.skipped ?? []).includes(m.node);

/** The next member to defragment: the first of the order not finished (done, or skipped by an override). */
export function nextToDefragment(state: NospaceState | null | undefined): string | null {
  if (!state) return null;
  return (
    state.order.find(
      (n) =>
        !finished(
          state,
          state.members.find((m) => m.node === n)!,
        ),
    ) ?? null
  );
}

/** The member a failed or declined defragment is about: the one that failed, else the next in the order. */
export function blockedNode(state: NospaceState | null | undefined): string | null {
  return state?.members.find((m) => m.status === 'failed')?.node ?? nextToDefragment(state);
}

/** The member whose defragment was confirmed and not answered yet (a resume continues it without asking again). */
export const defragmentingNode = (state: NospaceState | null | undefined): string | null =>
  state?.members.find((m) => m.status === 'defragmenting')?.node ?? null;

/** Every member was defragmented (or left out by an explicit override). */
export const allDefragmented = (state: NospaceState | null | undefined): boolean =>
  Boolean(state && state.members.length > 0 && state.members.every((m) => finished(state, m)));

/** The state with one member's progress changed. */
export function withMember(state: NospaceState, node: string, change: Partial<NospaceMemberProgress>): NospaceState {
  return { ...state, members: state.members.map((m) => (m.node === node ? { ...m, ...change } : m)) };
}

/** Bytes returned to the filesystem by the defragments done so far. */
export const reclaimedBytes = (state: NospaceState | null | undefined): number =>
  (state?.members ?? []).reduce(
    (sum, m) =>
      m.status === 'done' && m.dbSizeBefore !== null && m.dbSizeAfter !== null
        ? sum + Math.max(0, m.dbSizeBefore - m.dbSizeAfter)
        : sum,
    0,
  );

/** One member's line: "10.5.0.2 1.1 MiB → 312.0 KiB". */
export function memberLine(m: NospaceMemberProgress): string {
  if (m.status === 'done') return `${m.node} ${bytes(m.dbSizeBefore)} → ${bytes(m.dbSizeAfter)}`;
  if (m.status === 'defragmenting') return `${m.node} defragmenting (${bytes(m.dbSizeBefore)})…`;
  if (m.status === 'failed') return `${m.node} failed`;
  return `${m.node} ${bytes(m.dbSizeBefore)}`;
}

/** The step's progress as its row shows it, in the order the members go. */
export function progressLine(state: NospaceState): string {
  const done = state.members.filter((m) => m.status === 'done').length;
  const parts = state.order.map((n) => {
    const m = state.members.find((x) => x.node === n)!;
    const line = memberLine(m);
    const skipped = (state.skipped ?? []).includes(n) ? ' (left out)' : '';
    return `${line}${n === state.leader ? ' (leader)' : ''}${skipped}`;
  });
  return `${done}/${state.members.length} defragmented: ${parts.join('; ')}`;
}

/** The largest in-use size any member reported after its defragment (before, for one not defragmented). */
export function largestInUse(state: NospaceState): number | null {
  const sizes = state.members
    .map((m) => (m.status === 'done' ? (m.inUseAfter ?? m.dbSizeAfter) : m.inUseBefore))
    .filter((s): s is number => s !== null && s !== undefined);
  return sizes.length ? Math.max(...sizes) : null;
}

/** The quota the members run with: the machine config's, else etcd's default. */
export const effectiveQuota = (state: NospaceState): number => state.quotaBytes ?? ETCD_DEFAULT_QUOTA;

/** A quota to suggest: double what is in use, rounded up to a whole GiB, at least the present one, at most 8 GiB. */
export function suggestedQuota(state: NospaceState): number {
  const gib = 1024 * 1024 * 1024;
  const inUse = largestInUse(state) ?? 0;
  const doubled = Math.ceil((inUse * 2) / gib) * gib;
  return Math.min(ETCD_MAX_SUGGESTED_QUOTA, Math.max(doubled, effectiveQuota(state) * 2, gib));
}

/**
 * The machine-config patch that sets the quota, exactly as the user would add it: cluster.etcd.extraArgs is passed to
 * etcd as flags (config.go@v1.13.9:70-76; the field: pkg/machinery/config/types/v1alpha1/v1alpha1_types.go@v1.13.9:1481).
 */
export function quotaPatchYaml(quota: number): string[] {
  return ['cluster:', '  etcd:', '    extraArgs:', `      quota-backend-bytes: "${quota}"`];
}

/**
 * What to do about the quota, as follow-up lines: how full the database is after the defragments and, when it is
 * near its quota, the YAML to add and how it takes effect. etcd reads its flags when its service starts
 * (siderolabs/talos internal/app/machined/pkg/system/services/etcd.go@v1.13.9:89-145 builds them in PreFunc), so a
 * changed quota needs each control-plane node's etcd restarted: one node at a time.
 */
export function quotaAdvice(state: NospaceState, force = false): { near: boolean; lines: string[] } {
  const quota = effectiveQuota(state);
  const inUse = largestInUse(state);
  const source = state.quotaFromConfig ? 'set in the machine config' : "etcd's default: none is set";
  const share = inUse === null ? null : inUse / quota;
  const usage =
    inUse === null
      ? `The database quota is ${bytes(quota)} (${source}).`
      : `The largest member now uses ${bytes(inUse)} of its ${bytes(quota)} quota (${Math.round((share ?? 0) * 100)}%, ${source}).`;
  if (!force && share !== null && share < NEAR_QUOTA)
    return {
      near: false,
      lines: [
        usage,
        'Most of the file was free pages: find what wrote so much (Events, a controller in a loop) and defragment regularly, e.g. `talosctl -n <node> etcd defrag` one member at a time.',
      ],
    };
  const suggested = suggestedQuota(state);
  return {
    near: true,
    lines: [
      `${usage} It will fill again soon: raise quota-backend-bytes to ${bytes(suggested)} (etcd suggests at most 8 GiB), or delete data.`,
      `Add to every control-plane node's machine config (e.g. a file quota.yaml for \`talosctl -n <node> patch machineconfig --patch @quota.yaml\`): ${quotaPatchYaml(suggested).join(' / ')}`,
      'etcd reads the quota when its service starts: reboot the control-plane nodes one at a time afterwards (`talosctl -n <node> reboot`), waiting for etcd to be healthy before the next.',
    ],
  };
}

/** The alarms read back after the disarm that are NOSPACE: the database is still over the quota. */
export const alarmsBack = (state: NospaceState | null | undefined): NospaceAlarm[] =>
  (state?.alarmsAfter ?? []).filter((a) => a.alarm === 'NOSPACE');

/** Names of the members an alarm list covers: node where known, else the member id. */
export const alarmWho = (alarms: readonly NospaceAlarm[]): string =>
  [...new Set(alarms.map((a) => a.node ?? a.memberId))].join(', ');
