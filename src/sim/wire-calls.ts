/**
 * apid's proxy semantics around every handler of a simulated node (talos-api-facts §4.1): `nodes` fans out with
 * `hostname` tags and in-band errors, `node` forwards one-to-one with real status codes, no metadata means the node
 * itself; the caller's roles are checked, the wire's faults applied, and a maintenance node answers only itself with
 * the restricted API of §4.5. Each method turns a one-node handler (api*.ts, cosi.ts) into a grpc-js handler.
 */
import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { PeerCertificate } from 'node:tls';
import type * as grpc from '@grpc/grpc-js';
import * as api from './api.js';
import type { CallContext, ClusterView, Payload, Send } from './api.js';
import { type One2ManyResult, one2many, streamedError, withAppendedHostname } from './apid-layout.js';
import {
  abortOnCancel,
  asRpcError,
  connectionRefused,
  deadlineOf,
  maintenanceHandshakeFailure,
  type Route,
  route,
  toServiceError,
} from './apid-route.js';
import type { SimNode } from './node.js';
import { checkRoles, rolesOf } from './rbac.js';
import { unavailable } from './rpc-error.js';

/** Faults the wire applies around every call a node handles (src/sim/faults.ts). */
export interface WireFaults {
  /** Before the handler runs: may delay, throw (fail K times, unreachable) or start a reboot. */
  enter(node: SimNode, method: string, signal: AbortSignal): Promise<void>;
  /** For streams: stop after this many payload bytes (ending with status OK), or null. */
  cutAfter(node: SimNode, method: string): number | null;
}

export interface WireCluster {
  view: ClusterView;
  faults: WireFaults;
  /** The node a `node`/`nodes` entry names (an address, address:port or hostname), if it is one of ours. */
  resolve(target: string): SimNode | undefined;
  /** Scratch space for uploads. */
  scratchDir: string;
}

export type UnaryHandler = (node: SimNode, req: never, ctx: CallContext) => Promise<Payload[]> | Payload[];
export type StreamHandler = (node: SimNode, req: never, ctx: CallContext, send: Send) => Promise<void>;

class StreamCut extends Error {}

export class WireCalls {
  constructor(private readonly cluster: WireCluster) {}

  /** A node as another node's apid reaches it: refused when down, the TLS failure when in maintenance. */
  reach(target: string): SimNode {
    const node = this.cluster.resolve(target);
    if (!node || !node.reachable) throw connectionRefused(target);
    if (node.inMaintenance) throw maintenanceHandshakeFailure();
    return node;
  }

  unary(
    endpoint: SimNode,
    method: string,
    handler: UnaryHandler,
    wrap: (payloads: Payload[]) => Payload = (messages) => ({ messages }),
  ): grpc.handleUnaryCall<unknown, unknown> {
    return (call, callback) => {
      const { controller, ctx } = this.callContext(endpoint, method, call);
      const run = async (): Promise<Payload> => {
        await this.endpointCheck(endpoint, method, controller.signal, ctx.roles);
        const r = this.targetsFor(endpoint, route(call.metadata, call.getPath()));
        if (r.kind === 'many') {
          const results = await Promise.all(
            r.targets.map(async (target): Promise<One2ManyResult> => {
              try {
                const node = await this.enter(target, method, controller.signal);
                return { hostname: target, payloads: await handler(node, call.request as never, ctx) };
              } catch (error) {
                return { hostname: target, error: asRpcError(error) };
              }
            }),
          );
          return one2many(results);
        }
        const node = r.kind === 'one' ? await this.enter(r.target, method, controller.signal) : endpoint;
        if (r.kind === 'local' && !endpoint.inMaintenance)
          await this.cluster.faults.enter(endpoint, method, controller.signal);
        return wrap(await handler(node, call.request as never, ctx));
      };
      run().then(
        (response) => callback(null, response),
        (error: unknown) => callback(toServiceError(error)),
      );
    };
  }

  serverStream(
    endpoint: SimNode,
    method: string,
    handler: StreamHandler,
  ): grpc.handleServerStreamingCall<unknown, unknown> {
    return (call) => {
      const { controller, ctx } = this.callContext(endpoint, method, call);
      const write: Send = (message) =>
        new Promise<void>((resolve) => {
          if (controller.signal.aborted) return resolve();
          if (call.write(message)) resolve();
          else call.once('drain', () => resolve());
        });
      const runOn = async (node: SimNode, hostname: string | null): Promise<void> => {
        const cut = this.cluster.faults.cutAfter(node, method);
        let sent = 0;
        const send: Send = async (message) => {
          let m = message;
          const bytes = m.bytes as Buffer | undefined;
          if (cut !== null && bytes) {
            if (sent >= cut) throw new StreamCut();
            if (sent + bytes.length > cut) m = { ...m, bytes: bytes.subarray(0, cut - sent) };
            sent += (m.bytes as Buffer).length;
          }
          if (hostname !== null) m = withAppendedHostname(m, hostname);
          await write(m);
        };
        try {
          await handler(node, call.request as never, ctx, send);
        } catch (error) {
          // Talos's chunker just stops when its reader fails: the stream ends with status OK.
          if (!(error instanceof StreamCut)) throw error;
        }
      };
      const run = async (): Promise<void> => {
        await this.endpointCheck(endpoint, method, controller.signal, ctx.roles);
        const r = this.targetsFor(endpoint, route(call.metadata, call.getPath()));
        if (r.kind === 'many') {
          for (const target of r.targets) {
            try {
              const node = await this.enter(target, method, controller.signal);
              await runOn(node, target);
            } catch (error) {
              await write(streamedError(target, asRpcError(error)));
            }
          }
          return;
        }
        const node = r.kind === 'one' ? await this.enter(r.target, method, controller.signal) : endpoint;
        if (r.kind === 'local' && !endpoint.inMaintenance)
          await this.cluster.faults.enter(endpoint, method, controller.signal);
        await runOn(node, null);
      };
      run().then(
        () => call.end(),
        (error: unknown) => call.emit('error', toServiceError(error)),
      );
    };
  }

