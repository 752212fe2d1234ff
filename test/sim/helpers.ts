/** Test bench for the simulator: a running cluster on a random loopback range, and raw grpc-js clients from the protos. */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { parse as parseYaml } from 'yaml';
import { scenariosDir } from '../../src/paths.js';
import { normalizeKeyPem } from '../../src/talos/pki.js';
import { talosProtos } from '../../src/talos/proto.js';
import { startSimulator } from '../../src/sim/index.js';
import type { SimCluster, StartOptions } from '../../src/sim/types.js';

/** A distinct 127.x.y.2 base per call, so parallel test files never collide. */
export function randomAddressBase(): string {
  return `127.${1 + Math.floor(Math.random() * 250)}.${1 + Math.floor(Math.random() * 250)}.2`;
}

export interface Bench {
  sim: SimCluster;
  dir: string;
  creds: grpc.ChannelCredentials;
  machine(address: string): MachineClient;
  cosi(address: string): grpc.Client;
  maintenance(address: string): MachineClient;
  close(): Promise<void>;
}

type AnyFn = (...args: unknown[]) => unknown;
export type MachineClient = grpc.Client & Record<string, (...args: unknown[]) => unknown>;

export async function startBench(scenario: string, opts: Partial<StartOptions> = {}): Promise<Bench> {
  const dir = mkdtempSync(join(tmpdir(), 'talos-dr-sim-'));
  const sim = await startSimulator({ scenario, dir, port: 0, addressBase: randomAddressBase(), speed: 1000, ...opts });
  const config = parseYaml(readFileSync(sim.talosconfigPath, 'utf8')) as {
    contexts: Record<string, { ca: string; crt: string; key: string }>;
  };
  const ctx = config.contexts['talos-dr-sim'];
  if (!ctx) throw new Error('no talos-dr-sim context');
  const pem = (b64: string): Buffer => Buffer.from(b64, 'base64');
  const creds = grpc.credentials.createSsl(
    pem(ctx.ca),
    Buffer.from(normalizeKeyPem(pem(ctx.key).toString())),
    pem(ctx.crt),
  );
  const insecure = grpc.credentials.createSsl(null, null, null, {
    rejectUnauthorized: false,
    checkServerIdentity: () => undefined,
  });
  const clients: grpc.Client[] = [];
  const protos = talosProtos();
  const make = <T extends grpc.Client>(
    ctor: new (a: string, c: grpc.ChannelCredentials) => T,
    address: string,
    c: grpc.ChannelCredentials,
  ): T => {
    const client = new ctor(`${address}:${sim.port}`, c);
    clients.push(client);
    return client;
  };
  return {
    sim,
    dir,
    creds,
    machine: (address) => make(protos.machine.MachineService as never, address, creds) as MachineClient,
    cosi: (address) => make(protos.cosi.resource.State as never, address, creds),
    maintenance: (address) => make(protos.machine.MachineService as never, address, insecure) as MachineClient,
    close: async () => {
      for (const c of clients) c.close();
      await sim.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface CallOpts {
  nodes?: string[];
  node?: string;
  timeoutMs?: number;
}

function metadataFor(opts: CallOpts): grpc.Metadata {
  const md = new grpc.Metadata();
  for (const n of opts.nodes ?? []) md.add('nodes', n);
  if (opts.node) md.set('node', opts.node);
  return md;
}

const deadline = (opts: CallOpts): Date => new Date(Date.now() + (opts.timeoutMs ?? 5000));

export function unary<T = Record<string, unknown>>(
  client: grpc.Client,
  method: string,
  req: unknown,
  opts: CallOpts = {},
): Promise<T> {
  return new Promise((resolve, reject) => {
    const fn = (client as unknown as Record<string, AnyFn>)[method];
    if (!fn) throw new Error(`no method ${method}`);
    fn.call(client, req, metadataFor(opts), { deadline: deadline(opts) }, (err: grpc.ServiceError | null, res: T) =>
      err ? reject(err) : resolve(res),
    );
  });
}

export function collect<T = Record<string, unknown>>(
  client: grpc.Client,
  method: string,
  req: unknown,
  opts: CallOpts = {},
): Promise<T[]> {
  return new Promise((resolve, reject) => {
    const fn = (client as unknown as Record<string, AnyFn>)[method];
    if (!fn) throw new Error(`no method ${method}`);
    const stream = fn.call(client, req, metadataFor(opts), {
      deadline: deadline(opts),
    }) as grpc.ClientReadableStream<T>;
    const out: T[] = [];
    stream.on('data', (m: T) => out.push(m));
    stream.on('error', reject);
    stream.on('end', () => resolve(out));
  });
}

export function upload<T = Record<string, unknown>>(
  client: grpc.Client,
  bytes: Buffer,
  opts: CallOpts = {},
  chunk = 4096,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const fn = (client as unknown as Record<string, AnyFn>).EtcdRecover;
    if (!fn) throw new Error('no EtcdRecover');
    const stream = fn.call(
      client,
      metadataFor(opts),
      { deadline: deadline(opts) },
      (err: grpc.ServiceError | null, res: T) => (err ? reject(err) : resolve(res)),
    ) as grpc.ClientWritableStream<unknown>;
    for (let at = 0; at < bytes.length; at += chunk) stream.write({ bytes: bytes.subarray(at, at + chunk) });
    stream.end();
  });
}

export const concatBytes = (messages: { bytes?: Buffer }[]): Buffer =>
  Buffer.concat(messages.map((m) => m.bytes ?? Buffer.alloc(0)));

/** Polls until the check passes (real time), failing with the last observation. */
export async function eventually<T>(
  probe: () => Promise<T> | T,
  ok: (value: T) => boolean,
  timeoutMs = 8000,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: T = await probe();
  while (!ok(last)) {
    if (Date.now() > end) {
      throw new Error(
        `condition not met in ${timeoutMs} ms; last: ${JSON.stringify(last)}; waited at ${new Error().stack?.split('\n')[2]?.trim()}`,
      );
    }
    await new Promise((r) => setTimeout(r, 20));
    last = await probe();
  }
  return last;
}

/**
 * A plain TCP connection to the node's API port: 'connected', or the socket error's code ('ECONNREFUSED' when nothing
 * listens there, as on a machine that is down: a client then gets no gRPC status at all).
 */
export function tcpConnect(address: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ host: address, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
  });
}

