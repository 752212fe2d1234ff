/**
 * A blank node in maintenance mode (talos-api-facts §4.5): machined answers directly on :50000 with a certificate
 * from its own throw-away CA, requests no client certificate and takes no node metadata. Nothing can be verified
 * against a CA, so the server certificate's SPKI fingerprint is captured for the user to compare (what talosctl's
 * --cert-fingerprint pins), and a fingerprint the caller already trusts can be pinned.
 */
import * as grpc from '@grpc/grpc-js';
import type { MethodDefinition } from '@grpc/proto-loader';
import { UserError } from '../errors.js';
import { applyRequest, TalosRpcError } from './client.js';
import { channelOptions, EndpointPool, TalosChannelCredentials, waitForChannel } from './connection.js';
import { Code, describeFailure, failureFromServiceError, rpcFailure } from './errors.js';
import { machineTypeFromSpec } from './mapping.js';
import { cosiStateService, machineService } from './proto.js';
import { parseEndpoint } from './talosconfig.js';
import type { ApplyConfiguration__Output } from './generated/machine/ApplyConfiguration.js';
import type { Resource__Output } from './generated/cosi/resource/Resource.js';
import type { ApplyMode, ApplyResult, CallOptions, MachineType, MaintenanceClient, RpcFailure } from './types.js';

export interface MaintenanceOptions {
  /** Refuse the node unless its certificate has this SPKI fingerprint (sha256, base64). */
  expectedFingerprint?: string;
  /** How long to wait for the TLS connection. */
  connectTimeoutMs?: number;
  /** Default deadline of each call. */
  defaultTimeoutMs?: number;
  signal?: AbortSignal;
}

type AnyMethod = MethodDefinition<object, object, object, object>;

class FingerprintMismatch extends Error {}

class GrpcMaintenanceClient implements MaintenanceClient {
  constructor(
    private readonly address: string,
    private readonly pool: EndpointPool,
    readonly serverFingerprint: string,
    private readonly defaultTimeoutMs: number,
  ) {}

  private call<Res>(method: AnyMethod, request: object, what: string, opts: CallOptions): Promise<Res> {
    const deadline = Date.now() + (opts.timeoutMs ?? this.defaultTimeoutMs);
    const attempt = (client: grpc.Client) =>
      new Promise<Res>((resolve, reject) => {
        // No node metadata: there is no apid in maintenance mode to forward anything.
        const call = client.makeUnaryRequest<object, Res>(
          method.path,
          method.requestSerialize as (value: object) => Buffer,
          method.responseDeserialize as (bytes: Buffer) => Res,
          request,
          new grpc.Metadata(),
          { deadline },
          (error, response) => {
            opts.signal?.removeEventListener('abort', onAbort);
            if (error) reject(error);
            else resolve(response as Res);
          },
        );
        const onAbort = () => call.cancel();
        opts.signal?.addEventListener('abort', onAbort, { once: true });
      });
    return this.pool
      .run(attempt, { deadline, idempotent: false, ...(opts.signal ? { signal: opts.signal } : {}) })
      .catch((error: unknown) => {
        const failure: RpcFailure = opts.signal?.aborted
          ? rpcFailure(Code.canceled, 'cancelled by the user')
          : failureFromServiceError(error);
        throw new TalosRpcError(this.address, failure, what);
      });
  }

  async applyConfiguration(
    req: { data: Buffer; mode: ApplyMode; dryRun?: boolean },
    opts: CallOptions = {},
  ): Promise<ApplyResult> {
    const response = await this.call<{ messages: ApplyConfiguration__Output[] }>(
      machineService().ApplyConfiguration as AnyMethod,
      applyRequest(req),
      'applying the configuration',
      opts,
    );
    const message = response.messages[0];
    if (!message) {
      throw new TalosRpcError(this.address, rpcFailure(Code.unknown, 'the node sent an empty answer'), 'apply');
    }
    return { mode: message.mode as ApplyMode, modeDetails: message.modeDetails, warnings: message.warnings };
  }

  async machineType(opts: CallOptions = {}): Promise<MachineType> {
    const response = await this.call<{ resource: Resource__Output | null }>(
      cosiStateService().Get as AnyMethod,
      { namespace: 'config', type: 'MachineTypes.config.talos.dev', id: 'machine-type' },
      'reading the machine type',
      opts,
    );
    return machineTypeFromSpec(response.resource?.spec);
  }

  close(): void {
    this.pool.close();
  }
}

/**
 * Connects to a node in maintenance mode and returns once TLS is up, with the server's fingerprint. Refuses (with a
 * sentence) when the node cannot be reached or its fingerprint differs from `expectedFingerprint`.
 */
export async function connectMaintenance(address: string, opts: MaintenanceOptions = {}): Promise<MaintenanceClient> {
  const endpoint = parseEndpoint(address);
  let fingerprint: string | undefined;
  const credentials = new TalosChannelCredentials({
    expectedName: endpoint.host,
    onServerFingerprint: (seen) => {
      fingerprint = seen;
      if (opts.expectedFingerprint && seen !== opts.expectedFingerprint.trim()) {
        throw new FingerprintMismatch(
          `certificate fingerprint ${seen} is not the expected ${opts.expectedFingerprint}`,
        );
      }
    },
  });
  const pool = new EndpointPool([endpoint], () => credentials, channelOptions(), {
    connectTimeoutMs: opts.connectTimeoutMs ?? 10_000,
  });
  const client = pool.clientFor(endpoint);
  const state = await waitForChannel(client, Date.now() + (opts.connectTimeoutMs ?? 10_000), opts.signal);
  if (state !== 'ready' || !fingerprint) {
    if (opts.signal?.aborted) pool.close();
    if (opts.signal?.aborted) throw new UserError(`Connecting to ${endpoint.address} was cancelled.`, 3);
    const cause = credentials.lastError?.message ?? (await connectionFailureDetail(client));
    const failure = rpcFailure(Code.unavailable, state === 'timeout' && !cause ? 'no answer in time' : cause);
    pool.close();
    throw new UserError(describeFailure(endpoint.address, failure, 'the maintenance connection'));
  }
  return new GrpcMaintenanceClient(endpoint.address, pool, fingerprint, opts.defaultTimeoutMs ?? 30_000);
}

/** grpc-js keeps the socket error (e.g. ECONNREFUSED) to itself until a call fails; one quick call brings it out. */
function connectionFailureDetail(client: grpc.Client): Promise<string> {
  const method = cosiStateService().Get as AnyMethod;
  return new Promise((resolve) => {
    client.makeUnaryRequest(
      method.path,
      method.requestSerialize as (value: object) => Buffer,
      method.responseDeserialize as (bytes: Buffer) => object,
      {},
      new grpc.Metadata(),
      { deadline: Date.now() + 2000 },
      (error) => resolve(error ? failureFromServiceError(error).message : 'the connection failed'),
    );
  });
}
