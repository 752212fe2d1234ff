/**
 * From decoded wire messages to the domain values of ./types.ts. 64-bit integers arrive as decimal strings (the
 * loader's `longs: String`) and never pass through a JS number: ids become 16 hex digits, indices bigint.
 */
import { parse as parseYaml } from 'yaml';
import type { EtcdMember__Output } from './generated/machine/EtcdMember.js';
import type { EtcdMemberStatus__Output } from './generated/machine/EtcdMemberStatus.js';
import type { EtcdMemberAlarm__Output } from './generated/machine/EtcdMemberAlarm.js';
import type { ServiceInfo__Output } from './generated/machine/ServiceInfo.js';
import type { Version__Output } from './generated/machine/Version.js';
import type { Timestamp__Output } from './generated/google/protobuf/Timestamp.js';
import type { Spec__Output } from './generated/cosi/resource/Spec.js';
import type {
  ClusterMember,
  EtcdAlarmType,
  EtcdMember,
  EtcdMemberAlarm,
  EtcdMemberStatus,
  EtcdVolumeKind,
  MachineStage,
  MachineType,
  ServiceInfo,
  VersionInfo,
} from './types.js';
import { MACHINE_STAGES } from './types.js';
import { nodeText } from '../text/sanitize.js';
import { lengthField, lengthFields, varintField } from './proto-wire.js';

/** talosctl prints member ids as `%016x`. */
export function memberIdHex(decimal: string): string {
  return BigInt(decimal || '0')
    .toString(16)
    .padStart(16, '0');
}

/** The reverse, for requests: "8e7a1b..." (with or without 0x) → decimal string; throws on anything else. */
export function memberIdDecimal(hex: string): string {
  const digits = hex.trim().replace(/^0x/i, '');
  if (!/^[0-9a-fA-F]{1,16}$/.test(digits)) throw new Error(`"${hex}" is not an etcd member id (up to 16 hex digits)`);
  return BigInt(`0x${digits}`).toString(10);
}

/** Go's zero time.Time, which Talos sends for "never". */
const GO_ZERO_TIME_SECONDS = -62135596800n;

export function timestampMs(ts: Timestamp__Output | null | undefined): number | null {
  if (!ts) return null;
  const seconds = BigInt(ts.seconds || '0');
  if (seconds <= GO_ZERO_TIME_SECONDS) return null;
  if (seconds === 0n && !ts.nanos) return null;
  return Number(seconds) * 1000 + Math.floor((ts.nanos ?? 0) / 1e6);
}

export function toVersionInfo(message: Version__Output): VersionInfo | undefined {
  const v = message.version;
  if (!v) return undefined;
  return {
    tag: v.tag,
    sha: v.sha,
    goVersion: v.goVersion,
    os: v.os,
    arch: v.arch,
    ...(message.platform ? { platform: { name: message.platform.name, mode: message.platform.mode } } : {}),
    ...(message.features ? { rbac: message.features.rbac } : {}),
  };
}

export function toServiceInfo(service: ServiceInfo__Output): ServiceInfo {
  const health = service.health;
  return {
    id: service.id,
    state: service.state,
    events: (service.events?.events ?? []).map((event) => ({
      msg: event.msg,
      state: event.state,
      ts: timestampMs(event.ts),
    })),
    health: {
      unknown: health ? health.unknown : true,
      healthy: health ? health.healthy : false,
      lastMessage: health?.lastMessage ?? '',
      lastChange: timestampMs(health?.lastChange),
    },
  };
}

export function toEtcdMember(member: EtcdMember__Output): EtcdMember {
  return {
    id: memberIdHex(member.id),
    // names and URLs are the node's words: no escape sequence reaches the operator's terminal through them
    hostname: nodeText(member.hostname, 253),
    peerUrls: member.peerUrls.map((url) => nodeText(url, 300)),
    clientUrls: member.clientUrls.map((url) => nodeText(url, 300)),
    isLearner: member.isLearner,
  };
}

const big = (decimal: string) => BigInt(decimal || '0');

export function toEtcdMemberStatus(status: EtcdMemberStatus__Output): EtcdMemberStatus {
  return {
    memberId: memberIdHex(status.memberId),
    protocolVersion: status.protocolVersion,
    storageVersion: status.storageVersion,
    dbSize: big(status.dbSize),
    dbSizeInUse: big(status.dbSizeInUse),
    leader: memberIdHex(status.leader),
    raftIndex: big(status.raftIndex),
    raftTerm: big(status.raftTerm),
    raftAppliedIndex: big(status.raftAppliedIndex),
    errors: status.errors,
    isLearner: status.isLearner,
  };
}

const ALARM_TYPES: readonly string[] = ['NONE', 'NOSPACE', 'CORRUPT'];

/** An alarm as etcd names it; an alarm type this client does not know (a newer etcd) reads as CORRUPT, the graver. */
export function toEtcdMemberAlarm(alarm: EtcdMemberAlarm__Output): EtcdMemberAlarm {
  const type = ALARM_TYPES.includes(alarm.alarm) ? (alarm.alarm as EtcdAlarmType) : 'CORRUPT';
  return { memberId: memberIdHex(alarm.memberId), alarm: type };
}

const MACHINE_TYPES: Record<string, MachineType> = {
  unknown: 'unknown',
  init: 'init',
  controlplane: 'controlplane',
  worker: 'worker',
};
/** resource.config.MachineType enum values, for proto_spec. */
const MACHINE_TYPE_NUMBERS: MachineType[] = ['unknown', 'init', 'controlplane', 'worker'];