  /** EtcdRecover: the client streams the snapshot; it is kept in scratch space until the node(s) store it. */
  etcdRecover(endpoint: SimNode): grpc.handleClientStreamingCall<unknown, unknown> {
    const method = 'EtcdRecover';
    const view = this.cluster.view;
    return (call, callback) => {
      const controller = abortOnCancel(call);
      const scratch = join(this.cluster.scratchDir, `upload-${randomUUID()}`);
      const run = async (): Promise<Payload> => {
        await this.endpointCheck(endpoint, method, controller.signal, this.roles(endpoint, call));
        const r = this.targetsFor(endpoint, route(call.metadata, call.getPath()));
        if (r.kind === 'many') {
          await api.receiveUpload(call as unknown as Readable, scratch);
          const results = await Promise.all(
            r.targets.map(async (target): Promise<One2ManyResult> => {
              try {
                const node = await this.enter(target, method, controller.signal);
                return { hostname: target, payloads: await api.storeUpload(node, view, scratch) };
              } catch (error) {
                return { hostname: target, error: asRpcError(error) };
              }
            }),
          );
          return one2many(results);
        }
        const node = r.kind === 'one' ? await this.enter(r.target, method, controller.signal) : endpoint;
        if (r.kind === 'local') await this.cluster.faults.enter(endpoint, method, controller.signal);
        try {
          api.checkRecoverPreconditions(node);
        } catch (error) {
          view.countCall('recover', node);
          throw error;
        }
        await api.receiveUpload(call as unknown as Readable, scratch);
        if (!node.reachable) throw unavailable('error reading from server: EOF');
        return { messages: await api.storeUpload(node, view, scratch) };
      };
      run()
        .then(
          (response) => callback(null, response),
          (error: unknown) => callback(toServiceError(error)),
        )
        .finally(() => void rm(scratch, { force: true }));
    };
  }

  /** Resolves a target and applies the faults of that node; throws what the proxy would see. */
  private async enter(target: string, method: string, signal: AbortSignal): Promise<SimNode> {
    const node = this.cluster.resolve(target);
    if (!node || !node.reachable) throw connectionRefused(target);
    await this.cluster.faults.enter(node, method, signal);
    if (!node.reachable) throw connectionRefused(target);
    // apid dials the target with the cluster's mutual TLS; a machine in maintenance mode shows its self-signed
    // certificate, so the handshake fails (talos-behaviour-facts §6; grpc-go's transport wording).
    if (node.inMaintenance) throw maintenanceHandshakeFailure();
    return node;
  }

  /** The caller's roles: its certificate's on a normal node; a maintenance node gives a LAN caller os:reader. */
  private roles(
    endpoint: SimNode,
    call: { getAuthContext(): { sslPeerCertificate?: PeerCertificate } },
  ): ReadonlySet<string> {
    if (endpoint.inMaintenance) return new Set(['os:reader']);
    return rolesOf(call.getAuthContext().sslPeerCertificate);
  }

  /** What a handler knows of its call: deadline, cancellation and the caller's roles (read once per call). */
  private callContext(
    endpoint: SimNode,
    method: string,
    call: grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerWritableStream<unknown, unknown>,
  ): { controller: AbortController; ctx: CallContext } {
    const controller = abortOnCancel(call);
    const ctx = { deadline: deadlineOf(call), signal: controller.signal, method, roles: this.roles(endpoint, call) };
    return { controller, ctx };
  }

  private async endpointCheck(
    endpoint: SimNode,
    method: string,
    signal: AbortSignal,
    roles: ReadonlySet<string>,
  ): Promise<void> {
    if (!endpoint.reachable) throw connectionRefused(endpoint.address);
    if (!endpoint.inMaintenance) checkRoles(method, roles);
    // A maintenance node has no apid: node/nodes metadata are not honoured, the node answers itself.
    if (endpoint.inMaintenance) {
      await this.cluster.faults.enter(endpoint, method, signal);
      const refusal = api.maintenanceRefusal(method);
      if (refusal) throw refusal;
    }
  }

  private targetsFor(endpoint: SimNode, r: Route): Route {
    return endpoint.inMaintenance ? { kind: 'local' } : r;
  }
}
