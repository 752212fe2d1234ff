/**
 * The one place that turns gRPC failures and Talos error texts (talos-api-facts §3, §5) into what the user reads:
 * one sentence naming the node, what went wrong and what to do next. Everything else passes RpcFailure values.
 */
import { UserError } from '../errors.js';
import { nodeText } from '../text/sanitize.js';
import type { RpcFailure } from './types.js';

/** Omni's restore guide, named wherever the tool meets an Omni-managed cluster. */
export const OMNI_RESTORE_DOC =
  'https://docs.siderolabs.com/omni/cluster-management/restore-etcd-of-a-cluster-managed-by-cluster-templates';

/** gRPC status names as Go prints them (`codes.Code.String()`), which is how Talos texts name them. */
export const CODE_NAMES = [
  'OK',
  'Canceled',
  'Unknown',
  'InvalidArgument',
  'DeadlineExceeded',
  'NotFound',
  'AlreadyExists',
  'PermissionDenied',
  'ResourceExhausted',
  'FailedPrecondition',
  'Aborted',
  'OutOfRange',
  'Unimplemented',
  'Internal',
  'Unavailable',
  'DataLoss',
  'Unauthenticated',
] as const;

export const Code = {
  canceled: 1,
  unknown: 2,
  invalidArgument: 3,
  deadlineExceeded: 4,
  notFound: 5,
  alreadyExists: 6,
  permissionDenied: 7,
  resourceExhausted: 8,
  failedPrecondition: 9,
  aborted: 10,
  unimplemented: 12,
  internal: 13,
  unavailable: 14,
} as const;

export function codeName(code: number): string {
  return CODE_NAMES[code] ?? `Code(${code})`;
}

/** A failure's message is text the node controls: made one safe, bounded line before anything shows or keeps it. */
export function rpcFailure(code: number, message: string): RpcFailure {
  return { code, codeName: codeName(code), message: nodeText(message, 1000) };
}

/** Go's `status.Error` text: "rpc error: code = AlreadyExists desc = etcd data directory is not empty". */
const GO_STATUS_TEXT = /^rpc error: code = (\w+) desc = ([\s\S]*)$/;

/** A failed node's in-band metadata: `status` (code + bare message) when set, else parsed from `error`. */
export function failureFromMetadata(error: string, status: { code?: number; message?: string } | null | undefined) {
  if (status && status.code) return rpcFailure(status.code, status.message || error);
  const match = GO_STATUS_TEXT.exec(error);
  if (match) {
    const index = CODE_NAMES.indexOf(match[1] as (typeof CODE_NAMES)[number]);
    if (index > 0) return rpcFailure(index, match[2] ?? '');
  }
  return rpcFailure(Code.unknown, error);
}

/** A plain gRPC status error from grpc-js (`code` and `details`), its debug notes removed. */
export function failureFromServiceError(error: unknown): RpcFailure {
  const e = error as { code?: unknown; details?: unknown; message?: unknown };
  if (typeof e?.code === 'number') {
    const details = typeof e.details === 'string' && e.details ? e.details : String(e.message ?? '');
    return rpcFailure(e.code, withoutDebugNotes(details));
  }
  return rpcFailure(Code.unknown, withoutDebugNotes(error instanceof Error ? error.message : String(error)));
}

/**
 * grpc-js's status texts carry notes for its own developers: a deadline as "Deadline exceeded after 4.005s,name
 * resolution: …,metadata filters: …,LB pick: …,remote_addr=…" (resolving-call.js, load-balancing-call.js,
 * subchannel-call.js of @grpc/grpc-js 1.14), name-resolution notes, RST_STREAM codes. None of it may reach the screen,
 * the journal or the report: this keeps what means something to the user.
 */
export function withoutDebugNotes(details: string): string {
  const text = details.replace(/\.?\s*Resolution note:.*$/s, '').trim();
  if (/^Deadline exceeded\b/i.test(text) || /^Waiting for LB pick/i.test(text)) return 'Deadline exceeded';
  const parsing = /^Response message parsing error:\s*(.*)$/s.exec(text);
  if (parsing) return `the answer could not be decoded (${firstLine(parsing[1] ?? '')})`;
  const clientError = /^Received RST_STREAM with code \d+ triggered by internal client error:\s*(.*)$/s.exec(text);
  if (clientError) return `the call was cut (${firstLine(clientError[1] ?? '')})`;
  if (/^Received RST_STREAM with code \d+/i.test(text)) return 'the call was cut by the other side';
  return firstLine(
    text.replace(/,\s*remote_addr=\S*/g, '').replace(/,\s*(LB pick|metadata filters|name resolution):[^,]*/g, ''),
  );
}

