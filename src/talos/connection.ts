/**
 * Channels to Talos endpoints: TLS set up the way apid expects (mTLS with the talosconfig CA, ALPN h2), the channel
 * options of talos-api-facts §1/§4.4, and endpoint failover that remembers which endpoint answered.
 *
 * TLS is done by our own ChannelCredentials rather than grpc-js's createSsl, for two reasons: grpc-js sets the TLS
 * servername to the target host, and Node warns (DEP0123) when that is an IP address — talos endpoints usually are;
 * and maintenance mode needs the server certificate's fingerprint, which grpc-js does not expose. We never send an
 * IP as SNI (Go's client does not either) and check the certificate against the endpoint's host ourselves, or
 * against the server-name override for tunnels.
 */
import type * as grpc from '@grpc/grpc-js';
import { isIP, type Socket } from 'node:net';
import tls, { type PeerCertificate } from 'node:tls';
import type { Endpoint } from './talosconfig.js';
import { spkiFingerprint } from './pem.js';
import { Code } from './errors.js';
import { grpcJs } from './grpc-lib.js';

/** apid's and talosctl's message limit (GRPCMaxMessageSize); grpc-js defaults to 4 MiB. */
export const MAX_MESSAGE_BYTES = 32 * 1024 * 1024;

/**
 * Channel options shared by every connection. No keepalive pings: apid enforces grpc-go's default minimum of 5 min
 * and answers faster pings with GOAWAY too_many_pings. Reconnect backoff is capped low because during a recovery
 * nodes reboot and the wizard must notice quickly when one is back.
 */
export function channelOptions(serverName?: string): grpc.ChannelOptions {
  return {
    'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
    'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
    'grpc.initial_reconnect_backoff_ms': 500,
    'grpc.max_reconnect_backoff_ms': 5000,
    'grpc.use_local_subchannel_pool': 1,
    // talosctl's window sizes (65535×32 per stream): fewer flow-control stalls on big snapshot streams.
    'grpc-node.flow_control_window': 65535 * 32,
    ...(serverName ? { 'grpc.default_authority': serverName, 'grpc.ssl_target_name_override': serverName } : {}),
  };
}

export interface TlsDialOptions {
  /** The name or IP the server certificate must carry. */
  expectedName: string;
  /**
   * A verified server: the CA to trust (absent: the system's roots, as talosctl does for a context without `ca`) and
   * the client certificate and key (absent: none sent). Absent for maintenance mode (server-only TLS, unverified).
   */
  mutual?: { caPem?: string | undefined; certPem?: string | undefined; keyPem?: string | undefined };
  /** Maintenance mode: called with the server certificate's SPKI fingerprint; may throw to refuse the server. */
  onServerFingerprint?: (fingerprint: string) => void;
}

/** SNI may only carry a host name (RFC 6066); for an IP we send none, as Go's client does. */
function sniFor(name: string): string | undefined {
  return isIP(name) ? undefined : name;
}

/**
 * The TLS of one endpoint, for grpc-js channels (channelCredentials()) and raw HTTP/2 streams (tlsOptions()) alike.
 * Not itself a grpc-js ChannelCredentials, so that a process whose only calls are data streams never loads grpc-js.
 */
export class TalosChannelCredentials {
  private readonly secureContext: tls.SecureContext;
  private forChannel: grpc.ChannelCredentials | undefined;
  /**
   * The last TLS or socket error seen on a connection. grpc-js reports a handshake the server rejected after it
   * completed (TLS 1.3 sends the client-certificate alert afterwards) only as "Failed to connect"; this keeps the cause.
   */
  lastError: Error | undefined;

  constructor(private readonly dial: TlsDialOptions) {
    const { caPem, certPem, keyPem } = dial.mutual ?? {};
    this.secureContext = tls.createSecureContext({
      ...(caPem ? { ca: caPem } : {}),
      ...(certPem && keyPem ? { cert: certPem, key: keyPem } : {}),
    });
  }

  /** These credentials as grpc-js takes them (grpc-js is loaded here, on the first channel). */
  channelCredentials(): grpc.ChannelCredentials {
    return (this.forChannel ??= new (channelCredentialsClass())(this));
  }

  private watchEarlyClose(socket: tls.TLSSocket): void {
    const connectedAt = Date.now();
    socket.once('close', () => {
      if (Date.now() - connectedAt < EARLY_CLOSE_MS && !this.lastError) {
        this.lastError = new Error(
          'the server closed the connection right after the TLS handshake, so it probably refused the client certificate',
        );
      }
    });
  }

