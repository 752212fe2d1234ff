/**
 * The wire: every simulated node listens on its own loopback address with its own grpc-js server, and behaves like
 * apid in front of machined (talos-api-facts §4.1): `nodes` fans out with `hostname` tags and in-band errors, `node`
 * forwards one-to-one with real status codes, COSI refuses `nodes`, no metadata means the node itself. Maintenance
 * nodes serve server-only TLS with a self-signed certificate and the restricted API of §4.5.
 */
import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { PeerCertificate } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { cosiStateService, machineService, talosProtos } from '../talos/proto.js';
import type { PemPair } from '../talos/pki.js';
import * as api from './api.js';
import * as etcdApi from './api-etcd.js';
import * as cosi from './cosi.js';
import * as timeApi from './api-time.js';
import * as healthApi from './api-health.js';
import * as dmesgApi from './api-dmesg.js';
import * as logsApi from './api-logs.js';
import { encodeMachineStatus, machineStatus, statusKey } from './machine-status.js';
import type { CallContext, ClusterView, Payload, Send } from './api.js';
import type { SimNode } from './node.js';
import type { NodeState } from './node-state.js';
import { ProtoWriter } from './pb.js';
import { checkRoles, rolesOf } from './rbac.js';
import { invalidArgument, RpcError, unavailable } from './rpc-error.js';
import {
  apidServiceDefinition,
  type One2ManyResult,
  one2many,
  streamedError,
  withAppendedHostname,
} from './apid-layout.js';

const MAX_MESSAGE = 32 * 1024 * 1024;

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

export interface WirePki {
  caPem: string;
  serverCert(node: SimNode): PemPair;
  maintenanceCert(node: SimNode): PemPair;
}

type Route = { kind: 'local' } | { kind: 'one'; target: string } | { kind: 'many'; targets: string[] };

const COSI_PREFIX = '/cosi.';

function route(metadata: grpc.Metadata, path: string): Route {
  // Node's HTTP/2 layer joins repeated headers with ", "; grpc-go (apid) sees them apart, so split them again.
  const nodes = metadata
    .get('nodes')
    .flatMap((v) => String(v).split(','))
    .map((v) => v.trim())
    .filter((v) => v !== '');
  if (nodes.length > 0) {
    if (path.startsWith(COSI_PREFIX)) throw invalidArgument('one-2-many proxying is not supported for COSI methods');
    nodes.forEach(refuseTargetWithPort);
    return { kind: 'many', targets: nodes };
  }
  const node = metadata
    .get('node')
    .flatMap((v) => String(v).split(','))
    .map((v) => v.trim());
  if (node.length > 1) throw invalidArgument('node metadata must be single-valued');
  if (node.length === 1) {
    refuseTargetWithPort(node[0] ?? '');
    return { kind: 'one', target: node[0] ?? '' };
  }
  return { kind: 'local' };
}

/**
 * apid builds a backend per target and refuses an empty one or one with a port (talos:
 * internal/app/apid/pkg/backend/apid.go@v1.14.1:101-105, `invalid target %q`); the director turns that into
 * Internal (director/director.go@v1.14.1:132-135 and :146-152).
 */
function refuseTargetWithPort(target: string): void {
  const withPort = /^\[[^\]]*\]:\d*$/.test(target) || /^[^:]*:\d*$/.test(target);
  if (target === '' || withPort) throw new RpcError(grpc.status.INTERNAL, `invalid target "${target}"`);
}

function connectionRefused(target: string): RpcError {
  const host = target.includes(':') ? target : `${target}:50000`;
  return unavailable(
    `connection error: desc = "transport: Error while dialing: dial tcp ${host}: connect: connection refused"`,
  );
}

function maintenanceHandshakeFailure(): RpcError {
  return unavailable(
    'connection error: desc = "transport: authentication handshake failed: tls: failed to verify certificate: x509: certificate signed by unknown authority"',
  );
}

function asRpcError(error: unknown): RpcError {
  if (error instanceof RpcError) return error;
  return new RpcError(grpc.status.UNKNOWN, error instanceof Error ? error.message : String(error));
}

function toServiceError(error: unknown): Partial<grpc.StatusObject> & Error {
  const e = asRpcError(error);
  return Object.assign(new Error(e.message), { code: e.code, details: e.message, metadata: new grpc.Metadata() });
}