const firstLine = (text: string): string => (text.split('\n')[0] ?? '').trim();

/**
 * What the talosconfig context lacks, put into a transport failure's text so the sentence names it: a context without
 * `crt`/`key` sends no client certificate (apid requires one), one without `ca` checks the node against the system's
 * roots (talosctl does the same: siderolabs/talos: pkg/machinery/client/connection.go@v1.12.0:186,200).
 */
export function explainContext(message: string, context: { caPem?: string; certPem?: string }): string {
  if (!context.certPem && CLIENT_CERT_REFUSED.some((text) => message.toLowerCase().includes(text))) {
    return `${NO_CLIENT_CERT}: ${message}`;
  }
  if (!context.caPem && UNKNOWN_CA.some((text) => message.toLowerCase().includes(text))) {
    return `${NO_CA}: ${message}`;
  }
  return message;
}

const NO_CLIENT_CERT = 'the talosconfig context has no client certificate (crt, key)';
const NO_CA = "the talosconfig context has no ca, so the node's certificate was checked against the system's roots";
const UNKNOWN_CA = [
  'unable to verify the first certificate',
  'unable to get local issuer certificate',
  'self-signed certificate',
  'self signed certificate',
  'unable_to_verify_leaf_signature',
  'certificate signature failure',
];
const CLIENT_CERT_REFUSED = [
  'refused the client certificate',
  'alert bad certificate',
  'alert unknown ca',
  'alert certificate required',
  'certificate unknown',
];

/** What kind of trouble a failure is, for decisions (retry, stop, explain). */
export type FailureKind =
  | 'already-bootstrapped'
  | 'bootstrap-not-ready'
  | 'time-not-synced'
  | 'not-control-plane'
  | 'recover-not-ready'
  | 'maintenance-mode'
  | 'container-mode'
  | 'reboot-mode-removed'
  | 'unimplemented'
  | 'not-authorized'
  | 'no-forwarding'
  | 'omni-managed'
  | 'tls-unknown-ca'
  | 'node-not-of-cluster'
  | 'tls-client-cert-expired'
  | 'tls-client-cert-rejected'
  | 'tls-server-cert-expired'
  | 'tls-hostname-mismatch'
  | 'tls-fingerprint-mismatch'
  | 'tls-not-yet-valid'
  | 'tls-no-client-cert'
  | 'tls-no-ca'
  | 'undecodable-answer'
  | 'connection-refused'
  | 'unreachable'
  | 'deadline'
  | 'no-first-byte'
  | 'etcd-no-leader'
  | 'canceled'
  | 'not-found'
  | 'invalid-argument'
  | 'other';

const has = (failure: RpcFailure, ...texts: string[]) => {
  const message = failure.message.toLowerCase();
  return texts.some((text) => message.includes(text.toLowerCase()));
};

export function classifyFailure(failure: RpcFailure): FailureKind {
  switch (failure.code) {
    case Code.alreadyExists:
      return has(failure, 'etcd data directory is not empty') ? 'already-bootstrapped' : 'other';
    case Code.failedPrecondition:
      // v1alpha1_server.go@v1.12.0:126 (siderolabs/talos): Reboot, Shutdown, Upgrade in container mode
      if (has(failure, 'not supported in container mode')) return 'container-mode';
      if (has(failure, 'bootstrap is not available yet')) return 'bootstrap-not-ready';
      if (has(failure, 'time is not in sync yet')) return 'time-not-synced';
      if (has(failure, 'only be performed on a control plane node')) return 'not-control-plane';
      if (has(failure, 'not ready for recovery yet')) return 'recover-not-ready';
      return 'other';
    case Code.unimplemented:
      if (has(failure, 'only available on control plane nodes')) return 'not-control-plane';
      // 1.14 refuses REBOOT on a configured node (siderolabs/talos:
      // internal/app/machined/internal/server/v1alpha1/v1alpha1_server.go@v1.14.0-rc.1:222)
      if (has(failure, 'the REBOOT mode is not supported')) return 'reboot-mode-removed';
      if (has(failure, 'maintenance mode')) return 'maintenance-mode';
      return 'unimplemented';
    case Code.permissionDenied:
      if (has(failure, 'no request forwarding')) return 'no-forwarding';
      // what an Omni-managed machine answers plain talosctl recovery calls (siderolabs/omni#1302)
      if (has(failure, 'no access is permitted')) return 'omni-managed';
      return 'not-authorized';
    case Code.deadlineExceeded:
      // our own first-byte watchdog stopped a data stream that never sent anything (not worth the same call again)
      return failure.silentMs !== undefined ? 'no-first-byte' : 'deadline';
    case Code.canceled:
      return 'canceled';
    case Code.notFound:
      return 'not-found';
    case Code.invalidArgument:
      // 1.14: Bootstrap on a node without etcd, a worker (v1alpha1_server.go@v1.14.0-rc.1:425)
      if (has(failure, 'etcd is not configured')) return 'not-control-plane';
      return 'invalid-argument';
    default:
      if (has(failure, 'etcdserver: no leader')) return 'etcd-no-leader';
      return classifyTransport(failure);
  }
}

