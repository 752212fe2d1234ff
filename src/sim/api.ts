/**
 * What one simulated node answers, RPC by RPC, with Talos's behaviour and exact texts (talos-api-facts §3, §4.5, §8,
 * §9, §10). The proxy semantics (node/nodes metadata, in-band errors) live in wire-calls.ts (routing: apid-route.ts);
 * here every handler works on one node and fails by throwing RpcError, which the wire turns into a status or an
 * in-band error. The etcd calls are api-etcd.ts.
 */
import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { copyFile, mkdir, readFile, rm } from 'node:fs/promises';
import { dirname, isAbsolute } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { gzipSync } from 'node:zlib';
import { pack as tarPack } from 'tar-stream';
import type { SimNode } from './node.js';
import { timestamp } from './pb.js';
import { InvalidConfig, parseMachineConfig } from './machine-config.js';
import { resetSequenceFailed, resetSequenceStarted } from './machine-events.js';
import type { RpcError } from './rpc-error.js';
import {
  alreadyExists,
  deadlineExceeded,
  failedPrecondition,
  invalidArgument,
  notFound,
  unimplemented,
  unknown,
} from './rpc-error.js';
import { talosTag } from './machine-config.js';
import {
  bootstrapChecksMachineType,
  refusesRebootMode,
  resetChecksBackingVolume,
  talosGoVersion,
  unifiedMaintenanceApi,
} from './versions.js';
import type { EtcdAlarm, EtcdMemberInfo } from './etcd-backend.js';

export interface CallContext {
  /** ms since the epoch; Infinity without a deadline. */
  deadline: number;
  signal: AbortSignal;
  method: string;
  /** The caller's roles (from its client certificate); a maintenance node's LAN caller is only os:reader. */
  roles: ReadonlySet<string>;
}

/** What the handlers need from the cluster around the node. */
export interface ClusterView {
  hasQuorum(node: SimNode): boolean;
  /** Leader member id (16 hex digits) of the node's cluster, null without quorum. */
  leaderId(node: SimNode): string | null;
  /** A member of the node's cluster that serves clients with quorum (for cluster-wide etcd calls). */
  quorumMember(node: SimNode): SimNode | null;
  /** etcd's MemberRemove through a member with quorum: done, unknown id, or etcd's strict reconfiguration refusal. */
  removeMember(node: SimNode, memberId: string): Promise<'removed' | 'not-found' | 'unhealthy' | 'not-enough-started'>;
  /** The cluster's alarms as the node's member holds them. */
  alarmsOf(node: SimNode): EtcdAlarm[];
  /** The machines discovery lists (every configured node of the cluster, workers included), in address order. */
  discoveredMembers(): SimNode[];
  /** etcd's MoveLeader from the node's member to another voter; the new leader's member. */
  moveLeader(node: SimNode): EtcdMemberInfo | null;
  /** Disarms every alarm (through raft); the alarms disarmed. */
  disarmAlarms(node: SimNode): Promise<EtcdAlarm[]>;
  countCall(kind: keyof SimNode['calls'], node: SimNode): void;
  clockSleep(simMs: number, signal: AbortSignal): Promise<boolean>;
  /** Real milliseconds of a simulated duration. */
  realMs(simMs: number): number;
}

export type Payload = Record<string, unknown>;
export type Send = (message: Payload) => Promise<void>;

export const CHUNK_SIZE = 1024;
/** How long a call waits for an etcd that does not serve clients when the caller set no deadline (simulated). */
const NO_DEADLINE_WAIT_MS = 5 * 60 * 1000;

/** Member ids in decimal (uint64 on the wire), remembered: a 200-node member-list fan-out converts 40 000 of them. */
const decimalIds = new Map<string, string>();
export const hexToDecimal = (hex: string): string => {
  let decimal = decimalIds.get(hex);
  if (decimal === undefined) {
    decimal = BigInt(`0x${hex}`).toString();
    decimalIds.set(hex, decimal);
  }
  return decimal;
};

/**
 * etcd's client waits for a connection until the caller's deadline (WaitForReady). The wire then ends the call with
 * DEADLINE_EXCEEDED itself; without a deadline we give up after a long simulated wait.
 */
