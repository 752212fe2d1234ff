/**
 * The recovery machine's effects: every named actor of machines/recovery.ts, implemented with the real Talos client,
 * the snapshot toolkit and the incident folder. This is the only place where the procedure touches the cluster or
 * the disk.
 *
 * Three rules hold for every action:
 * - it starts only after the machine's new state has been persisted (the barrier: the state.json subscriber runs
 *   synchronously after the transition, before the next macrotask);
 * - it is journalled before it is sent and after it is answered, under an operation id that survives a restore;
 * - an operation the journal shows as sent but never answered (the process died in between) is first checked against
 *   what the node reports now, and is sent again only when the node shows it did not happen.
 */
import { createHash } from 'node:crypto';
import {
  createReadStream,
  existsSync,
  openSync,
  closeSync,
  writeSync,
  fsyncSync,
  readFileSync,
  statSync,
} from 'node:fs';
import { basename, join } from 'node:path';
import { fromCallback, fromPromise } from 'xstate';
import { parseDocument } from 'yaml';
import type { MaintenanceClient, NodeResult, RpcFailure, ServiceInfo, TalosClient } from '../talos/types.js';
import { classifyFailure, describeFailure, isRetryable } from '../talos/errors.js';
import { acquireSnapshot } from '../etcd/acquire.js';
import { inspectSnapshot } from '../etcd/inspect.js';
import type { SnapshotReport } from '../etcd/types.js';
import { bootstrapAlreadyDone } from '../../machines/decisions.js';
import type {
  AssessOutput,
  BackupOutput,
  ConnectOutput,
  NodeView,
  RecoveryEvent,
  SnapshotInfo,
  SnapshotOption,
} from '../../machines/recovery.js';
import { ledgerState, readJournal, type Journal } from '../journal/journal.js';
import type { IncidentPaths } from '../journal/incident.js';

/** Read size of the snapshot file streamed to EtcdRecover (the client re-cuts it into its own chunk size). */
const UPLOAD_READ_BYTES = 1024 * 1024;

/** An action's failure as the machine reads it (machines/errors.ts): a sentence, and whether to try again. */
export class ActionError extends Error {
  constructor(
    message: string,
    readonly retryable = false,
    readonly mayHaveLanded = false,
  ) {
    super(message);
    this.name = 'ActionError';
  }
}

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
  signal?: AbortSignal;
}

/** Talos keeps this many events per service; a full list may have lost its oldest (boot-time) entries. */
const SERVICE_EVENTS_KEPT = 64;

/** The node rebooted after `sentAt`: its etcd service history (which restarts at every boot) begins later. */
function rebootedSince(v: NodeView | null, sentAt: unknown): boolean {
  return typeof sentAt === 'number' && v?.etcdHistoryStart != null && v.etcdHistoryStart > sentAt;
}

/** Lets the machine's transition finish (and state.json be written) before the action leaves the process. */
const persisted = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function failureError(node: string, failure: RpcFailure, action: string): ActionError {
  return new ActionError(describeFailure(node, failure, action), isRetryable(failure));
}

const messageOf = (error: unknown): string =>
  error instanceof Error ? (error.message.split('\n')[0] ?? 'failed') : String(error);

// ---- live views -----------------------------------------------------------------------------------------------

const byNode = <T>(results: NodeResult<T>[]): Map<string, NodeResult<T>> => new Map(results.map((r) => [r.node, r]));

async function settle<T>(p: Promise<NodeResult<T>[]>, nodes: string[]): Promise<NodeResult<T>[]> {
  try {
    return await p;
  } catch (error) {
    const failure: RpcFailure = { code: 14, codeName: 'Unavailable', message: messageOf(error) };
    return nodes.map((node) => ({ node, ok: false as const, error: failure }));
  }
}

