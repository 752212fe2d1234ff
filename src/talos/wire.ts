/**
 * What the client puts on the wire and reads back, without the connection: request encodings as talosctl sends them,
 * the `nodes`/`node` targeting metadata, answers' repeated fields bounded before decoding (bounded.ts), and the
 * unwrapping of apid's one-to-many answers into one result per node (talos-api-facts §4.1).
 */
import type * as grpc from '@grpc/grpc-js';
import type { MethodDefinition } from '@grpc/proto-loader';
import {
  MEMBER_LIST_BOUNDS,
  SERVICE_LIST_BOUNDS,
  STATUS_BOUNDS,
  trimRepeated,
  withCut,
  type MessageBounds,
} from './bounded.js';
import { Code, failureFromMetadata, rpcFailure } from './errors.js';
import { grpcJs } from './grpc-lib.js';
import type { Metadata__Output } from './generated/common/Metadata.js';
import type { ApplyMode, NodeResult, ResetOptions, RpcFailure } from './types.js';

export type AnyMethod = MethodDefinition<object, object, object, object>;

export interface WithMetadata {
  metadata: Metadata__Output | null;
}

/** CopyRequest { root_path = 1 }, encoded by hand (the wire test checks it against the protos). */
export function copyRequest(rootPath: string): Buffer {
  const path = Buffer.from(rootPath, 'utf8');
  const length: number[] = [];
  for (let n = path.length; ; n >>>= 7) {
    if (n < 0x80) {
      length.push(n);
      break;
    }
    length.push((n & 0x7f) | 0x80);
  }
  return Buffer.concat([Buffer.from([0x0a, ...length]), path]);
}

/** Repeated fields bounded before decoding (a million-member answer must not cost gigabytes): see bounded.ts. */
const ANSWER_BOUNDS: Record<string, MessageBounds> = {
  EtcdMemberList: MEMBER_LIST_BOUNDS,
  ServiceList: SERVICE_LIST_BOUNDS,
  EtcdStatus: STATUS_BOUNDS,
};
const boundedDefinitions = new Map<string, AnyMethod>();

/** The method with its answer's repeated fields trimmed before protobufjs decodes it, and the cut recorded. */
export function boundedDefinition(method: string, definition: AnyMethod): AnyMethod {
  const bounds = ANSWER_BOUNDS[method];
  if (!bounds) return definition;
  let bounded = boundedDefinitions.get(method);
  if (!bounded) {
    const decode = definition.responseDeserialize as (bytes: Buffer) => object;
    bounded = {
      ...definition,
      responseDeserialize: (bytes: Buffer) => {
        const trimmed = trimRepeated(bytes, bounds);
        return withCut(decode(trimmed.bytes), trimmed.cut);
      },
    };
    boundedDefinitions.set(method, bounded);
  }
  return bounded;
}

/** What a mapper returns when the node's message lacks the payload we need (void calls return undefined). */
export const MISSING = Symbol('missing payload');
export type Mapper<M, T> = (message: M) => T | typeof MISSING;

export const canceledFailure = () => rpcFailure(Code.canceled, 'cancelled by the user');

/** Targets for machine calls: one `nodes` entry per node (never comma-joined: grpc-go does not split them). */
export function nodesMetadata(nodes: string[]): grpc.Metadata {
  const md = new (grpcJs().Metadata)();
  for (const node of nodes) md.add('nodes', node);
  return md;
}

export function nodeMetadata(node: string): grpc.Metadata {
  const md = new (grpcJs().Metadata)();
  md.set('node', node);
  return md;
}

/**
 * Unwraps a one-to-many response into one result per requested node, in the order requested. A message with
 * `metadata.error` (or a status code) is that node's failure; a requested node without a message failed too; a
 * message without the payload we need counts as a failure rather than an empty answer.
 */
