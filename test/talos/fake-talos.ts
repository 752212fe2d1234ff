/**
 * The client's own bench: an in-process grpc-js server on loopback speaking the Talos wire (mTLS with an Ed25519 CA
 * from our pki.ts, the project's protos) and imitating apid's `nodes` fan-out: per-node answers concatenated with
 * metadata.hostname, a failed node as a message with only metadata.error/status, the RPC status OK. Handlers are
 * per test; anything not given answers Unimplemented like a real node would.
 */
import * as grpc from '@grpc/grpc-js';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  generateCa,
  issueClientCert,
  issueServerCert,
  talosconfigYaml,
  type CertificateAuthority,
  type PemPair,
} from '../../src/talos/pki.js';
import { cosiStateService, machineService } from '../../src/talos/proto.js';
import { CODE_NAMES } from '../../src/talos/errors.js';

/** Thrown by a handler: the node fails with this code and bare message. */
export class NodeFailure extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

/** Thrown by a unary handler: apid sends nothing for this node (the client must still report it). */
export const NO_ANSWER = new Error('no answer');

type Obj = Record<string, unknown>;
export type UnaryHandler = (node: string, request: Obj, call: { metadata: grpc.Metadata }) => Obj | Promise<Obj>;
/** A stream handler yields payload messages (Buffers become Data.bytes) and may throw NodeFailure. */
export type StreamHandler = (node: string, request: Obj) => AsyncIterable<Buffer | Obj>;
export type UploadHandler = (node: string, chunks: Buffer[]) => Obj | Promise<Obj>;

export interface FakeTalosHandlers {
  unary?: Record<string, UnaryHandler>;
  streams?: Record<string, StreamHandler>;
  upload?: UploadHandler;
  cosiGet?: (node: string, request: Obj) => Obj | Promise<Obj>;
  /** COSI List: the resources streamed, one per message (may throw NodeFailure) */
  cosiList?: (node: string, request: Obj) => Obj[] | Promise<Obj[]>;
}

export interface FakeTalos {
  address: string;
  port: number;
  /** metadata seen by the server, per call, in order */
  seen: { method: string; nodes: string[]; node: string[] }[];
  uploads: { node: string; chunkSizes: number[]; bytes: Buffer }[];
  stop(): Promise<void>;
}

export interface TestPki {
  ca: CertificateAuthority;
  client: PemPair;
}

export async function makePki(): Promise<TestPki> {
  const ca = await generateCa();
  return { ca, client: await issueClientCert(ca, { roles: ['os:admin'] }) };
}

const goText = (code: number, message: string) => `rpc error: code = ${CODE_NAMES[code]} desc = ${message}`;

function failedMessage(node: string, error: unknown): Obj {
  const failure = error instanceof NodeFailure ? error : new NodeFailure(2, String((error as Error)?.message ?? error));
  return {
    metadata: {
      hostname: node,
      error: goText(failure.code, failure.message),
      status: { code: failure.code, message: failure.message },
    },
  };
}

const statusError = (error: unknown): Partial<grpc.StatusObject> =>
  error instanceof NodeFailure
    ? { code: error.code, details: error.message }
    : { code: grpc.status.UNKNOWN, details: String((error as Error)?.message ?? error) };