export async function waitForEtcd(ctx: CallContext, cluster: ClusterView, capMs = NO_DEADLINE_WAIT_MS): Promise<never> {
  const remaining = ctx.deadline === Infinity ? capMs : Math.max(0, ctx.deadline - Date.now());
  if (ctx.deadline === Infinity) await cluster.clockSleep(remaining, ctx.signal);
  else await new Promise((resolve) => setTimeout(resolve, remaining).unref());
  throw deadlineExceeded();
}

export function requireControlPlane(node: SimNode, what: string): void {
  if (!node.isControlPlane) throw unimplemented(`${what} is only available on control plane nodes`);
}

// ---- version, services ----

export function version(node: SimNode): Payload[] {
  return [
    {
      version: {
        tag: talosTag(node.state.talosVersion),
        sha: 'sim0000',
        built: '',
        goVersion: talosGoVersion(node.state.talosVersion),
        os: 'linux',
        arch: 'amd64',
      },
      platform: { name: 'metal', mode: 'metal' },
      features: { rbac: true },
    },
  ];
}

export function serviceList(node: SimNode): Payload[] {
  // the times as the node's own clock gives them (a node whose clock is off dates its events off by as much)
  const clock = (ms: number) => timestamp(ms + (node.state.clockOffsetMs ?? 0));
  const services = Object.values(node.state.services).map((svc) => ({
    id: svc.id,
    state: svc.state,
    events: { events: svc.events.map((e) => ({ msg: e.msg, state: e.state, ts: clock(e.ts) })) },
    health: {
      unknown: svc.health.unknown,
      healthy: svc.health.healthy,
      lastMessage: svc.health.lastMessage,
      lastChange: clock(svc.health.lastChange),
    },
  }));
  return [{ services }];
}

// ---- etcd ----

/**
 * ServiceRestart as machined answers it (v1alpha1_server.go@v1.14.0-rc.1:816-831, system.go@v1.14.0-rc.1:407-482):
 * an unknown id is "not defined"; a service that does not run is started; only services that allow it are restarted
 * (kubelet and extensions: services/kubelet.go@v1.14.0-rc.1:235-243); etcd, apid, … refuse.
 */
export async function serviceRestart(node: SimNode, cluster: ClusterView, req: { id?: string }): Promise<Payload[]> {
  cluster.countCall('serviceRestart', node);
  const id = req.id ?? '';
  const svc = node.state.services[id];
  if (!svc) throw unknown(`service "${id}" not defined`);
  const running = !['Finished', 'Failed', 'Skipped'].includes(svc.state);
  if (id !== 'kubelet') {
    throw unknown(`service "${id}" doesn't support ${running ? 'restart' : 'start'} operation via API`);
  }
  await node.restartService(id, running);
  return [{ resp: `Service "${id}" restarted` }];
}

/** Sends a buffer as common.Data chunks of at most 1 KiB, as Talos's chunker does. */
export async function sendChunks(bytes: Buffer, send: Send): Promise<void> {
  for (let at = 0; at < bytes.length; at += CHUNK_SIZE) {
    await send({ bytes: bytes.subarray(at, at + CHUNK_SIZE) });
  }
}

/** Reads the whole upload (EtcdRecover's client stream) into a file. */
export async function receiveUpload(stream: Readable, file: string): Promise<number> {
  await mkdir(dirname(file), { recursive: true });
  let size = 0;
  const out = createWriteStream(file, { mode: 0o600 });
  await pipeline(
    stream,
    async function* (source: AsyncIterable<{ bytes?: Buffer }>) {
      for await (const chunk of source) {
        const bytes = chunk.bytes ?? Buffer.alloc(0);
        size += bytes.length;
        yield bytes;
      }
    },
    out,
  );
  return size;
}

/** EtcdRecover's preconditions, checked before the upload is stored on the node. */
export function checkRecoverPreconditions(node: SimNode): void {
  if (node.inMaintenance) throw unimplemented('method EtcdRecover not implemented');
  requireControlPlane(node, 'etcd recover');
  if (!node.state.ephemeralMounted) throw failedPrecondition('etcd service is not ready for recovery yet');
}

export async function storeUpload(node: SimNode, cluster: ClusterView, uploadedFile: string): Promise<Payload[]> {
  cluster.countCall('recover', node);
  checkRecoverPreconditions(node);
  await mkdir(dirname(node.uploadPath), { recursive: true });
  await rm(node.uploadPath, { force: true });
  // Copied, never read into memory: uploads can be as big as the cluster's database.
  await copyFile(uploadedFile, node.uploadPath);
  return [{}];
}