  /** The TLS options of every connection these credentials make (also used for raw HTTP/2 streams). */
  tlsOptions(): tls.ConnectionOptions {
    const { expectedName, mutual } = this.dial;
    const servername = sniFor(expectedName);
    return {
      secureContext: this.secureContext,
      ALPNProtocols: ['h2'],
      ...(servername ? { servername } : {}),
      rejectUnauthorized: Boolean(mutual),
      checkServerIdentity: (_host: string, cert: PeerCertificate) => tls.checkServerIdentity(expectedName, cert),
    };
  }

  /** The TLS handshake over a connected socket, for a grpc-js channel. */
  handshake(socket: Socket): Promise<{ socket: Socket; secure: boolean }> {
    const { mutual, onServerFingerprint } = this.dial;
    return new Promise((resolve, reject) => {
      const tlsSocket = tls.connect({ socket, ...this.tlsOptions() }, () => {
        try {
          if (mutual && !tlsSocket.authorized) throw tlsSocket.authorizationError;
          if (onServerFingerprint) onServerFingerprint(peerFingerprint(tlsSocket));
        } catch (error) {
          this.lastError = error instanceof Error ? error : new Error(String(error));
          tlsSocket.destroy();
          reject(this.lastError);
          return;
        }
        this.lastError = undefined;
        this.watchEarlyClose(tlsSocket);
        resolve({ socket: tlsSocket, secure: true });
      });
      tlsSocket.on('error', (error) => {
        this.lastError = error;
        reject(error);
      });
    });
  }
}

type ChannelCredentialsClass = new (tls: TalosChannelCredentials) => grpc.ChannelCredentials;
let channelCredentialsType: ChannelCredentialsClass | undefined;

/** grpc-js's ChannelCredentials doing our TLS (see the top of this file), defined once grpc-js is loaded. */
function channelCredentialsClass(): ChannelCredentialsClass {
  if (channelCredentialsType) return channelCredentialsType;
  const grpcLib = grpcJs();
  class OwnTlsCredentials extends grpcLib.ChannelCredentials {
    constructor(private readonly own: TalosChannelCredentials) {
      super();
    }

    override _isSecure(): boolean {
      return true;
    }

    override _equals(other: grpc.ChannelCredentials): boolean {
      return other === this;
    }

    override _createSecureConnector(
      _target: unknown,
      _options: grpc.ChannelOptions,
      callCredentials?: grpc.CallCredentials,
    ): ReturnType<grpc.ChannelCredentials['_createSecureConnector']> {
      const credentials = callCredentials ?? grpcLib.credentials.createEmpty();
      return {
        connect: (socket: Socket) => this.own.handshake(socket),
        waitForReady: () => Promise.resolve(),
        getCallCredentials: () => credentials,
        destroy: () => {},
      };
    }
  }
  channelCredentialsType = OwnTlsCredentials;
  return OwnTlsCredentials;
}

/**
 * A server that refuses our client certificate under TLS 1.3 does so after our side of the handshake is done: Go
 * sends an alert (seen as an 'error'), Node just closes. A close this soon after the handshake is remembered as
 * the likely cause, so the user is not told only "Failed to connect".
 */
const EARLY_CLOSE_MS = 1000;

function peerFingerprint(socket: tls.TLSSocket): string {
  const cert = socket.getPeerX509Certificate();
  if (!cert) throw new Error('the server sent no certificate');
  return spkiFingerprint(cert.toString());
}

export type ReadyState = 'ready' | 'failed' | 'timeout';

/** Waits until the channel is READY, has failed to connect (TRANSIENT_FAILURE) or the deadline passes. */
export async function waitForChannel(client: grpc.Client, deadline: number, signal?: AbortSignal): Promise<ReadyState> {
  const channel = client.getChannel();
  let state = channel.getConnectivityState(true);
  for (;;) {
    if (state === grpcJs().connectivityState.READY) return 'ready';
    if (state === grpcJs().connectivityState.TRANSIENT_FAILURE || state === grpcJs().connectivityState.SHUTDOWN) {
      return 'failed';
    }
    if (signal?.aborted || Date.now() >= deadline) return 'timeout';
    const changed = await new Promise<boolean>((resolve) => {
      const onAbort = () => resolve(false);
      signal?.addEventListener('abort', onAbort, { once: true });
      channel.watchConnectivityState(state, deadline, (error) => {
        signal?.removeEventListener('abort', onAbort);
        resolve(!error);
      });
    });
    if (!changed) return 'timeout';
    state = channel.getConnectivityState(true);
  }
}