export async function startFakeTalos(
  pki: TestPki,
  handlers: FakeTalosHandlers,
  opts: { host?: string; serverCert?: PemPair; selfName?: string; serverOnlyTls?: boolean } = {},
): Promise<FakeTalos> {
  const host = opts.host ?? '127.0.0.1';
  const serverCert = opts.serverCert ?? (await issueServerCert(pki.ca, { ips: [host] }));
  const seen: FakeTalos['seen'] = [];
  const uploads: FakeTalos['uploads'] = [];
  const selfName = opts.selfName ?? host;
  const record = (method: string, md: grpc.Metadata) => {
    // Node's http2 server joins repeated header entries with ", " (grpc-go keeps them apart, as apid needs).
    const nodes = md.get('nodes').flatMap((value) => String(value).split(/,\s*/));
    seen.push({ method, nodes, node: md.get('node').map(String) });
    return nodes;
  };

  const server = new grpc.Server();
  const machineImpl: grpc.UntypedServiceImplementation = {};
  for (const [name, def] of Object.entries(machineService())) {
    if (def.requestStream && !def.responseStream) continue;
    if (def.responseStream) {
      machineImpl[name] = async (call: grpc.ServerWritableStream<Obj, Obj>) => {
        const nodes = record(name, call.metadata);
        const targets = nodes.length ? nodes : [selfName];
        const handler = handlers.streams?.[name];
        for (const node of targets) {
          const hostname = nodes.length ? node : '';
          try {
            if (!handler) throw new NodeFailure(grpc.status.UNIMPLEMENTED, `method ${name} not implemented`);
            for await (const item of handler(node, call.request)) {
              if (call.cancelled) return;
              const message = Buffer.isBuffer(item) ? { bytes: item } : item;
              const ok = call.write({ ...message, metadata: { hostname, ...((message.metadata as Obj) ?? {}) } });
              if (!ok) await new Promise((resolve) => call.once('drain', resolve));
            }
          } catch (error) {
            if (!nodes.length) return call.destroy(Object.assign(new Error('failed'), statusError(error)));
            call.write(failedMessage(node, error));
          }
        }
        call.end();
      };
      continue;
    }
    machineImpl[name] = async (call: grpc.ServerUnaryCall<Obj, Obj>, callback: grpc.sendUnaryData<Obj>) => {
      const nodes = record(name, call.metadata);
      const handler = handlers.unary?.[name];
      const answer = async (node: string) => {
        if (!handler) throw new NodeFailure(grpc.status.UNIMPLEMENTED, `method ${name} not implemented`);
        return handler(node, call.request, call);
      };
      if (!nodes.length) {
        try {
          callback(null, { messages: [await answer(selfName)] });
        } catch (error) {
          callback(statusError(error));
        }
        return;
      }
      const messages = await Promise.all(
        nodes.map(async (node) => {
          try {
            return { ...(await answer(node)), metadata: { hostname: node } };
          } catch (error) {
            return error === NO_ANSWER ? undefined : failedMessage(node, error);
          }
        }),
      );
      callback(null, { messages: messages.filter(Boolean) });
    };
  }
  machineImpl.EtcdRecover = (call: grpc.ServerReadableStream<Obj, Obj>, callback: grpc.sendUnaryData<Obj>) => {
    const nodes = record('EtcdRecover', call.metadata);
    const node = nodes[0] ?? selfName;
    const chunks: Buffer[] = [];
    let cancelled = false;
    call.on('cancelled', () => (cancelled = true));
    call.on('data', (message: Obj) => chunks.push(message.bytes as Buffer));
    call.on('end', async () => {
      await new Promise((resolve) => setImmediate(resolve));
      // a cancelled upload is not an upload: a real node deletes the partial file
      if (cancelled || call.cancelled) return;
      uploads.push({ node, chunkSizes: chunks.map((c) => c.length), bytes: Buffer.concat(chunks) });
      try {
        if (!handlers.upload) throw new NodeFailure(grpc.status.UNIMPLEMENTED, 'method EtcdRecover not implemented');
        const message = await handlers.upload(node, chunks);
        callback(null, { messages: [{ ...message, metadata: { hostname: nodes.length ? node : '' } }] });
      } catch (error) {
        if (!nodes.length) callback(statusError(error));
        else callback(null, { messages: [failedMessage(node, error)] });
      }
    });
  };
  server.addService(machineService(), machineImpl);
  server.addService(cosiStateService(), {
    Get: async (call: grpc.ServerUnaryCall<Obj, Obj>, callback: grpc.sendUnaryData<Obj>) => {
      record('Get', call.metadata);
      if (call.metadata.get('nodes').length) {
        return callback({
          code: grpc.status.INVALID_ARGUMENT,
          details: 'one-2-many proxying is not supported for COSI methods',
        });
      }
      const node = String(call.metadata.get('node')[0] ?? selfName);
      try {
        if (!handlers.cosiGet) throw new NodeFailure(grpc.status.UNIMPLEMENTED, 'not implemented');
        callback(null, { resource: await handlers.cosiGet(node, call.request) });
      } catch (error) {
        callback(statusError(error));
      }
    },
    List: async (call: grpc.ServerWritableStream<Obj, Obj>) => {
      record('List', call.metadata);
      const node = String(call.metadata.get('node')[0] ?? selfName);
      try {
        for (const resource of handlers.cosiList ? await handlers.cosiList(node, call.request) : [])
          call.write({ resource });
        call.end();
      } catch (error) {
        call.emit('error', statusError(error));
      }
    },
    Watch: (call: grpc.ServerWritableStream<Obj, Obj>) => call.end(),
  });

  // Maintenance mode asks for no client certificate.
  const credentials = grpc.ServerCredentials.createSsl(
    opts.serverOnlyTls ? null : Buffer.from(pki.ca.certPem),
    [{ cert_chain: Buffer.from(serverCert.certPem), private_key: Buffer.from(serverCert.keyPem) }],
    !opts.serverOnlyTls,
  );
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${host}:0`, credentials, (error, bound) => (error ? reject(error) : resolve(bound))),
  );
  return {
    address: `${host}:${port}`,
    port,
    seen,
    uploads,
    stop: () =>
      new Promise<void>((resolve) => {
        server.forceShutdown();
        resolve();
      }),
  };
}

/** Writes a talosconfig the way Talos does into a fresh temp folder; returns its path. */
export function writeTalosconfig(
  pki: { ca: PemPair; client: PemPair },
  endpoints: string[],
  nodes?: string[],
  context = 'test',
): string {
  const dir = mkdtempSync(join(tmpdir(), 'talos-dr-test-'));
  const path = join(dir, 'talosconfig');
  writeFileSync(
    path,
    talosconfigYaml({ context, endpoints, ...(nodes ? { nodes } : {}), ca: pki.ca, client: pki.client }),
  );
  return path;
}

/** A closed port on loopback: bind, note the port, close. */
export async function closedPort(host = '127.0.0.1'): Promise<number> {
  const net = await import('node:net');
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