export async function bootstrap(
  node: SimNode,
  cluster: ClusterView,
  req: { recoverEtcd?: boolean; recoverSkipHashCheck?: boolean },
): Promise<Payload[]> {
  cluster.countCall('bootstrap', node);
  await node.requestBootstrap(
    { recover: Boolean(req.recoverEtcd), skipHashCheck: Boolean(req.recoverSkipHashCheck) },
    {
      notAvailable: () => failedPrecondition('bootstrap is not available yet'),
      // ≤1.12: FailedPrecondition; 1.13+: machinehelper.CheckControlplane (talos:
      // internal/pkg/machinehelper/machinehelper.go@v1.14.1, called from v1alpha1_server.go@v1.14.1:418)
      notControlPlane: () =>
        bootstrapChecksMachineType(node.state.talosVersion)
          ? unimplemented('bootstrap is only available on control plane nodes')
          : failedPrecondition('bootstrap can only be performed on a control plane node'),
      timeNotSynced: () => failedPrecondition('time is not in sync yet'),
      notEmpty: () => alreadyExists('etcd data directory is not empty'),
    },
  );
  return [{}];
}

// ---- files ----

/**
 * Read as machined serves it (siderolabs/talos internal/app/machined/internal/server/v1alpha1/v1alpha1_server.go@v1.13.9:
 * 1406-1441): a missing path is NotFound with os.Stat's text; a regular file goes out in 1 KiB chunks
 * (pkg/chunker/stream/stream.go@v1.13.9:51, CHUNK_SIZE here) and the stream ends with status OK. The only file a
 * simulated node has is the kernel's boot id: a random UUID per boot, lower-case, with the kernel's trailing newline
 * (talosctl trims it: cmd/talosctl/pkg/talos/action/tracker.go@v1.13.9:375). os:admin only (rbac.ts: not listed).
 */
export async function read(node: SimNode, req: { path?: string }, send: Send): Promise<void> {
  const path = req.path ?? '';
  if (path === '/proc/sys/kernel/random/boot_id') {
    await sendChunks(Buffer.from(`${node.state.bootId}\n`), send);
    return;
  }
  throw notFound(`stat ${path}: no such file or directory`);
}

const ETCD_DB = '/var/lib/etcd/member/snap/db';

/**
 * Copy: a .tar.gz stream of the file (entry named after its basename). A missing root is refused by the archiver's
 * first Lstat, before any gzip header is written (siderolabs/talos pkg/archiver/archiver.go TarGz, walker.go
 * Walker), so no archive bytes are sent at all: only the in-band error Copy sends when the archiver failed
 * (v1alpha1_server.go Copy), and the stream ends with status OK.
 */
export async function copy(node: SimNode, req: { rootPath?: string }, send: Send): Promise<void> {
  const root = req.rootPath ?? '';
  if (!isAbsolute(root)) throw unknown(`path is not absolute ${root}`);
  let content: Buffer | null = null;
  if (root === ETCD_DB && node.state.ephemeralMounted && node.etcd.hasData()) {
    content = await readFile(node.etcd.dbPath).catch(() => null);
  }
  if (!content) {
    await send({ metadata: { error: `lstat ${root}: no such file or directory` } });
    return;
  }
  await sendChunks(await tarGz([{ name: root.split('/').pop() ?? 'db', bytes: content }]), send);
}

async function tarGz(entries: { name: string; bytes: Buffer }[]): Promise<Buffer> {
  const pack = tarPack();
  for (const entry of entries) {
    pack.entry({ name: entry.name, size: entry.bytes.length, mode: 0o600, mtime: new Date() }, entry.bytes);
  }
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of pack) chunks.push(chunk as Buffer);
  // Go's compress/gzip wrapping Go's archive/tar, as machined writes it.
  return gzipSync(Buffer.concat(chunks));
}

// ---- configuration, reboot, reset ----

const APPLY_MODES = ['REBOOT', 'AUTO', 'NO_REBOOT', 'STAGED', 'TRY'] as const;
type ApplyMode = (typeof APPLY_MODES)[number];

