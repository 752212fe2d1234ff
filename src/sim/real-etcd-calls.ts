/**
 * How the simulator talks to a real etcd member: etcd's own tools (etcdctl, etcdutl) and its JSON gateway
 * (grpc-gateway over HTTP on the client URL), with the answers turned into the backend's member records.
 */
import { execFile } from 'node:child_process';
import type { EtcdMemberInfo } from './etcd-backend.js';
import { etcdPrograms } from './real-etcd-tools.js';

const ETCDCTL_ENV = { ...process.env, ETCDCTL_API: '3' };
const QUERY_TIMEOUT_MS = 1500;

export interface ToolResult {
  ok: boolean;
  stdout: string;
  stderr: string;
}

/** etcd's offline tool: upstream's etcdutl when configured (etcdPrograms), else etcdctl 3.4's same commands. */
export function offlineTool(args: string[]): Promise<ToolResult> {
  const etcdutl = etcdPrograms().etcdutl;
  return etcdutl ? etcdctl(args, 30_000, etcdutl) : etcdctl(args);
}

export function etcdctl(args: string[], timeoutMs = 30_000, program = 'etcdctl'): Promise<ToolResult> {
  return new Promise((resolve) => {
    execFile(
      program,
      args,
      { env: ETCDCTL_ENV, timeout: timeoutMs, maxBuffer: 8 << 20, encoding: 'utf8' },
      (error, stdout, stderr) => resolve({ ok: !error, stdout, stderr }),
    );
  });
}

/**
 * etcd's own words from a failed etcdctl: the `Error: …` line (without the prefix), or a Go panic's first line, or
 * the last line of output.
 */
export function etcdWords(output: string): string {
  const lines = output
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
  const error = lines.find((l) => l.startsWith('Error: '));
  if (error) return error.slice('Error: '.length);
  const panic = lines.find((l) => l.startsWith('panic: ') || l.startsWith('fatal error: '));
  if (panic) return panic;
  const unexpected = lines.find((l) => l.startsWith('unexpected fault address') || l.includes('SIGBUS'));
  if (unexpected) return unexpected;
  const last = [...lines].reverse().find((l) => !l.startsWith('{')) ?? lines.at(-1);
  return last ?? 'etcdctl failed without a message';
}

/** uint64 as JSON decimal string → 16 lowercase hex digits. */
export const hex = (decimal: string | undefined): string =>
  BigInt(decimal ?? '0')
    .toString(16)
    .padStart(16, '0');

export interface GatewayMember {
  ID?: string;
  name?: string;
  peerURLs?: string[];
  clientURLs?: string[];
  isLearner?: boolean;
}
export interface GatewayHeader {
  cluster_id?: string;
  member_id?: string;
  revision?: string;
  raft_term?: string;
}

export async function gateway<T>(
  clientUrl: string,
  path: string,
  body: unknown,
  timeoutMs = QUERY_TIMEOUT_MS,
): Promise<T> {
  const response = await fetch(`${clientUrl}${path}`, {
    method: 'POST',
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await response.text();
  let parsed: T & { error?: string; message?: string };
  try {
    parsed = JSON.parse(text) as T & { error?: string; message?: string };
  } catch {
    throw new Error(`etcd answered ${response.status}: ${text.slice(0, 200)}`);
  }
  if (!response.ok || parsed.error) throw new Error(parsed.message ?? parsed.error ?? `HTTP ${response.status}`);
  return parsed;
}

export const b64 = (s: string | Uint8Array): string => Buffer.from(s).toString('base64');
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function toMember(m: GatewayMember): EtcdMemberInfo {
  return {
    id: hex(m.ID),
    name: m.name ?? '',
    peerUrls: [...(m.peerURLs ?? [])],
    clientUrls: [...(m.clientURLs ?? [])],
    isLearner: m.isLearner ?? false,
  };
}