export async function etcdState(bench: Bench, address: string): Promise<string | undefined> {
  const res = await unary<{ messages: { services: { id: string; state: string }[] }[] }>(
    bench.machine(address),
    'ServiceList',
    {},
  );
  return res.messages[0]?.services.find((s) => s.id === 'etcd')?.state;
}

/**
 * The node's boot id (/proc/sys/kernel/random/boot_id, as talosctl reboot reads it to see that a node came back). After
 * Reset or Reboot returned, a node keeps answering with its old state for a moment (the sequence runs after the reply:
 * node.ts's RESET_SEQUENCE_START_MS), so waiting for a state it already had proves nothing; wait for a new boot id.
 */
export async function bootId(bench: Bench, address: string): Promise<string> {
  return concatBytes(await collect(bench.machine(address), 'Read', { path: '/proc/sys/kernel/random/boot_id' }))
    .toString()
    .trim();
}

/** A shipped scenario as another Talos version would run it: a copy with `talosVersion` set, returned as a path. */
export function scenarioAtVersion(name: string, version: string): string {
  const source = name.endsWith('.yaml') ? name : join(scenariosDir(), `${name}.yaml`);
  const text = readFileSync(source, 'utf8').replace(/^talosVersion:.*\n/m, '');
  const dir = mkdtempSync(join(tmpdir(), 'talos-dr-scenario-'));
  const path = join(dir, 'scenario.yaml');
  writeFileSync(path, `${text}\ntalosVersion: "${version}"\n`);
  return path;
}