/** Connection-level failures arrive as Unavailable (sometimes Internal/Unknown) with the TLS or socket error text. */
function classifyTransport(failure: RpcFailure): FailureKind {
  // apid's own connection to the node (in-band, Go's text): a blank node in maintenance mode presents a self-signed
  // certificate the cluster's CA did not sign (behaviour-facts §6)
  if (!failure.endpoint && has(failure, 'x509: certificate signed by unknown authority')) return 'node-not-of-cluster';
  if (has(failure, NO_CLIENT_CERT)) return 'tls-no-client-cert';
  if (has(failure, NO_CA)) return 'tls-no-ca';
  if (has(failure, 'the answer could not be decoded')) return 'undecodable-answer';
  if (has(failure, 'fingerprint')) return 'tls-fingerprint-mismatch';
  // a certificate (ours or the node's) whose validity starts later: one of the two clocks is wrong
  if (has(failure, 'not yet valid', 'cert_not_yet_valid', 'client certificate is not valid before')) {
    return 'tls-not-yet-valid';
  }
  if (has(failure, 'alert certificate expired', 'client certificate expired')) return 'tls-client-cert-expired';
  if (has(failure, 'certificate has expired', 'cert_has_expired')) return 'tls-server-cert-expired';
  if (has(failure, ...UNKNOWN_CA)) return 'tls-unknown-ca';
  if (has(failure, "does not match certificate's altnames", 'err_tls_cert_altname_invalid')) {
    return 'tls-hostname-mismatch';
  }
  if (
    has(
      failure,
      'refused the client certificate',
      'alert bad certificate',
      'alert unknown ca',
      'alert certificate required',
      'certificate unknown',
    )
  ) {
    return 'tls-client-cert-rejected';
  }
  if (failure.code === Code.unavailable) {
    return has(failure, 'econnrefused', 'connection refused') ? 'connection-refused' : 'unreachable';
  }
  return 'other';
}

/**
 * Whether the node itself did not answer (connection refused, unreachable, unavailable): a rebooting node refuses
 * connections with no gRPC status (talos-behaviour-facts.md: a rebooting node refuses connections), so the right
 * wait is for the node to answer again, which on real hardware takes minutes, not a handful of quick retries.
 */
export function nodeDidNotAnswer(failure: RpcFailure): boolean {
  const kind = classifyFailure(failure);
  return kind === 'connection-refused' || kind === 'unreachable';
}

/** Failures worth trying again unchanged after a pause: the node is busy, starting or briefly unreachable. */
export function isRetryable(failure: RpcFailure): boolean {
  switch (classifyFailure(failure)) {
    case 'bootstrap-not-ready':
    case 'time-not-synced':
    case 'recover-not-ready':
    case 'connection-refused':
    case 'unreachable':
    case 'deadline':
      return true;
    default:
      return failure.code === Code.resourceExhausted || failure.code === Code.aborted;
  }
}

/** Strips grpc-js's "No connection established. Last error: Error: " prefixes and trailing detail to the cause. */
function bareCause(message: string): string {
  const cause = message
    .replace(/^No connection established\.\s*/i, '')
    .replace(/^Last error:\s*/i, '')
    .replace(/^(Error: )+/, '')
    .replace(/\.?\s*Resolution note:.*$/s, '')
    .replace(/\s*\(\d{4}-\d\d-\d\dT[^)]*\)\s*$/, '')
    .trim();
  return cause.replace(/[.\s]+$/, '');
}