/** grpc-js says so when a call failed because no transport could be set up: it was never sent. */
export function neverSent(error: unknown): boolean {
  const e = error as { code?: number; details?: string };
  return e?.code === Code.unavailable && /^No connection established|ECONNREFUSED/i.test(e.details ?? '');
}

export interface EndpointPoolOptions {
  /** How long to wait for an endpoint that is not connected yet before trying the next one. */
  connectTimeoutMs: number;
}

/**
 * The endpoints of one talosconfig context, each with its own channel. Calls go to the endpoint that answered last;
 * when it cannot be reached, the next ones are tried in order.
 */
export class EndpointPool {
  private readonly clients = new Map<string, grpc.Client>();
  private readonly credentials = new Map<string, TalosChannelCredentials>();
  private current = 0;
  private answered: string | undefined;
  /** The endpoint of the most recent attempt, answered or not. */
  lastTried: Endpoint | undefined;

  constructor(
    readonly endpoints: Endpoint[],
    private readonly credentialsFor: (endpoint: Endpoint) => TalosChannelCredentials,
    private readonly options: grpc.ChannelOptions,
    private readonly poolOptions: EndpointPoolOptions,
  ) {
    if (endpoints.length === 0) throw new Error('EndpointPool needs at least one endpoint');
  }

  get endpointInUse(): string | undefined {
    return this.answered;
  }

  /** How long a connection to one endpoint may take to come up before the next is tried (the raw HTTP/2 calls too). */
  get connectTimeoutMs(): number {
    return this.poolOptions.connectTimeoutMs;
  }

  clientFor(endpoint: Endpoint): grpc.Client {
    let client = this.clients.get(endpoint.address);
    if (!client) {
      const credentials = this.credentialsOf(endpoint).channelCredentials();
      client = new (grpcJs().Client)(endpoint.address, credentials, this.options);
      this.clients.set(endpoint.address, client);
    }
    return client;
  }

  /** The TLS/socket error last seen towards this endpoint, if its credentials keep one. */
  transportError(endpoint: Endpoint): Error | undefined {
    return this.credentials.get(endpoint.address)?.lastError;
  }

  /** The credentials of an endpoint (for raw HTTP/2 streams that share its TLS set-up). */
  credentialsOf(endpoint: Endpoint): TalosChannelCredentials {
    let credentials = this.credentials.get(endpoint.address);
    if (!credentials) {
      credentials = this.credentialsFor(endpoint);
      this.credentials.set(endpoint.address, credentials);
    }
    return credentials;
  }

  /** Records that this endpoint answered: calls go there first from now on. */
  answeredBy(endpoint: Endpoint): void {
    this.remember(endpoint);
  }

  /** Endpoints in the order to try them: the last one that answered first. */
  order(): Endpoint[] {
    return this.endpoints.map((_, i) => this.endpoints[(this.current + i) % this.endpoints.length] as Endpoint);
  }

  private remember(endpoint: Endpoint): void {
    this.current = this.endpoints.indexOf(endpoint);
    this.answered = endpoint.address;
  }

  /**
   * Runs `attempt` against the first endpoint that connects. A call that fails because it could not be sent is
   * moved to the next endpoint; so is any Unavailable failure of an idempotent (read-only) call. Anything else is
   * the answer and is thrown as it is.
   */
  async run<T>(
    attempt: (client: grpc.Client, endpoint: Endpoint) => Promise<T>,
    opts: { deadline: number; idempotent: boolean; signal?: AbortSignal },
  ): Promise<T> {
    const order = this.order();
    let lastError: unknown;
    for (const [index, endpoint] of order.entries()) {
      const isLast = index === order.length - 1;
      const client = this.clientFor(endpoint);
      const connectDeadline = Math.min(opts.deadline, Date.now() + this.poolOptions.connectTimeoutMs);
      const state = await waitForChannel(client, connectDeadline, opts.signal);
      if (state !== 'ready' && !isLast && !opts.signal?.aborted) continue;
      this.lastTried = endpoint;
      try {
        const result = await attempt(client, endpoint);
        this.remember(endpoint);
        return result;
      } catch (error) {
        lastError = error;
        const moveOn = neverSent(error) || (opts.idempotent && isUnavailable(error));
        if (!moveOn || isLast || opts.signal?.aborted) throw error;
      }
    }
    throw lastError;
  }

  close(): void {
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
  }
}

const isUnavailable = (error: unknown) => (error as { code?: number })?.code === Code.unavailable;