function parseConfig(data: Buffer | undefined): ReturnType<typeof parseMachineConfig> {
  try {
    return parseMachineConfig((data ?? Buffer.alloc(0)).toString('utf8'));
  } catch (error) {
    if (error instanceof InvalidConfig) throw invalidArgument(error.message);
    throw error;
  }
}

export function applyConfiguration(
  node: SimNode,
  cluster: ClusterView,
  req: { data?: Buffer; mode?: string; dryRun?: boolean },
): Payload[] {
  cluster.countCall('apply', node);
  let mode = (APPLY_MODES.includes(req.mode as ApplyMode) ? req.mode : 'REBOOT') as ApplyMode;
  const version = node.state.talosVersion;
  if (unifiedMaintenanceApi(version)) {
    // 1.13+: one API for maintenance and configured nodes (talos: v1alpha1_server.go@v1.14.1:215-221): REBOOT becomes
    // NO_REBOOT in maintenance, 1.14 refuses it on a configured node; AUTO answers as NO_REBOOT (:236-239).
    if (mode === 'REBOOT' && node.inMaintenance) mode = 'NO_REBOOT';
    else if (mode === 'REBOOT' && refusesRebootMode(version)) {
      throw unimplemented('the REBOOT mode is not supported, please use AUTO or NO_REBOOT modes instead');
    }
    if (node.inMaintenance) {
      parseConfig(req.data);
      const used = mode === 'AUTO' ? 'NO_REBOOT' : mode;
      const details =
        used === 'STAGED'
          ? 'Staged configuration to be applied after the next reboot'
          : 'Applied configuration without a reboot';
      if (req.dryRun)
        return [{ warnings: [], mode: used, modeDetails: `Dry run summary:\n${details} (skipped in dry-run).\n` }];
      // the configuration completes the boot: the machine installs and comes up configured
      if (used !== 'STAGED') node.installFromMaintenance((req.data ?? Buffer.alloc(0)).toString('utf8'));
      return [{ warnings: [], mode: used, modeDetails: details }];
    }
  }
  if (node.inMaintenance && (mode === 'NO_REBOOT' || mode === 'STAGED')) {
    const flag = mode === 'STAGED' ? 'staged' : 'no-reboot';
    throw unimplemented(`apply configuration --mode='${flag}' is not supported in maintenance mode`);
  }
  const parsed = parseConfig(req.data);
  const text = (req.data ?? Buffer.alloc(0)).toString('utf8');
  if (req.dryRun) return [{ warnings: [], mode, modeDetails: 'Dry run: no changes applied' }];
  if (node.inMaintenance) {
    node.installFromMaintenance(text);
    return [{ warnings: [], mode: 'REBOOT', modeDetails: 'Applied configuration with a reboot' }];
  }
  if (mode === 'STAGED') {
    node.state.stagedConfig = text;
    return [{ warnings: [], mode: 'STAGED', modeDetails: 'Staged configuration to be applied after the next reboot' }];
  }
  const needsReboot = parsed.type !== node.state.type;
  if (needsReboot && (mode === 'NO_REBOOT' || mode === 'TRY')) {
    throw invalidArgument(
      `1 error occurred:\n\t* machine.type: can't be changed in ${mode === 'TRY' ? 'try' : 'no-reboot'} mode\n\n`,
    );
  }
  if (needsReboot || mode === 'REBOOT') {
    node.state.stagedConfig = text;
    node.reboot();
    return [{ warnings: [], mode: 'REBOOT', modeDetails: 'Applied configuration with a reboot' }];
  }
  node.state.config = text;
  const used = mode === 'AUTO' ? 'NO_REBOOT' : mode;
  return [{ warnings: [], mode: used, modeDetails: 'Applied configuration without a reboot' }];
}

export function reboot(node: SimNode, cluster: ClusterView): Payload[] {
  cluster.countCall('reboot', node);
  if (node.inMaintenance) throw unimplemented('method Reboot not implemented');
  node.reboot();
  return [{ actorId: randomUUID() }];
}

const WIPE_MODES = ['ALL', 'SYSTEM_DISK', 'USER_DISKS'];
/** The etcd service states in which leaveEtcd leaves the cluster (v1alpha1_sequencer_tasks.go@v1.13.9:923-930). */
const ETCD_LEAVES_WHEN = ['Running', 'Stopping', 'Failed'];

