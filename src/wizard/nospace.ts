/**
 * The NOSPACE playbook's effects (issue 15): the named actors machines/nospace/actors.ts declares, over the Talos client.
 * Defragment and AlarmDisarm are destructive (SAFETY.md): each goes through the ledger (journalled before it is sent
 * and after it is answered, never sent twice: a resume after a crash checks the node first).
 */
import { fromPromise } from 'xstate';
import { parseAllDocuments } from 'yaml';
import type { EtcdMemberAlarm, EtcdMemberStatus, NodeResult } from '../talos/types.js';
import { describeFailure } from '../talos/errors.js';
import type { DefragOutput, DisarmOutput, MemberSpace } from '../../machines/nospace/types.js';
import { persisted, statusTimeout, type EffectDeps, type EffectTiming } from './deps.js';
import { ActionError, answerLost, failureError, ledgered, unwrapDestructive, witnessOf } from './ledger.js';

/**
 * How long one defragment may take. etcd rewrites the whole file (a few seconds per GiB on an SSD, much more on a slow
 * disk) and Talos answers only when it is done (siderolabs/talos
 * internal/app/machined/internal/server/v1alpha1/v1alpha1_server.go@v1.13.9:2146-2170).
 */
const DEFRAG_TIMEOUT_MS = 15 * 60_000;

type Alarm = { memberId: string; alarm: 'NOSPACE' | 'CORRUPT' };
const realAlarms = (alarms: readonly EtcdMemberAlarm[]): Alarm[] =>
  alarms.filter((a): a is Alarm => a.alarm !== 'NONE');

/** A byte count of EtcdStatus as a JS number (sizes stay far below 2^53). */
const size = (n: bigint | null | undefined): number | null => (n === null || n === undefined ? null : Number(n));

/**
 * quota-backend-bytes as the machine config sets it (cluster.etcd.extraArgs, a string or a list of strings:
 * pkg/machinery/config/types/v1alpha1/v1alpha1_types.go@v1.13.9:1481), or null. Only that value is read: the config
 * holds the cluster's secrets and is neither kept nor journalled here.
 */
export function quotaFromConfig(yaml: string): number | null {
  try {
    for (const doc of parseAllDocuments(yaml)) {
      if (!('toJS' in doc) || doc.errors.length > 0) continue;
      const js = doc.toJS() as { cluster?: { etcd?: { extraArgs?: Record<string, unknown> } } } | null;
      const raw = js?.cluster?.etcd?.extraArgs?.['quota-backend-bytes'];
      const value: unknown = Array.isArray(raw) ? raw.at(-1) : raw;
      const n = typeof value === 'number' ? value : typeof value === 'string' ? Number(value.trim()) : NaN;
      if (Number.isFinite(n) && n > 0) return n;
    }
  } catch {
    // an unreadable config says nothing about the quota: etcd's default is assumed and said so
  }
  return null;
}

/** Every member's space: EtcdStatus (sizes, ids, leader) and EtcdAlarmList, and with `quota` the configured quota. */
export async function readSpace(deps: EffectDeps, input: { nodes: string[]; quota: boolean }): Promise<MemberSpace[]> {
  const timeoutMs = statusTimeout(deps);
  const [statuses, alarms, quotas] = await Promise.all([
    deps.client.etcdStatus(input.nodes, { timeoutMs }),
    deps.client.etcdAlarmList(input.nodes, { timeoutMs }),
    input.quota
      ? Promise.all(input.nodes.map((n) => deps.client.machineConfig(n, { timeoutMs })))
      : Promise.resolve([] as NodeResult<string>[]),
  ]);
  const readings = input.nodes.map<MemberSpace>((node) => {
    const s = statuses.find((r) => r.node === node);
    const a = alarms.find((r) => r.node === node);
    const c = quotas.find((r) => r.node === node);
    const status: EtcdMemberStatus | null = s?.ok ? s.value : null;
    return {
      node,
      answered: status !== null,
      memberId: status?.memberId ?? null,
      leader: status?.leader ?? null,
      dbSize: size(status?.dbSize),
      dbSizeInUse: size(status?.dbSizeInUse),
      alarms: a?.ok ? realAlarms(a.value) : null,
      quotaBytes: c?.ok ? quotaFromConfig(c.value) : null,
      error: s && !s.ok ? describeFailure(node, s.error, 'etcd status') : null,
    };
  });
  if (!readings.some((r) => r.answered))
    throw new ActionError(
      `No control-plane node's etcd answered its status (${readings[0]?.error ?? 'no node given'}); check that the nodes are up, then try again.`,
      true,
    );
  return readings;
}

async function statusOf(deps: EffectDeps, node: string, timeoutMs: number): Promise<EtcdMemberStatus | null> {
  const r = await deps.client.etcdStatus([node], { timeoutMs });
  return r[0]?.ok ? r[0].value : null;
}

/** Reads the node's status until it answers (a member answers again once its defragment is over), or null. */
async function statusWhenBack(deps: EffectDeps, timing: EffectTiming, node: string): Promise<EtcdMemberStatus | null> {
  const end = Date.now() + timing.nodeBackTimeoutMs;
  for (;;) {
    const s = await statusOf(deps, node, statusTimeout(deps)).catch(() => null);
    if (s || Date.now() > end || deps.signal?.aborted) return s;
    await new Promise((r) => setTimeout(r, timing.pollMs));
  }
}