/** MachineTypes yaml_spec is a bare scalar ("controlplane"); proto_spec is MachineTypeSpec (`08 02`). */
export function machineTypeFromSpec(spec: Spec__Output | null | undefined): MachineType {
  const yamlText = spec?.yamlSpec?.trim();
  if (yamlText) return MACHINE_TYPES[yamlText.replace(/^["']|["']$/g, '')] ?? 'unknown';
  const value = varintField(spec?.protoSpec, 1);
  return value === undefined ? 'unknown' : (MACHINE_TYPE_NUMBERS[Number(value)] ?? 'unknown');
}

/**
 * MachineStatusSpec { stage = 1 (RuntimeMachineStage) } (siderolabs/talos: api/resource/definitions/runtime/
 * runtime.proto@v1.13.9:102-105): the stage from yaml_spec when the node sent one, else from proto_spec.
 */
export function machineStageFromSpec(spec: Spec__Output | null | undefined): MachineStage {
  const yamlText = spec?.yamlSpec;
  if (yamlText && yamlText.trim()) {
    const doc = parseYaml(yamlText) as { stage?: unknown } | null;
    const stage = doc && typeof doc === 'object' ? doc.stage : undefined;
    return MACHINE_STAGES.find((s) => s === stage) ?? 'unknown';
  }
  const value = varintField(spec?.protoSpec, 1);
  return value === undefined ? 'unknown' : (MACHINE_STAGES[Number(value)] ?? 'unknown');
}

/** BlockVolumeType: PARTITION is 0 (so absent on the wire), DIRECTORY is 3 (facts §9). */
const VOLUME_TYPE_FIELD = 16;
const VOLUME_TYPE_DIRECTORY = 3n;

export function etcdVolumeFromSpec(spec: Spec__Output | null | undefined): EtcdVolumeKind {
  const yamlText = spec?.yamlSpec;
  if (yamlText && yamlText.trim()) {
    const doc = parseYaml(yamlText) as { type?: unknown } | null;
    return doc && typeof doc === 'object' && doc.type === 'directory' ? 'ephemeral' : 'partition';
  }
  return varintField(spec?.protoSpec, VOLUME_TYPE_FIELD) === VOLUME_TYPE_DIRECTORY ? 'ephemeral' : 'partition';
}

/**
 * HostnameStatusSpec { hostname = 1; domainname = 2 } (siderolabs/talos:
 * pkg/machinery/resources/network/hostname_status.go@v1.14.0-rc.1:25-28): the short hostname, from yaml_spec when the
 * node sent one, else from proto_spec; null when neither holds a name.
 */
export function hostnameFromSpec(spec: Spec__Output | null | undefined): string | null {
  const yamlText = spec?.yamlSpec;
  if (yamlText && yamlText.trim()) {
    let doc: unknown = null;
    try {
      doc = parseYaml(yamlText);
    } catch {
      doc = null;
    }
    const name = doc && typeof doc === 'object' ? (doc as { hostname?: unknown }).hostname : undefined;
    return typeof name === 'string' && name.trim() ? name.trim() : null;
  }
  const name = lengthField(spec?.protoSpec, 1)?.toString('utf8').trim();
  return name ? name : null;
}

/**
 * A discovered cluster member from COSI Members.cluster.talos.dev (siderolabs/talos
 * pkg/machinery/resources/cluster/member.go@v1.13.0:30-36: nodeId 1, addresses 2, hostname 3, machineType 4,
 * operatingSystem 5, each with its yaml name), from yaml_spec when the node sent one, else from proto_spec, where an
 * address is netip.Addr's binary form (4 bytes for IPv4, 16 for IPv6). Null when the spec names no hostname.
 */
export function clusterMemberFromSpec(id: string, spec: Spec__Output | null | undefined): ClusterMember | null {
  const yamlText = spec?.yamlSpec;
  if (yamlText && yamlText.trim()) {
    type MemberYaml = { hostname?: unknown; addresses?: unknown; machineType?: unknown } | null;
    let doc: MemberYaml;
    try {
      doc = parseYaml(yamlText) as MemberYaml;
    } catch {
      return null;
    }
    if (!doc || typeof doc !== 'object' || typeof doc.hostname !== 'string') return null;
    const addresses = Array.isArray(doc.addresses)
      ? doc.addresses.filter((a): a is string => typeof a === 'string')
      : [];
    const type = doc.machineType;
    const machineType =
      typeof type === 'number'
        ? (MACHINE_TYPE_NUMBERS[type] ?? 'unknown')
        : (MACHINE_TYPES[String(type ?? '')] ?? 'unknown');
    return { id, hostname: doc.hostname, addresses, machineType };
  }
  const hostname = lengthField(spec?.protoSpec, 3)?.toString('utf8');
  if (!hostname) return null;
  const addresses = lengthFields(spec?.protoSpec, 2).flatMap((b) => {
    const text = addressText(b);
    return text ? [text] : [];
  });
  const type = varintField(spec?.protoSpec, 4);
  return {
    id,
    hostname,
    addresses,
    machineType: type === undefined ? 'unknown' : (MACHINE_TYPE_NUMBERS[Number(type)] ?? 'unknown'),
  };
}

/** netip.Addr's binary form as text: 4 bytes IPv4, 16 bytes (then a zone) IPv6; null for anything else. */
function addressText(bytes: Buffer): string | null {
  if (bytes.length === 4) return [...bytes].join('.');
  if (bytes.length < 16) return null;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i).toString(16));
  return groups.join(':').replace(/(^|:)0(:0)+(:|$)/, '::');
}