/** Reset's validation, with the texts of Talos 1.11 (and 1.14 with a dedicated ETCD partition). */
export function reset(
  node: SimNode,
  cluster: ClusterView,
  req: {
    graceful?: boolean;
    reboot?: boolean;
    systemPartitionsToWipe?: { label?: string; wipe?: boolean }[];
    mode?: string;
  },
): Payload[] {
  cluster.countCall('reset', node);
  if (node.inMaintenance) throw unimplemented('API is not implemented in maintenance mode');
  const partitions = req.systemPartitionsToWipe ?? [];
  const mode = WIPE_MODES.includes(req.mode ?? 'ALL') ? (req.mode ?? 'ALL') : 'ALL';
  if (mode === 'USER_DISKS' && partitions.length > 0) {
    throw unknown("reset failed: invalid input, wipe mode USER_DISKS doesn't support SystemPartitionsToWipe parameter");
  }
  const known = new Set(['STATE', 'EPHEMERAL', 'META', 'BOOT', 'EFI']);
  const wipeRequested = new Set(partitions.filter((p) => p.wipe).map((p) => p.label ?? ''));
  for (const { label = '' } of partitions) {
    if (label === 'ETCD') {
      if (node.state.etcdPartition) continue;
      // 1.14: a directory-backed volume goes only with the volume it resides on (talos:
      // internal/app/machined/internal/server/v1alpha1/v1alpha1_server.go@v1.14.1:710-727)
      if (!resetChecksBackingVolume(node.state.talosVersion))
        throw unknown('failed to reset: volume "ETCD" is not located');
      if (!wipeRequested.has('EPHEMERAL')) {
        throw unknown(
          'failed to reset: volume "ETCD" resides on volume "EPHEMERAL", and therefore "ETCD" cannot be wiped without wiping "EPHEMERAL"',
        );
      }
      continue;
    }
    if (!known.has(label)) {
      throw unknown(
        `failed to get volume status with label "${label}": resource VolumeStatuses.block.talos.dev(runtime/${label}@undefined) doesn't exist`,
      );
    }
  }
  const labels = partitions.filter((p) => p.wipe !== false).map((p) => p.label ?? '');
  // A graceful reset of a control-plane node runs leaveEtcd, which leaves only a member with a data directory whose
  // etcd service is Running, Stopping or Failed; any other state (Waiting in a crash loop, Finished, Preparing) skips
  // it and the sequence goes on (v1alpha1_sequencer_tasks.go@v1.13.9:901-937). Leaving needs a leader (the removal is
  // sent WithRequireLeader, :947-951): without quorum the sequence fails there.
  const leavesEtcd =
    req.graceful && node.isControlPlane && node.etcd.hasData() && ETCD_LEAVES_WHEN.includes(node.etcdState ?? '');
  const gracefulBlocked = leavesEtcd && !cluster.hasQuorum(node);
  // the sequence's events carry the actor id Reset answers with (v1alpha1_server.go@v1.13.9:659,736-750)
  const actorId = randomUUID();
  if (!gracefulBlocked) {
    node.reset({ labels, wholeDisk: partitions.length === 0 && mode !== 'USER_DISKS' }, Boolean(req.reboot));
    resetSequenceStarted(node, actorId, { graceful: Boolean(req.graceful), reboot: Boolean(req.reboot), labels });
  } else {
    // machined runs the sequence anyway; it fails at the leave phase and says so on the events (machine-events.ts)
    const memberId = hexToDecimal(node.etcd.memberId() ?? '0');
    void resetSequenceFailed(node, actorId, memberId, (simMs) =>
      cluster.clockSleep(simMs, new AbortController().signal),
    );
  }
  return [{ actorId }];
}

/** The methods a blank machine in maintenance mode answers from the LAN (facts §4.5); everything else is refused. */
export function maintenanceRefusal(method: string): RpcError | null {
  if (['ApplyConfiguration', 'Get', 'List', 'Watch'].includes(method)) return null;
  if (['Version', 'Upgrade', 'Reset', 'MetaWrite', 'MetaDelete'].includes(method)) {
    return unimplemented('API is not implemented in maintenance mode');
  }
  return unimplemented(`method ${method} not implemented`);
}