/**
 * Whether a defragment sent before a crash happened: the member's file is smaller than when it was sent, or shrank to
 * what it uses (etcd rewrites the file with only the pages in use: backend.go@v3.6.4:466-483).
 */
export function defragLanded(witness: Record<string, unknown> | null, now: EtcdMemberStatus): boolean {
  const before = typeof witness?.dbSize === 'number' ? witness.dbSize : null;
  const dbSize = Number(now.dbSize);
  return (before !== null && dbSize < before) || dbSize <= Number(now.dbSizeInUse);
}

/** EtcdDefragment on one node, with its sizes just before (journalled as the witness) and just after. */
export async function defragmentMember(
  deps: EffectDeps,
  timing: EffectTiming,
  input: { node: string; opId: string },
): Promise<DefragOutput> {
  const { node, opId } = input;
  await persisted(deps);
  // a member still busy with a defragment sent before a crash does not answer: its sizes are then not known yet
  const before = await statusOf(deps, node, statusTimeout(deps)).catch(() => null);
  let alreadyDone = false;
  await ledgered(deps, {
    opId,
    action: 'defragment etcd (EtcdDefragment: this member only)',
    node,
    destructive: true,
    answered: () => {
      alreadyDone = true;
    },
    witness: () => ({ sentAt: Date.now(), dbSize: size(before?.dbSize), dbSizeInUse: size(before?.dbSizeInUse) }),
    send: async () => {
      const r = await deps.client.etcdDefragment(node, { timeoutMs: DEFRAG_TIMEOUT_MS });
      if (r.ok) return;
      // a cut connection or a deadline: the member may still be rewriting its file; the next try checks it first
      const e = failureError(node, r.error, 'etcd defragment');
      throw new ActionError(e.message, e.retryable, answerLost(r.error) || r.error.codeName === 'Unavailable');
    },
    reconcile: async (witness) => {
      const now = await statusWhenBack(deps, timing, node);
      if (!now) return null;
      if (!defragLanded(witness, now)) return null;
      alreadyDone = true;
      return undefined;
    },
    describe: () => 'defragmented',
  });
  const after = await statusWhenBack(deps, timing, node);
  const witness = witnessOf(deps, opId);
  const sentSize = (k: 'dbSize' | 'dbSizeInUse') => (typeof witness?.[k] === 'number' ? (witness[k] as number) : null);
  return {
    node,
    before: {
      dbSize: sentSize('dbSize') ?? size(before?.dbSize),
      dbSizeInUse: sentSize('dbSizeInUse') ?? size(before?.dbSizeInUse),
    },
    after: { dbSize: size(after?.dbSize), dbSizeInUse: size(after?.dbSizeInUse) },
    alreadyDone,
  };
}

/**
 * EtcdAlarmDisarm through one node: Talos sends etcd an empty AlarmMember, and etcd's client then disarms every active
 * alarm of the cluster (v1alpha1_server.go@v1.13.9:2113-2140; etcd-io/etcd client/v3/maintenance.go@v3.6.4:161).
 */
export async function disarmAlarms(deps: EffectDeps, input: { node: string; opId: string }): Promise<DisarmOutput> {
  const { node, opId } = input;
  const listNow = async (): Promise<Alarm[] | null> => {
    const r = await deps.client.etcdAlarmList([node], { timeoutMs: statusTimeout(deps) });
    return r[0]?.ok ? realAlarms(r[0].value) : null;
  };
  return ledgered<DisarmOutput>(deps, {
    opId,
    action: 'disarm the etcd alarms (EtcdAlarmDisarm)',
    node,
    destructive: true,
    answered: () => ({ node, disarmed: [], alreadyDone: true }),
    send: async () => ({
      node,
      // an answer lost: the alarms may be disarmed; the next try lists them first
      disarmed: realAlarms(unwrapDestructive(await deps.client.etcdAlarmDisarm(node), 'etcd alarm disarm')),
      alreadyDone: false,
    }),
    // sent before a crash? no alarm listed now means it landed (a NOSPACE back is the check step's to say)
    reconcile: async () => {
      const now = await listNow().catch(() => null);
      return now !== null && now.length === 0 ? { node, disarmed: [], alreadyDone: true } : null;
    },
    describe: (o) => `disarmed ${o.disarmed.map((a) => `${a.alarm} ${a.memberId}`).join(', ') || 'nothing'}`,
  });
}

/** The NOSPACE playbook's named actors, given to the machine with the recovery's own (src/wizard/actors.ts). */
export function nospaceActors(deps: EffectDeps, timing: EffectTiming) {
  return {
    readSpace: fromPromise<MemberSpace[], { nodes: string[]; quota: boolean }>(({ input }) => readSpace(deps, input)),
    defragmentMember: fromPromise<DefragOutput, { node: string; opId: string }>(({ input }) =>
      defragmentMember(deps, timing, input),
    ),
    disarmAlarms: fromPromise<DisarmOutput, { node: string; opId: string }>(({ input }) => disarmAlarms(deps, input)),
  };
}
