/**
 * A failure of this machine's own disk (full, read-only, permission refused, folder deleted): never a fact about the
 * cluster. It gets its own error type so the procedure stops with a sentence about the local disk instead of taking
 * it for a node's failure (a journal write that failed once made the wizard replace every live config by an older
 * backup), and the sentence names the file and the disk it is on.
 */
import { readFileSync, realpathSync } from 'node:fs';
import { dirname, resolve, sep } from 'node:path';
import { UserError, EXIT } from '../errors.js';

const REASONS: Record<string, string> = {
  ENOSPC: 'the disk is full',
  EDQUOT: 'the disk quota is used up',
  EROFS: 'the file system is mounted read-only',
  EACCES: 'permission is denied',
  EPERM: 'the operation is not permitted',
  ENOENT: 'the folder no longer exists',
  ENOTDIR: 'a part of the path is not a folder',
  EIO: 'the disk reported an input/output error',
  EMFILE: 'too many files are open',
  ENFILE: 'too many files are open',
  ELOOP: 'the path is a symbolic link, which is not followed',
  EEXIST: 'a file of that name already exists',
};

/** The file system a path is on, as `/mount (device)`, from the mount table; the nearest existing folder otherwise. */
export function diskOf(path: string): string {
  let real = resolve(path);
  for (let p = real; ; p = dirname(p)) {
    try {
      real = realpathSync(p) + real.slice(p.length);
      break;
    } catch {
      if (dirname(p) === p) break;
    }
  }
  try {
    let best: { mount: string; device: string } | null = null;
    for (const line of readFileSync('/proc/self/mounts', 'utf8').split('\n')) {
      const [device, rawMount] = line.split(' ');
      if (!device || !rawMount) continue;
      const mount = rawMount.replace(/\\(\d{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
      const inside = mount === '/' || real === mount || real.startsWith(mount.endsWith(sep) ? mount : mount + sep);
      if (inside && (!best || mount.length >= best.mount.length)) best = { mount, device };
    }
    if (best) return `the disk mounted at ${best.mount} (${best.device})`;
  } catch {
    // no mount table (not Linux): name the folder instead
  }
  return `the disk holding ${dirname(real)}`;
}

/** `the disk is full`, `the file system is mounted read-only`, … for an errno code. */
export function diskReason(code: string): string {
  return REASONS[code] ?? `the file system answered ${code}`;
}

export class LocalDiskError extends UserError {
  readonly code: string;
  readonly path: string;
  constructor(sentence: string, code: string, path: string) {
    super(sentence, EXIT.failure);
    this.name = 'LocalDiskError';
    this.code = code;
    this.path = path;
  }
}

const FILE_CALLS = new Set([
  'open',
  'write',
  'writev',
  'read',
  'fsync',
  'fdatasync',
  'close',
  'rename',
  'link',
  'unlink',
  'mkdir',
  'mkdtemp',
  'rmdir',
  'stat',
  'lstat',
  'fstat',
  'scandir',
  'copyfile',
  'ftruncate',
  'chmod',
  'fchmod',
  'utime',
  'futime',
  'realpath',
]);

/**
 * Whether an error is the local file system's (an errno from a file call), not a node's or ours. Network errors carry
 * an errno too (ECONNREFUSED from connect): only file calls count.
 */
export function isLocalIoError(error: unknown): error is NodeJS.ErrnoException {
  if (error instanceof LocalDiskError) return true;
  const e = error as NodeJS.ErrnoException | undefined;
  return Boolean(e && typeof e.code === 'string' && typeof e.syscall === 'string' && FILE_CALLS.has(e.syscall));
}

let failure: LocalDiskError | null = null;
const listeners = new Set<(error: LocalDiskError) => void>();

/**
 * Records the run's first local disk failure and tells whoever listens (the entry stops the procedure, as a signal
 * does, before the failed write's caller can take the failure for a node's). Returns the error, to be thrown.
 */
export function reportLocalDiskFailure(error: LocalDiskError): LocalDiskError {
  if (!failure) {
    failure = error;
    for (const listener of listeners) listener(error);
  }
  return error;
}

/** The run's first local disk failure, if any. */
export function localDiskFailure(): LocalDiskError | null {
  return failure;
}

export function onLocalDiskFailure(listener: (error: LocalDiskError) => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/**
 * The one sentence for a local write that failed while `doing`, naming `path` and its disk. `resumeDir` is named as
 * the way to continue once the disk is fixed (omit it for a command that has nothing to resume).
 */
export function localDiskError(error: unknown, doing: string, path: string, resumeDir?: string): LocalDiskError {
  if (error instanceof LocalDiskError) return error;
  const e = error as NodeJS.ErrnoException | undefined;
  const code = e?.code ?? 'EIO';
  const file = e?.path ?? path;
  const reason = diskReason(code);
  const next = resumeDir
    ? `fix the local disk, then continue with "talos-dr resume ${resumeDir}"`
    : 'fix the local disk (or choose another place) and run the command again';
  return new LocalDiskError(
    `The local disk failed while ${doing}: ${reason} for ${file} on ${diskOf(file)}. The procedure stopped here and ` +
      `nothing about the cluster was decided from this failure; ${next}.`,
    code,
    file,
  );
}