export function unwrapNodeResults<M extends WithMetadata, T>(
  nodes: string[],
  messages: M[],
  map: Mapper<M, T>,
  fallbackNode: string,
): NodeResult<T>[] {
  // A call that returns nothing but success (Bootstrap, EtcdRecover, …) may come back with no message at all when
  // the node answered directly rather than through apid: for a single node with an OK status that is a success.
  if (messages.length === 0 && nodes.length === 1) {
    if (isVoidMapper(map)) return [{ node: nodes[0] as string, ok: true, value: undefined as T }];
  }
  const byNode = new Map<string, NodeResult<T>>();
  const extra: NodeResult<T>[] = [];
  for (const message of messages) {
    const meta = message.metadata;
    // A direct answer (no apid in between) has no hostname: it is the single node asked, or the endpoint itself.
    const node = meta?.hostname || (nodes.length === 1 ? (nodes[0] as string) : fallbackNode);
    const result = resultOf(node, message, map);
    if (nodes.includes(node)) {
      if (!byNode.has(node)) byNode.set(node, result);
    } else extra.push(result);
  }
  const results = nodes.map(
    (node) =>
      byNode.get(node) ?? {
        node,
        ok: false as const,
        error: rpcFailure(Code.unknown, 'the node sent no answer (the endpoint may not be able to reach it)'),
      },
  );
  return [...results, ...extra];
}

/** The mapper of a call whose answer carries nothing but metadata. */
export const voidResult = (): void => undefined;
const isVoidMapper = (map: unknown): boolean => map === voidResult;

function resultOf<M extends WithMetadata, T>(node: string, message: M, map: Mapper<M, T>): NodeResult<T> {
  const meta = message.metadata;
  if (meta && (meta.error || meta.status?.code)) {
    return { node, ok: false, error: failureFromMetadata(meta.error, meta.status) };
  }
  const value = map(message);
  if (value === MISSING) {
    return { node, ok: false, error: rpcFailure(Code.unknown, 'the node answered without the expected data') };
  }
  return { node, ok: true, value };
}

export const failedFor = <T>(nodes: string[], failure: RpcFailure): NodeResult<T>[] =>
  nodes.map((node) => ({ node, ok: false as const, error: failure }));

export const first = <T>(results: NodeResult<T>[], node: string): NodeResult<T> =>
  results[0] ?? { node, ok: false, error: rpcFailure(Code.unknown, 'the node sent no answer') };

/**
 * protobufjs writes a field that is set even to its default value (`08 00` for graceful=false); talosctl's Go
 * encoder leaves proto3 defaults out. Leaving them out here makes our requests byte-for-byte what talosctl sends.
 */
export function withoutDefaults<T extends Record<string, unknown>>(request: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [key, value] of Object.entries(request) as [keyof T, unknown][]) {
    const isDefault =
      value === false || value === 0 || value === '' || (Array.isArray(value) && value.length === 0) || value == null;
    if (!isDefault) out[key] = value as T[keyof T];
  }
  return out;
}

/** ResetRequest as talosctl builds it: every label wiped, mode ALL (the zero value, so not sent). */
export function resetRequest(req: ResetOptions): object {
  return withoutDefaults({
    graceful: req.graceful,
    reboot: req.reboot,
    systemPartitionsToWipe: req.labels.map((label) => ({ label, wipe: true })),
  });
}

/** ApplyConfigurationRequest: REBOOT is the enum's zero value, so it is left out like any default. */
export function applyRequest(req: { data: Buffer; mode: ApplyMode; dryRun?: boolean }): object {
  return withoutDefaults({ data: req.data, mode: req.mode === 'REBOOT' ? undefined : req.mode, dryRun: req.dryRun });
}

export function okVoid(result: NodeResult<void>): NodeResult<void> {
  return result.ok ? { node: result.node, ok: true, value: undefined } : result;
}

export function toActorId(message: WithMetadata & { actorId: string }): { actorId: string } {
  return { actorId: message.actorId };
}

export function toApplyResult(message: WithMetadata & { warnings: string[]; mode: string; modeDetails: string }) {
  return { mode: message.mode as ApplyMode, modeDetails: message.modeDetails, warnings: message.warnings };
}