function deadlineOf(call: { getDeadline(): grpc.Deadline }): number {
  const deadline = call.getDeadline();
  if (deadline instanceof Date) return deadline.getTime();
  return Number.isFinite(deadline) ? deadline : Infinity;
}

function abortOnCancel(call: { on(event: 'cancelled', fn: () => void): unknown }): AbortController {
  const controller = new AbortController();
  call.on('cancelled', () => controller.abort());
  return controller;
}

const SERVICE_ACTIONS: Record<string, number> = {
  Initialized: 0,
  Preparing: 1,
  Waiting: 2,
  Running: 3,
  Stopping: 4,
  Finished: 5,
  Failed: 6,
  Skipped: 7,
  Starting: 8,
};

/** One simulated node's listener. */
class NodeListener {
  server: grpc.Server | null = null;
  /** The TLS setup it listens with: server-only (maintenance) or mutual. */
  maintenance = false;

  constructor(
    readonly node: SimNode,
    private readonly wire: SimWire,
  ) {}
}

/** ServiceHealth { unknown = 1; healthy = 2; last_message = 3; last_change = 4 } of a logged event. */
function serviceHealth(health: NodeState['eventLog'][number]['health']): Buffer {
  if (!health || health.unknown) return new ProtoWriter().bool(1, true).finish();
  const w = new ProtoWriter().bool(2, health.healthy).string(3, health.lastMessage);
  if (health.lastChange <= 0) return w.finish();
  const seconds = Math.floor(health.lastChange / 1000);
  return w
    .message(
      4,
      new ProtoWriter()
        .uint(1, seconds)
        .uint(2, (health.lastChange % 1000) * 1e6)
        .finish(),
    )
    .finish();
}

export class SimWire {
  private readonly listeners = new Map<SimNode, NodeListener>();
  port = 0;

  constructor(
    private readonly cluster: WireCluster,
    private readonly pki: WirePki,
  ) {
    // grpc-js logs bind failures ("No address added …") on stderr; the user must only see our one sentence.
    grpc.setLogVerbosity(grpc.logVerbosity.NONE);
  }

  /** Binds every node on its address; the first picks the port when it is 0. */
  async listenAll(nodes: SimNode[], port: number): Promise<number> {
    this.port = port;
    for (const node of nodes) await this.listen(node);
    return this.port;
  }

  async listen(node: SimNode, retryBusy = false): Promise<void> {
    const listener = this.listeners.get(node) ?? new NodeListener(node, this);
    this.listeners.set(node, listener);
    const server = new grpc.Server({
      'grpc.max_receive_message_length': MAX_MESSAGE,
      'grpc.max_send_message_length': MAX_MESSAGE,
    });
    server.addService(apidServiceDefinition(machineService()), this.machineImplementation(node));
    server.addService(apidServiceDefinition(cosiStateService()), this.cosiImplementation(node));
    server.addService(apidServiceDefinition(timeApi.timeService()), this.timeImplementation(node));
    server.addService(
      apidServiceDefinition(talosProtos().cluster.ClusterService.service),
      this.clusterImplementation(node),
    );
    const credentials = this.credentials(node);
    this.port = await this.bind(server, node.address, credentials, retryBusy);
    listener.server = server;
    listener.maintenance = node.inMaintenance;
  }