/** Every node's local view, side by side (PRODUCT.md §1 step 2). Never throws: a node that cannot be asked says so. */
export async function observeNodes(deps: EffectDeps, nodes: string[]): Promise<NodeView[]> {
  if (nodes.length === 0) return [];
  const { client } = deps;
  const short = { timeoutMs: deps.statusTimeoutMs ?? 4000 };
  const versions = byNode(await settle(client.version(nodes, short), nodes));
  const up = nodes.filter((n) => versions.get(n)?.ok);
  const [services, members, statuses, types] = await Promise.all([
    settle(client.serviceList(up, short), up).then(byNode),
    settle(client.etcdMemberList(up, true, short), up).then(byNode),
    settle(client.etcdStatus(up, short), up).then(byNode),
    Promise.all(up.map((n) => client.machineType(n, short).catch(() => null))).then(
      (rs) => new Map(rs.filter((r): r is NodeResult<never> => r !== null).map((r) => [r.node, r])),
    ),
  ]);
  return Promise.all(
    nodes.map(async (node): Promise<NodeView> => {
      const v = versions.get(node);
      if (!v || !v.ok) {
        const blank = await probeMaintenance(deps, node);
        return {
          node,
          hostname: null,
          reachable: false,
          maintenance: blank,
          machineType: 'unknown',
          etcdService: null,
          etcdHealthy: null,
          members: null,
          membersError: null,
          status: null,
          statusError: null,
          error: blank
            ? `${node} is a blank machine in maintenance mode`
            : v
              ? describeFailure(node, v.error)
              : 'no answer',
          talosVersion: null,
        };
      }
      const svc = services.get(node);
      const etcd: ServiceInfo | undefined = svc?.ok ? svc.value.find((s) => s.id === 'etcd') : undefined;
      const m = members.get(node);
      const s = statuses.get(node);
      const t = types.get(node) as NodeResult<'init' | 'controlplane' | 'worker' | 'unknown'> | undefined;
      const events = etcd?.events.map((e) => e.msg) ?? [];
      return {
        node,
        hostname: null,
        reachable: true,
        maintenance: false,
        machineType: t?.ok ? t.value : 'unknown',
        etcdService: etcd?.state ?? null,
        etcdHealthy: etcd ? (etcd.health.unknown ? null : etcd.health.healthy) : null,
        etcdLastEvent: events.at(-1) ?? null,
        etcdEvents: events.slice(-8),
        etcdHistoryStart: etcd && etcd.events.length < SERVICE_EVENTS_KEPT ? (etcd.events[0]?.ts ?? null) : null,
        members: m?.ok ? m.value : null,
        membersError: m && !m.ok ? m.error.message : null,
        status: s?.ok
          ? {
              memberId: s.value.memberId,
              leader: s.value.leader,
              errors: s.value.errors,
              raftAppliedIndex: s.value.raftAppliedIndex.toString(),
            }
          : null,
        statusError: s && !s.ok ? s.error.message : null,
        error: null,
        talosVersion: v.value.tag,
      };
    }),
  );
}

async function probeMaintenance(deps: EffectDeps, node: string): Promise<boolean> {
  if (!deps.connectMaintenance) return false;
  let m: MaintenanceClient | null = null;
  try {
    m = await deps.connectMaintenance(node);
    await m.machineType({ timeoutMs: 3000 });
    return true;
  } catch {
    return false;
  } finally {
    m?.close();
  }
}

// ---- the journal ledger ----------------------------------------------------------------------------------------

type ActionSpec<T> = ActionSpecCommon<T> &
  (
    | { destructive: false }
    | {
        destructive: true;
        /**
         * The value to go on with when the journal already holds the node's answer: a crash can land after the
         * answer was journalled but before the machine saved the step it led to, and a destructive call is never
         * sent twice (SAFETY rule 6).
         */
        answered: () => T;
      }
  );

interface ActionSpecCommon<T> {
  opId: string;
  action: string;
  node: string | null;
  /** the call itself */
  send: () => Promise<T>;
  /** what the node looked like just before sending, journalled with the "before" line (no secrets) */
  witness?: () => Record<string, unknown>;
  /**
   * For an interrupted operation: what the node shows now, compared with the witness journalled before it was sent.
   * Return a value when it happened, null to send again.
   */
  reconcile?: (witness: Record<string, unknown> | null) => Promise<T | null>;
  describe?: (value: T) => string;
}