/**
 * One sentence for the user: which node, what happened, what to do next. `action` names what was being done
 * ("bootstrap", "the snapshot upload", …) when the caller knows.
 */
export function describeFailure(node: string, failure: RpcFailure, action?: string): string {
  const doing = action ? ` ${action}` : '';
  const raw = bareCause(failure.message);
  const endpoint = failure.endpoint && failure.endpoint !== node ? failure.endpoint : undefined;
  switch (classifyFailure(failure)) {
    case 'already-bootstrapped':
      return `${node} refused${doing || ' bootstrap'}: its etcd data directory is not empty, so either the restore already happened there (check with "talos-dr status") or its EPHEMERAL partition still needs wiping.`;
    case 'bootstrap-not-ready':
      return `${node} is not ready to bootstrap yet (its container runtime is still starting); wait a few seconds and try again.`;
    case 'time-not-synced':
      return `${node} refused to bootstrap because its clock is not in sync yet; check its time servers (talosctl -n ${node} time) and retry once it is synced.`;
    case 'recover-not-ready':
      return `${node} cannot take the snapshot yet because its etcd is not ready for recovery (EPHEMERAL not mounted); wait until its etcd service shows Preparing, then retry.`;
    case 'not-control-plane':
      return `${node} is not a control-plane node, so${doing || ' this'} cannot run there; check the node list (-n) and use control-plane nodes only.`;
    case 'maintenance-mode':
      return `${node} is in maintenance mode (it has no machine configuration), so${doing || ' this call'} is not available; apply its machine configuration first.`;
    case 'reboot-mode-removed':
      return `${node} refused${doing || ' the configuration'} in REBOOT mode, which Talos 1.14 no longer accepts on a configured node; apply it with AUTO or NO_REBOOT (or STAGED) and reboot the node as a separate step.`;
    case 'container-mode':
      return `${node} runs Talos in a container, which refuses${doing || ' this call'}; the wipe-based recovery does not apply there: re-create the control-plane containers with empty volumes and restore with talosctl bootstrap --recover-from=SNAPSHOT.`;
    case 'unimplemented':
      return `${node} does not support${doing || ' this call'} (${raw}); check that it runs Talos 1.7 or newer.`;
    case 'not-authorized':
      return `${node} refused${doing || ' the call'} as not authorized (${raw}); use a talosconfig whose certificate has the os:admin role.`;
    case 'omni-managed':
      return `${node} refused${doing || ' the call'} with "no access is permitted", as machines managed by Omni do; restore etcd through Omni instead (omnictl get etcdbackup, then ${OMNI_RESTORE_DOC}).`;
    case 'no-forwarding':
      return `The endpoint cannot forward requests to ${node} yet; use the node's own address as the endpoint (-e ${node}).`;
    case 'tls-unknown-ca':
      return `${node} presented a certificate that this talosconfig's CA did not sign; check that you use the talosconfig and context of this cluster (--talosconfig, --context).`;
    case 'node-not-of-cluster':
      return `The endpoint could not talk to ${node} securely because its certificate is not from this cluster's CA: it is probably a blank machine in maintenance mode (no configuration yet) or belongs to another cluster; check the address, or treat it as blank.`;
    case 'tls-client-cert-expired':
      return `${node} refused the talosconfig's client certificate because it has expired; create a fresh talosconfig (talosctl config new, or from the cluster's secrets) and try again.`;
    case 'tls-client-cert-rejected':
      return `${node} refused the talosconfig's client certificate (${raw}); check that the talosconfig belongs to this cluster and has not expired.`;
    case 'tls-server-cert-expired':
      return `${node} presented an expired certificate; check the node's clock and your own, then try again.`;
    case 'tls-hostname-mismatch':
      return `${node}'s certificate does not name the address you connected to (${raw}); connect to an address in the certificate, or for a tunnel set TALOS_DR_SERVER_NAME to a real node address.`;
    case 'tls-fingerprint-mismatch':
      return `${node} presented a certificate whose fingerprint differs from the one expected (${raw}); make sure it is the machine you mean before applying anything to it.`;
    case 'tls-not-yet-valid':
      return `${endpoint ? `The endpoint ${endpoint}` : node} and this computer disagree about the time: a certificate is not valid yet (${raw}); check this computer's clock and the node's (talosctl time), then try again.`;
    case 'tls-no-client-cert':
      return `${endpoint ? `The endpoint ${endpoint}` : node} refused the connection because the talosconfig context has no client certificate (crt and key); use a talosconfig with them (talosctl gen config, or talosctl config new).`;
    case 'tls-no-ca':
      return `${endpoint ? `The endpoint ${endpoint}` : node} presented a certificate the system's trusted roots do not vouch for, and the talosconfig context has no ca to check it with; use the cluster's talosconfig, which has its ca, or point NODE_EXTRA_CA_CERTS at the CA file that signed the endpoint's certificate (Node.js reads its own root list, not the system's).`;
    case 'undecodable-answer':
      return `${node} sent${doing ? ` for${doing}` : ''} an answer that could not be decoded (${raw}); this is a protocol mismatch, not an etcd verdict: check that the node runs Talos 1.7 or newer and that the endpoint is a Talos API (port 50000).`;
    case 'connection-refused':
      return endpoint
        ? `Nothing answers at the endpoint ${endpoint} (connection refused), so ${node} was not asked; check the endpoint (-e, the tunnel or port-forward) and try again.`
        : `Nothing answers on ${node}'s Talos API port (connection refused); check the address and that the node is up, or wait for it to finish rebooting.`;
    case 'unreachable':
      return endpoint
        ? `Cannot reach the endpoint ${endpoint} (${raw || 'unavailable'}), so ${node} was not asked; check the endpoint (-e), the network and that it is up.`
        : `Cannot reach ${node} (${raw || 'unavailable'}); check the address, the network and that the node is up.`;
    case 'deadline':
      // A recover does not wait on etcd (stopped for it): machined only writes the upload to disk before answering
      // (siderolabs/talos v1alpha1_server.go@v1.14.0-rc.1:2050-2064)
      if (failure.method === 'EtcdRecover')
        return `${node} took the snapshot but did not confirm it in time (it writes the file to disk before answering): its disk may be slow or the node overloaded or rebooting; upload it again.`;
      // Only an etcd call waits on etcd (its client waits for a serving etcd until the deadline: facts §2); a
      // Version or ServiceList that times out says nothing about quorum.
      return failure.method?.startsWith('Etcd')
        ? `${node} did not answer${doing} in time: its etcd may not be serving (no quorum), or the node is rebooting or overloaded; try again in a moment.`
        : `${node} did not answer${doing} in time: it may be rebooting, overloaded or hard to reach from the endpoint; try again in a moment.`;
    case 'no-first-byte': {
      const wait = `${Math.round((failure.silentMs ?? 0) / 100) / 10} s`;
      // machined's EtcdSnapshot waits for its local etcd to serve, with no deadline of its own (facts §2, talos#14212)
      return failure.method === 'EtcdSnapshot'
        ? `${node} sent no byte of the etcd snapshot in ${wait}, so the call was stopped: its etcd is probably not serving; take a raw copy of its database or a snapshot from another member instead.`
        : `${node} sent no byte${doing ? ` of${doing}` : ''} in ${wait}, so the call was stopped: the node may be overloaded or the service behind the call stuck; try another node, or try again later.`;
    }
    case 'etcd-no-leader':
      return `${node}'s etcd has no leader${action ? ` (${action})` : ''}: quorum is lost or an election is under way; if it stays so, etcd must be recovered from a snapshot (talos-dr recover).`;
    case 'canceled':
      return `${action ? `${action[0]?.toUpperCase()}${action.slice(1)}` : 'The call'} on ${node} was cancelled before it finished; nothing more was sent.`;
    case 'not-found':
      return `${node} answered that${doing ? ` for${doing}` : ''} something does not exist (${raw}); check the node address and the Talos version.`;
    case 'invalid-argument':
      return `${node} rejected${doing || ' the request'} as invalid (${raw}); check the input (for a configuration: validate it with talosctl validate).`;
    default:
      return `${node} failed${doing}: ${raw || failure.codeName} (${failure.codeName}); check the node's logs (talosctl -n ${node} dmesg) and try again.`;
  }
}

/** A call that failed as a whole (not per node): carries the node, the failure and the sentence for the user. */
export class TalosRpcError extends UserError {
  constructor(
    readonly node: string,
    readonly failure: RpcFailure,
    action?: string,
  ) {
    super(describeFailure(node, failure, action), 1);
    this.name = 'TalosRpcError';
  }
}