  /** Binds; after a relisten the old socket closes asynchronously, so a busy port is retried for a moment. */
  private async bind(
    server: grpc.Server,
    address: string,
    credentials: grpc.ServerCredentials,
    retryBusy: boolean,
  ): Promise<number> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await new Promise<number>((resolve, reject) => {
          server.bindAsync(`${address}:${this.port}`, credentials, (error, boundPort) =>
            error ? reject(error) : resolve(boundPort),
          );
        });
      } catch (error) {
        if (!retryBusy || attempt >= 100) throw error;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
  }

  /** A node switched between normal and maintenance mode: listen again with the other TLS setup. */
  async relisten(node: SimNode): Promise<void> {
    const listener = this.listeners.get(node);
    if (listener?.server && listener.maintenance === node.inMaintenance) return;
    listener?.server?.forceShutdown();
    if (listener) listener.server = null;
    await this.listen(node, true);
  }

  /**
   * The machine is down (rebooting, being reset, powered off): nothing listens on its address, so a connection is
   * refused at the TCP level — a client sees no gRPC status at all. The next boot listens again (relisten).
   */
  offline(node: SimNode): void {
    const listener = this.listeners.get(node);
    // Calls already answered still get their answer out (Reboot and Reset reply before the machine goes); calls
    // still running end on their own once they see the node unreachable.
    listener?.server?.tryShutdown(() => undefined);
    if (listener) listener.server = null;
  }

  async close(): Promise<void> {
    await Promise.all(
      [...this.listeners.values()].map(
        (l) =>
          new Promise<void>((resolve) => {
            if (!l.server) return resolve();
            const server = l.server;
            l.server = null;
            server.forceShutdown();
            resolve();
          }),
      ),
    );
    this.listeners.clear();
  }

  private credentials(node: SimNode): grpc.ServerCredentials {
    if (node.inMaintenance) {
      const cert = this.pki.maintenanceCert(node);
      return grpc.ServerCredentials.createSsl(
        null,
        [{ private_key: Buffer.from(cert.keyPem), cert_chain: Buffer.from(cert.certPem) }],
        false,
      );
    }
    const cert = this.pki.serverCert(node);
    return grpc.ServerCredentials.createSsl(
      Buffer.from(this.pki.caPem),
      [{ private_key: Buffer.from(cert.keyPem), cert_chain: Buffer.from(cert.certPem) }],
      true,
    );
  }

  // ---- routing ----

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

  private unary(
    endpoint: SimNode,
    method: string,
    handler: (node: SimNode, req: never, ctx: CallContext) => Promise<Payload[]> | Payload[],
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

  private serverStream(
    endpoint: SimNode,
    method: string,
    handler: (node: SimNode, req: never, ctx: CallContext, send: Send) => Promise<void>,
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

  private etcdRecover(endpoint: SimNode): grpc.handleClientStreamingCall<unknown, unknown> {
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

  private events(): (node: SimNode, req: never, ctx: CallContext, send: Send) => Promise<void> {
    return async (node, req: { tailEvents?: number }, ctx, send) => {
      await send({ data: {}, id: randomUUID(), actorId: '' });
      const log = node.state.eventLog;
      const tail = req.tailEvents ?? 0;
      let next = tail < 0 ? Math.max(0, log.length - 990) : Math.max(0, log.length - tail);
      let lastId = log[next - 1]?.id;
      // the machine status: a tail replays the latest one published, then each change is sent as it happens
      let status = machineStatus(node);
      let statusSent = tail === 0 ? statusKey(status) : '';
      const sendStatus = async (): Promise<void> => {
        status = machineStatus(node);
        if (statusKey(status) === statusSent) return;
        statusSent = statusKey(status);
        await send({
          data: { type_url: 'talos/runtime/machine.MachineStatusEvent', value: encodeMachineStatus(status) },
          id: randomUUID(),
          actorId: '',
        });
      };
      while (!ctx.signal.aborted && node.reachable) {
        const start = lastId ? log.findIndex((e) => e.id === lastId) + 1 : next;
        for (const event of log.slice(start)) {
          const value = new ProtoWriter()
            .string(1, event.service)
            .uint(2, SERVICE_ACTIONS[event.state] ?? 0)
            .string(3, event.msg)
            .message(4, serviceHealth(event.health))
            .finish();
          await send({
            data: { type_url: 'talos/runtime/machine.ServiceStateEvent', value },
            id: event.id,
            actorId: '',
          });
          lastId = event.id;
        }
        await sendStatus();
        next = log.length;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    };
  }

  private machineImplementation(endpoint: SimNode): grpc.UntypedServiceImplementation {
    const view = this.cluster.view;
    return {
      ApplyConfiguration: this.unary(endpoint, 'ApplyConfiguration', (n, req) => api.applyConfiguration(n, view, req)),
      Bootstrap: this.unary(endpoint, 'Bootstrap', (n, req) => api.bootstrap(n, view, req)),
      Copy: this.serverStream(endpoint, 'Copy', (n, req, _ctx, send) => api.copy(n, req, send)),
      Dmesg: this.serverStream(endpoint, 'Dmesg', (n, req, ctx, send) => dmesgApi.dmesg(n, req, ctx, send)),
      Logs: this.serverStream(endpoint, 'Logs', (n, req, ctx, send) => logsApi.logs(n, req, ctx, send)),
      EtcdMemberList: this.unary(endpoint, 'EtcdMemberList', (n, req, ctx) =>
        etcdApi.etcdMemberList(n, view, req, ctx),
      ),
      EtcdRemoveMemberByID: this.unary(endpoint, 'EtcdRemoveMemberByID', (n, req, ctx) =>
        etcdApi.etcdRemoveMemberById(n, view, req, ctx),
      ),
      EtcdLeaveCluster: this.unary(endpoint, 'EtcdLeaveCluster', (n, _req, ctx) =>
        etcdApi.etcdLeaveCluster(n, view, ctx),
      ),
      EtcdForfeitLeadership: this.unary(endpoint, 'EtcdForfeitLeadership', (n, _req, ctx) =>
        etcdApi.etcdForfeitLeadership(n, view, ctx),
      ),
      EtcdRecover: this.etcdRecover(endpoint),
      EtcdSnapshot: this.serverStream(endpoint, 'EtcdSnapshot', (n, _req, ctx, send) =>
        etcdApi.etcdSnapshot(n, view, ctx, send),
      ),
      EtcdStatus: this.unary(endpoint, 'EtcdStatus', (n, _req, ctx) => etcdApi.etcdStatus(n, view, ctx)),
      EtcdAlarmList: this.unary(endpoint, 'EtcdAlarmList', (n, _req, ctx) => etcdApi.etcdAlarmList(n, view, ctx)),
      EtcdAlarmDisarm: this.unary(endpoint, 'EtcdAlarmDisarm', (n, _req, ctx) => etcdApi.etcdAlarmDisarm(n, view, ctx)),
      EtcdDefragment: this.unary(endpoint, 'EtcdDefragment', (n, _req, ctx) => etcdApi.etcdDefragment(n, view, ctx)),
      Events: this.serverStream(endpoint, 'Events', this.events()),
      Read: this.serverStream(endpoint, 'Read', (n, req, _ctx, send) => api.read(n, req, send)),
      Reboot: this.unary(endpoint, 'Reboot', (n) => api.reboot(n, view)),
      Reset: this.unary(endpoint, 'Reset', (n, req) => api.reset(n, view, req)),
      ServiceList: this.unary(endpoint, 'ServiceList', (n) => api.serviceList(n)),
      ServiceRestart: this.unary(endpoint, 'ServiceRestart', (n, req) => api.serviceRestart(n, view, req)),
      Version: this.unary(endpoint, 'Version', (n) => api.version(n)),
    };
  }

  private clusterImplementation(endpoint: SimNode): grpc.UntypedServiceImplementation {
    const deps: healthApi.HealthDeps = {
      view: this.cluster.view,
      // the checks reach the other nodes through the node's own apid: refused, or the maintenance TLS failure
      reach: (target) => {
        const node = this.cluster.resolve(target);
        if (!node || !node.reachable) throw connectionRefused(target);
        if (node.inMaintenance) throw maintenanceHandshakeFailure();
        return node;
      },
    };
    return {
      HealthCheck: this.serverStream(endpoint, 'HealthCheck', (n, req, ctx, send) =>
        healthApi.healthCheck(n, deps, req, ctx, send),
      ),
    };
  }

  private timeImplementation(endpoint: SimNode): grpc.UntypedServiceImplementation {
    return {
      Time: this.unary(endpoint, 'Time', (n) => timeApi.time(n)),
      TimeCheck: this.unary(endpoint, 'TimeCheck', (n, req) => timeApi.timeCheck(n, req)),
    };
  }

  private cosiImplementation(endpoint: SimNode): grpc.UntypedServiceImplementation {
    const view = this.cluster.view;
    return {
      Get: this.unary(
        endpoint,
        'Get',
        (n, req, ctx) => [cosi.cosiGet(n, view, req, ctx)],
        (payloads) => payloads[0] ?? {},
      ),
      List: this.serverStream(endpoint, 'List', (n, req, ctx, send) => cosi.cosiList(n, view, req, ctx, send)),
      Watch: this.serverStream(endpoint, 'Watch', (n, req, ctx, send) => cosi.cosiWatch(n, view, req, ctx, send)),
    };
  }
}

class StreamCut extends Error {}