/** Journals before and after, and never re-sends an operation the journal shows as sent without checking first. */
async function ledgered<T>(deps: EffectDeps, spec: ActionSpec<T>): Promise<T> {
  await persisted();
  const records = readJournal(deps.incident.dir);
  const state = ledgerState(records, spec.opId);
  if (state === 'done' && spec.destructive) {
    deps.journal.append({
      kind: 'observation',
      node: spec.node,
      what: `${spec.action}: the journal shows the node already answered it`,
      result: 'not sent again',
      data: { opId: spec.opId },
    });
    return spec.answered();
  }
  if (state === 'interrupted' && spec.reconcile) {
    const sent = [...records]
      .reverse()
      .find((r) => r.kind === 'action' && r.opId === spec.opId && r.phase === 'before');
    const found = await spec.reconcile(sent?.data ?? null);
    deps.journal.append({
      kind: 'action',
      phase: 'after',
      opId: spec.opId,
      node: spec.node,
      what: `${spec.action} (interrupted earlier; checked live state)`,
      ok: found !== null,
      result:
        found !== null ? 'the node shows it happened: not sent again' : 'the node shows it did not happen: sending it',
    });
    if (found !== null) return found;
  }
  // Recorded just before sending: a resume after a crash compares the node with it.
  const witness = spec.witness ? spec.witness() : null;
  deps.journal.append({
    kind: 'action',
    phase: 'before',
    opId: spec.opId,
    node: spec.node,
    what: spec.action,
    by: deps.operator,
    ...(witness ? { data: witness } : {}),
  });
  try {
    const value = await spec.send();
    if (spec.destructive) await deps.afterDestructive?.();
    deps.journal.append({
      kind: 'action',
      phase: 'after',
      opId: spec.opId,
      node: spec.node,
      what: spec.action,
      ok: true,
      result: spec.describe ? spec.describe(value) : 'ok',
    });
    return value;
  } catch (error) {
    if (spec.destructive) await deps.afterDestructive?.().catch(() => undefined);
    const e = error instanceof ActionError ? error : new ActionError(messageOf(error), false, spec.destructive);
    deps.journal.append({
      kind: 'action',
      phase: 'after',
      opId: spec.opId,
      node: spec.node,
      what: spec.action,
      ok: false,
      result: e.message,
      // a call whose answer was lost stays "interrupted" in the ledger: the next attempt checks before sending
      ...(e.mayHaveLanded ? { data: { mayHaveLanded: true } } : {}),
    });
    if (e.mayHaveLanded)
      deps.journal.append({
        kind: 'action',
        phase: 'before',
        opId: spec.opId,
        node: spec.node,
        what: `${spec.action} (answer lost)`,
      });
    throw e;
  }
}

function unwrap<T>(result: NodeResult<T>, action: string): T {
  if (result.ok) return result.value;
  throw failureError(result.node, result.error, action);
}

// ---- snapshots -------------------------------------------------------------------------------------------------

function snapshotInfo(
  report: SnapshotReport,
  extra: { method: SnapshotInfo['method']; node: string | null; raftAppliedIndex: string | null; takenAt: number },
): SnapshotInfo {
  return {
    file: report.file,
    sha256: report.sha256,
    method: extra.method,
    node: extra.node,
    raftAppliedIndex: extra.raftAppliedIndex,
    revision: report.revision,
    totalKeys: report.totalKeys,
    totalSize: report.totalSize,
    hash: report.hash,
    integrity: report.integrity,
    kind: report.kind,
    structure: report.structure,
    usable: report.usable,
    needsSkipHashCheck: report.needsSkipHashCheck,
    problems: report.problems,
    bytes: report.size,
    takenAt: extra.takenAt,
  };
}

async function takeSnapshot(deps: EffectDeps, option: SnapshotOption, opId: string): Promise<SnapshotInfo> {
  if (option.method === 'file') {
    const file = option.file ?? '';
    if (!existsSync(file)) throw new ActionError(`${file} does not exist; give the path of a snapshot file.`);
    const report = await inspectSnapshot(file, { signal: deps.signal }).catch((e: unknown) => {
      throw new ActionError(messageOf(e));
    });
    return snapshotInfo(report, {
      method: 'file',
      node: null,
      raftAppliedIndex: null,
      takenAt: statSync(file).mtimeMs,
    });
  }
  const node = option.node ?? '';
  const raw = option.method === 'raw';
  const before = await deps.client.etcdStatus([node], { timeoutMs: deps.statusTimeoutMs ?? 4000 }).catch(() => []);
  const applied = before[0]?.ok ? before[0].value.raftAppliedIndex.toString() : null;
  return ledgered(deps, {
    opId,
    action: raw ? 'copy the raw etcd database' : 'take an etcd snapshot',
    node,
    destructive: false,
    send: async () => {
      const takenAt = Date.now();
      try {
        const acquired = await acquireSnapshot(deps.client, node, {
          dir: deps.incident.snapshots,
          raw,
          signal: deps.signal,
        });
        return snapshotInfo(acquired.report, { method: raw ? 'raw' : 'api', node, raftAppliedIndex: applied, takenAt });
      } catch (error) {
        // A cut stream or a node that is briefly away is worth another try; the toolkit left no partial file.
        const text = messageOf(error);
        const permanent = /not found|no such file|not a control|worker|unimplemented|permission/i.test(text);
        throw new ActionError(text, !permanent);
      }
    },
    describe: (s) =>
      `${basename(s.file)}: revision ${s.revision}, integrity ${s.integrity}, sha256 ${s.sha256.slice(0, 12)}…`,
  });
}

