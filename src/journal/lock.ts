/**
 * One process per incident folder. `recover`, `drill` and `resume` take an exclusive lock (`lock.json` in the folder)
 * before they write anything there; a second process is refused with who holds it and since when. A holder that
 * crashed does not keep it: the lock names its process by pid and that process's start time (and the machine's boot),
 * so a dead pid, or a pid reused by another process after a reboot or a crash, is recognised as stale and taken over.
 *
 * The lock file appears complete or not at all: it is written under a private name and linked into place (link()
 * fails with EEXIST where rename() would replace), so nobody ever reads a half-written holder.
 */
import {
  closeSync,
  fsyncSync,
  linkSync,
  openSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeSync,
  constants as fsConstants,
} from 'node:fs';
import { execFileSync } from 'node:child_process';
import { hostname, userInfo } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { UserError, EXIT } from '../errors.js';
import { localDiskError } from './local-disk.js';

export const LOCK_FILE = 'lock.json';

export interface LockHolder {
  pid: number;
  /** the process's start, as the operating system tells it (null where it cannot be read) */
  start: string | null;
  host: string;
  user: string;
  command: string;
  /** ISO time the lock was taken */
  since: string;
  /** tells this holder's file from another's with the same pid */
  token: string;
}

export interface IncidentLock {
  readonly dir: string;
  readonly holder: LockHolder;
  release(): void;
}

const held = new Map<string, IncidentLock>();
let exitHookInstalled = false;

/** The incident folder this process holds, if any (the last-resort error log goes there). */
export function heldIncidentDir(): string | null {
  return [...held.values()].at(-1)?.dir ?? null;
}

/** Releases every lock this process holds (the entry calls it when a command ends; also on exit). */
export function releaseIncidentLocks(): void {
  for (const lock of [...held.values()]) lock.release();
}

function bootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return '';
  }
}

/**
 * When the process with this pid started, or null when it does not exist or the system does not say. Linux: field 22
 * of /proc/PID/stat (clock ticks since boot) with the boot id; elsewhere `ps -o lstart=`.
 */
export function processStart(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // the command name (field 2) is in parentheses and may hold spaces: count fields after its closing one
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = fields[19];
    return ticks ? `${bootId()}:${ticks}` : null;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' && process.platform === 'linux') return null;
  }
  try {
    const out = execFileSync('ps', ['-o', 'lstart=', '-p', String(pid)], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
    return out || null;
  } catch {
    return null;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists, it belongs to someone else
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Whether the holder recorded in a lock file is certainly gone (only decidable on the same machine). */
export function holderIsGone(holder: LockHolder): boolean {
  if (holder.host !== hostname()) return false;
  if (!alive(holder.pid)) return true;
  if (holder.start === null) return false;
  const now = processStart(holder.pid);
  return now !== null && now !== holder.start;
}

function parseHolder(text: string): LockHolder | null {
  try {
    const h = JSON.parse(text) as Partial<LockHolder>;
    if (typeof h.pid !== 'number' || !Number.isInteger(h.pid) || h.pid <= 0) return null;
    if (typeof h.host !== 'string' || typeof h.since !== 'string' || typeof h.token !== 'string') return null;
    return {
      pid: h.pid,
      start: typeof h.start === 'string' ? h.start : null,
      host: h.host,
      user: typeof h.user === 'string' ? h.user : 'unknown',
      command: typeof h.command === 'string' ? h.command : 'talos-dr',
      since: h.since,
      token: h.token,
    };
  } catch {
    return null;
  }
}

function readHolder(path: string): LockHolder | null | 'missing' {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'missing';
    throw error;
  }
  return parseHolder(text);
}

const utc = (iso: string): string => iso.replace('T', ' ').replace(/\.\d+Z$|Z$/, ' UTC');

function heldSentence(dir: string, h: LockHolder): string {
  const where = h.host === hostname() ? '' : ` on ${h.host}`;
  return (
    `The incident in ${dir} is in use by another talos-dr (${h.command}, pid ${h.pid}${where}, user ${h.user}) ` +
    `since ${utc(h.since)}; only one process may work on an incident at a time: wait for that one to end, or stop it` +
    `${where ? ` there (its lock is only taken over on ${h.host} once it has ended)` : ''}, then run the command again.`
  );
}

function operator(): string {
  try {
    return process.env.USER ?? userInfo().username;
  } catch {
    return 'unknown';
  }
}

/**
 * Takes the incident folder's lock for `command` or throws a UserError naming who holds it and since when. A lock
 * whose holder is gone (crashed, killed) is taken over. Released by release(), releaseIncidentLocks() or exit.
 */
export function lockIncident(dir: string, command: string): IncidentLock {
  const path = join(dir, LOCK_FILE);
  const existing = held.get(path);
  if (existing) return existing;
  const holder: LockHolder = {
    pid: process.pid,
    start: processStart(process.pid),
    host: hostname(),
    user: operator(),
    command,
    since: new Date().toISOString(),
    token: randomBytes(8).toString('hex'),
  };
  const privateName = join(dir, `.lock-${process.pid}-${holder.token}`);
  try {
    const fd = openSync(
      privateName,
      fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | (fsConstants.O_NOFOLLOW ?? 0),
      0o600,
    );
    try {
      writeSync(fd, `${JSON.stringify(holder)}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch (error) {
    throw localDiskError(error, `taking the lock of the incident in ${dir}`, dir);
  }
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        linkSync(privateName, path);
        break;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 5) throw error;
      }
      const current = readHolder(path);
      if (current === 'missing') continue;
      if (current !== null && !holderIsGone(current)) throw new UserError(heldSentence(dir, current), EXIT.usage);
      // A holder that is gone, or a file that is not a lock at all: move it aside under a name of our own, and make
      // sure it is the one we judged (another process may have taken the lock over in between: give it back).
      const aside = join(dir, `.lock-stale-${process.pid}-${holder.token}`);
      try {
        renameSync(path, aside);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw error;
      }
      const moved = readHolder(aside);
      const same = moved !== 'missing' && (current === null ? moved === null : moved?.token === current.token);
      if (!same) {
        try {
          linkSync(aside, path);
        } catch {
          // someone else holds it now: the loop reads who
        }
      }
      unlinkSync(aside);
    }
  } catch (error) {
    try {
      unlinkSync(privateName);
    } catch {
      // best effort
    }
    if (error instanceof UserError) throw error;
    throw localDiskError(error, `taking the lock of the incident in ${dir}`, dir);
  }
  try {
    unlinkSync(privateName);
  } catch {
    // the lock itself is in place; a leftover private name is harmless
  }
  const lock: IncidentLock = {
    dir,
    holder,
    release: () => {
      if (held.get(path) !== lock) return;
      held.delete(path);
      try {
        const now = readHolder(path);
        if (now !== 'missing' && now?.token === holder.token) unlinkSync(path);
      } catch {
        // a folder deleted or made read-only meanwhile: the lock is recognised as stale once this process is gone
      }
    },
  };
  held.set(path, lock);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', releaseIncidentLocks);
  }
  return lock;
}
