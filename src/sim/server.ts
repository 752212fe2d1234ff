/**
 * The wire: every simulated node listens on its own loopback address with its own grpc-js server, and behaves like
 * apid in front of machined (talos-api-facts §4.1). This file keeps the listeners: one per node, bound and re-bound
 * as the node goes down, comes back or switches to maintenance mode (server-only TLS with a self-signed certificate).
 * The proxy semantics around every call are wire-calls.ts (routing and apid's errors: apid-route.ts), the
 * services' method tables wire-services.ts.
 */
import * as grpc from '@grpc/grpc-js';
import { cosiStateService, machineService, talosProtos, timeService } from '../talos/proto.js';
import type { PemPair } from '../talos/pki.js';
import { apidServiceDefinition } from './apid-layout.js';
import type { SimNode } from './node.js';
import { WireCalls, type WireCluster } from './wire-calls.js';
import {
  clusterImplementation,
  cosiImplementation,
  machineImplementation,
  timeImplementation,
} from './wire-services.js';

export type { WireCluster, WireFaults } from './wire-calls.js';

const MAX_MESSAGE = 32 * 1024 * 1024;

export interface WirePki {
  caPem: string;
  serverCert(node: SimNode): PemPair;
  maintenanceCert(node: SimNode): PemPair;
}

/** Running or in maintenance mode: the machine is on and apid (or maintenance's API) listens. */
function isUp(node: SimNode): boolean {
  return node.state.mode === 'running' || node.state.mode === 'maintenance';
}

/** One simulated node's listener. */
interface NodeListener {
  server: grpc.Server | null;
  /** The TLS setup it listens with: server-only (maintenance) or mutual. */
  maintenance: boolean;
}

export class SimWire {
  private readonly listeners = new Map<SimNode, NodeListener>();
  private readonly calls: WireCalls;
  port = 0;

  constructor(
    private readonly cluster: WireCluster,
    private readonly pki: WirePki,
  ) {
    this.calls = new WireCalls(cluster);
    // grpc-js logs bind failures ("No address added …") on stderr; the user must only see our one sentence.
    grpc.setLogVerbosity(grpc.logVerbosity.NONE);
  }

  /**
   * Binds every node that is up on its address; the first picks the port when it is 0. A node that is down (powered
   * off in its scenario, or caught off or rebooting by a saved state) gets no listener, as a real machine that is off
   * answers no TCP connection, so a client dialing it gets no apid status at all; its next boot listens (relisten).
   */
  async listenAll(nodes: SimNode[], port: number): Promise<number> {
    this.port = port;
    for (const node of nodes) if (isUp(node)) await this.listen(node);
    const first = nodes[0];
    if (this.port === 0 && first) {
      // Every node is down: the port is still picked now, on the first one, as every node shares it.
      await this.listen(first);
      this.offline(first);
    }
    return this.port;
  }

  async listen(node: SimNode, retryBusy = false): Promise<void> {
    const listener = this.listeners.get(node) ?? { server: null, maintenance: false };
    this.listeners.set(node, listener);
    const server = new grpc.Server({
      'grpc.max_receive_message_length': MAX_MESSAGE,
      'grpc.max_send_message_length': MAX_MESSAGE,
    });
    const { calls, cluster } = this;
    server.addService(apidServiceDefinition(machineService()), machineImplementation(calls, cluster, node));
    server.addService(apidServiceDefinition(cosiStateService()), cosiImplementation(calls, cluster, node));
    server.addService(apidServiceDefinition(timeService()), timeImplementation(calls, node));
    server.addService(
      apidServiceDefinition(talosProtos().cluster.ClusterService.service),
      clusterImplementation(calls, cluster, node),
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
}