export async function sha256OfFile(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

// ---- machine configuration --------------------------------------------------------------------------------------

/** Writes `configs/<node>.yaml` with mode 0600, never over an existing file (a new name instead). */
function writeConfigBackup(dir: string, node: string, yaml: string): string {
  const safe = node.replace(/[^A-Za-z0-9._-]/g, '_');
  for (let i = 1; ; i++) {
    const file = join(dir, i === 1 ? `${safe}.yaml` : `${safe}.${i}.yaml`);
    let fd: number;
    try {
      fd = openSync(file, 'wx', 0o600);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') continue;
      throw error;
    }
    try {
      writeSync(fd, yaml);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    return file;
  }
}

function givenConfig(incident: IncidentPaths, node: string): string | null {
  const file = join(incident.given, 'configs', `${node}.yaml`);
  return existsSync(file) ? file : null;
}

async function backupConfigs(deps: EffectDeps, nodes: string[], blank: string[]): Promise<BackupOutput> {
  await persisted();
  const configs: BackupOutput['configs'] = [];
  for (const node of nodes) {
    try {
      const yaml = unwrap(await deps.client.machineConfig(node), 'reading the machine configuration');
      const file = writeConfigBackup(deps.incident.configs, node, yaml);
      deps.journal.append({
        kind: 'action',
        phase: 'after',
        node,
        what: 'machine configuration backed up',
        ok: true,
        result: basename(file),
      });
      configs.push({ node, file, source: 'live', error: null });
    } catch (error) {
      const given = givenConfig(deps.incident, node);
      configs.push({ node, file: given, source: given ? 'given' : null, error: messageOf(error) });
    }
  }
  for (const node of blank) {
    const given = givenConfig(deps.incident, node);
    configs.push({
      node,
      file: given,
      source: given ? 'given' : null,
      error: given ? null : 'no backup in given/configs',
    });
  }
  return { configs };
}

// ---- destructive actions ---------------------------------------------------------------------------------------

async function pollUntil<T>(
  deps: EffectDeps,
  check: () => Promise<T | null>,
  timeoutMs: number,
  everyMs: number,
): Promise<T | null> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await check().catch(() => null);
    if (value !== null) return value;
    if (Date.now() > end || deps.signal?.aborted) return null;
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export interface EffectTiming {
  pollMs: number;
  nodeBackTimeoutMs: number;
}

/** The machine's named actors, ready for `recoveryMachine.provide({ actors })`. */
export function recoveryActors(deps: EffectDeps, timing: EffectTiming) {
  const one = async (node: string): Promise<NodeView | null> => (await observeNodes(deps, [node]))[0] ?? null;

  return {
    connect: fromPromise<ConnectOutput, { nodes: string[] }>(async ({ input }) => {
      await persisted();
      const results = await settle(
        deps.client.version(input.nodes, { timeoutMs: deps.statusTimeoutMs ?? 4000 }),
        input.nodes,
      );
      return {
        nodes: results.map((r) => ({
          node: r.node,
          ok: r.ok,
          version: r.ok ? r.value.tag : null,
          error: r.ok ? null : describeFailure(r.node, r.error),
        })),
      };
    }),

    assess: fromPromise<AssessOutput, { nodes: string[] }>(async ({ input }) => {
      await persisted();
      const observations = await observeNodes(deps, input.nodes);
      const volumes: AssessOutput['volumes'] = {};
      await Promise.all(
        observations
          .filter((o) => o.reachable)
          .map(async (o) => {
            const r = await deps.client
              .etcdVolume(o.node, { timeoutMs: deps.statusTimeoutMs ?? 4000 })
              .catch(() => null);
            volumes[o.node] = r?.ok ? r.value : null;
          }),
      );
      return { observations, volumes };
    }),

    observe: fromPromise<NodeView[], { nodes: string[] }>(async ({ input }) => {
      await persisted();
      return observeNodes(deps, input.nodes);
    }),

    acquireSnapshot: fromPromise<SnapshotInfo, { option: SnapshotOption; opId: string }>(async ({ input }) =>
      takeSnapshot(deps, input.option, input.opId),
    ),

    backupConfigs: fromPromise<BackupOutput, { nodes: string[]; blank: string[] }>(async ({ input }) =>
      backupConfigs(deps, input.nodes, input.blank),
    ),

    convertInitNode: fromPromise<void, { node: string; opId: string }>(async ({ input }) => {
      const { node } = input;
      const isControlPlaneNow = async () => {
        const r = await deps.client.machineType(node, { timeoutMs: 3000 });
        return r.ok && r.value === 'controlplane' ? true : null;
      };
      await ledgered(deps, {
        opId: `${input.opId}:apply`,
        action: 'stage machine.type controlplane (ApplyConfiguration STAGED)',
        node,
        destructive: true,
        answered: () => undefined,
        send: async () => {
          const yaml = unwrap(await deps.client.machineConfig(node), 'reading the machine configuration');
          const doc = parseDocument(yaml);
          doc.setIn(['machine', 'type'], 'controlplane');
          unwrap(
            await deps.client.applyConfiguration(node, { data: Buffer.from(doc.toString()), mode: 'STAGED' }),
            'staging the configuration change',
          );
        },
        reconcile: async () => ((await isControlPlaneNow().catch(() => null)) ? undefined : null),
      });
      await ledgered(deps, {
        opId: `${input.opId}:reboot`,
        action: 'reboot to apply the staged configuration',
        node,
        destructive: true,
        answered: () => undefined,
        send: async () => {
          unwrap(await deps.client.reboot(node), 'reboot');
        },
        reconcile: async () =>
          (await pollUntil(deps, isControlPlaneNow, timing.nodeBackTimeoutMs, timing.pollMs)) ? undefined : null,
      });
      const back = await pollUntil(deps, isControlPlaneNow, timing.nodeBackTimeoutMs, timing.pollMs);
      if (!back) throw new ActionError(`${node} did not come back as a controlplane node after the reboot.`, true);
    }),

    resetNode: fromPromise<void, { node: string; labels: string[]; opId: string }>(async ({ input }) => {
      const { node, labels } = input;
      await ledgered(deps, {
        opId: input.opId,
        action: `reset ${labels.join('+')} (graceful=false, reboot)`,
        node,
        destructive: true,
        answered: () => undefined,
        send: async () => {
          unwrap(
            await deps.client.reset(node, { graceful: false, reboot: true, labels }, { timeoutMs: 30_000 }),
            'reset',
          );
        },
        // The send time only, taken without a call to the node: a round trip here would delay this node's reset
        // behind the snapshot source's, which goes last (SAFETY rule 3).
        witness: () => ({ sentAt: Date.now() }),
        // Sent before the crash? A node that went away, rebooted since (its service history restarts at boot: a reset
        // that finished quickly looks just like before otherwise) or came back Preparing (waiting for bootstrap) got
        // it. Unchanged: it never arrived.
        reconcile: async (before) => {
          const seen = await pollUntil(
            deps,
            async () => {
              const v = await one(node);
              if (!v || !v.reachable || v.etcdService === 'Preparing' || rebootedSince(v, before?.sentAt)) return true;
              return null;
            },
            timing.pollMs * 3,
            timing.pollMs,
          );
          return seen ? undefined : null;
        },
      });
    }),

    applyConfig: fromPromise<void, { node: string; file: string; opId: string }>(async ({ input }) => {
      const { node, file } = input;
      await ledgered(deps, {
        opId: input.opId,
        action: `apply the configuration backup ${basename(file)} over the maintenance API`,
        node,
        destructive: true,
        answered: () => undefined,
        send: async () => {
          if (!deps.connectMaintenance) throw new ActionError('The maintenance API cannot be reached from here.');
          if (!existsSync(file))
            throw new ActionError(`The configuration backup ${file} is missing; put it back and retry.`);
          const m = await deps.connectMaintenance(node).catch((e: unknown) => {
            throw new ActionError(messageOf(e), true);
          });
          try {
            deps.journal.append({
              kind: 'observation',
              node,
              what: 'maintenance server fingerprint (not verified by the cluster CA)',
              result: m.serverFingerprint,
            });
            await m.applyConfiguration({ data: readFileSync(file), mode: 'REBOOT' });
          } catch (error) {
            throw new ActionError(messageOf(error), false, true);
          } finally {
            m.close();
          }
        },
        reconcile: async () => ((await probeMaintenance(deps, node)) ? null : undefined),
      });
    }),

    verifySnapshotFile: fromPromise<{ sha256: string }, { file: string }>(async ({ input }) => {
      await persisted();
      try {
        return { sha256: await sha256OfFile(input.file) };
      } catch (error) {
        throw new ActionError(`The snapshot ${input.file} cannot be read any more (${messageOf(error)}).`);
      }
    }),

    uploadSnapshot: fromCallback<RecoveryEvent, { node: string; file: string; bytes: number; opId: string }>(
      ({ input, sendBack }) => {
        const abort = new AbortController();
        let last = 0;
        const onProgress = (p: { bytes: number; total?: number }) => {
          // a few updates a second are enough for the screen; every one would be a state.json write
          if (Date.now() - last < 200 && p.bytes < input.bytes) return;
          last = Date.now();
          sendBack({ type: 'upload.progress', bytes: p.bytes, total: p.total ?? input.bytes, restarts: 0 });
        };
        ledgered(deps, {
          opId: input.opId,
          action: `upload ${basename(input.file)} (EtcdRecover)`,
          node: input.node,
          destructive: false,
          send: async () => {
            // 1 MiB reads: with Node's default 64 KiB, the file reads (a thread-pool round trip each) were most of the
            // upload's CPU; 1 MiB made a 256 MiB upload 1.5x faster (bench/transfer.mjs, bench/upload-driver.mjs).
            const source = createReadStream(input.file, { highWaterMark: UPLOAD_READ_BYTES });
            const result = await deps.client.etcdRecover(input.node, source, {
              signal: abort.signal,
              onProgress,
              totalBytes: input.bytes,
            });
            unwrap(result, 'the snapshot upload');
          },
        }).then(
          () => sendBack({ type: 'upload.done' }),
          (error: unknown) => {
            if (abort.signal.aborted) return;
            const e = error instanceof ActionError ? error : new ActionError(messageOf(error), true);
            sendBack({ type: 'upload.failed', error: e.message, retryable: e.retryable || !e.mayHaveLanded });
          },
        );
        return () => abort.abort();
      },
    ),

    bootstrapNode: fromPromise<
      { alreadyDone: boolean },
      { node: string; skipHashCheck: boolean; opId: string; wiped: boolean; uploadSent: boolean }
    >(async ({ input }) => {
      const { node } = input;
      const etcdStarted = (v: NodeView | null): boolean =>
        Boolean(
          v &&
          (v.etcdService === 'Running' ||
            v.etcdService === 'Finished' ||
            (v.etcdEvents ?? []).some((m) => /bootstrap requested|recovering etcd|restor/i.test(m))),
        );
      return ledgered(deps, {
        opId: input.opId,
        action: `bootstrap (recover_etcd${input.skipHashCheck ? ', recover_skip_hash_check' : ''})`,
        node,
        destructive: true,
        answered: () => ({ alreadyDone: true }),
        send: async () => {
          const result = await deps.client.bootstrap(
            node,
            { recoverEtcd: true, recoverSkipHashCheck: input.skipHashCheck },
            { timeoutMs: 30_000 },
          );
          if (result.ok) return { alreadyDone: false };
          const kind = classifyFailure(result.error);
          if (kind === 'already-bootstrapped') {
            const v = await one(node);
            const ledger = readJournal(deps.incident.dir);
            const sentBefore = ledger.filter((r) => r.opId === input.opId && r.phase === 'before').length > 1;
            if (
              bootstrapAlreadyDone({
                wiped: input.wiped,
                uploadSent: input.uploadSent,
                bootstrapSent: sentBefore,
                etcdService: v?.etcdService ?? null,
              })
            )
              return { alreadyDone: true };
            throw new ActionError(describeFailure(node, result.error, 'bootstrap'));
          }
          if (kind === 'bootstrap-not-ready' || kind === 'time-not-synced' || kind === 'not-control-plane')
            throw new ActionError(describeFailure(node, result.error, 'bootstrap'), kind !== 'not-control-plane');
          // anything else (a cut connection, a deadline): the request may have reached the node
          throw new ActionError(describeFailure(node, result.error, 'bootstrap'), false, true);
        },
        reconcile: async () => (etcdStarted(await one(node)) ? { alreadyDone: true } : null),
        describe: (r) => (r.alreadyDone ? 'had already happened' : 'accepted'),
      });
    }),
  };
}
