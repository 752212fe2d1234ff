/**
 * The incident folder (PRODUCT.md §3): one recovery = one folder, mode 0700, named after the talosconfig context and
 * the UTC time it started. Nothing in it is overwritten except the tool's own working files.
 */
import { chmodSync, existsSync, mkdirSync, readdirSync, statSync, unlinkSync, type Dirent } from 'node:fs';
import { join, resolve } from 'node:path';
import { UserError } from '../errors.js';

export const INCIDENT_PREFIX = 'talos-dr-';
export const SIM_STATE_FILE = 'sim-state.json';
export const REPORT_FILE = 'report.md';

/** `20261124T013502Z`: sortable, no colons (valid on every filesystem). */
export function utcStamp(date: Date): string {
  return date
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
}

const safeName = (s: string): string => s.replace(/[^A-Za-z0-9._-]+/g, '_');

export function defaultIncidentDir(cwd: string, context: string, now: Date): string {
  return join(cwd, `${INCIDENT_PREFIX}${safeName(context)}-${utcStamp(now)}`);
}

export interface IncidentPaths {
  dir: string;
  snapshots: string;
  configs: string;
  given: string;
}

export function incidentPaths(dir: string): IncidentPaths {
  const d = resolve(dir);
  return { dir: d, snapshots: join(d, 'snapshots'), configs: join(d, 'configs'), given: join(d, 'given') };
}

/**
 * Creates the folder with mode 0700 (and snapshots/, configs/). An existing, non-empty folder is refused: a new
 * incident never writes into an old one (resume is the way to continue it).
 */
export function createIncidentDir(dir: string): IncidentPaths {
  const paths = incidentPaths(dir);
  if (existsSync(paths.dir)) {
    if (!statSync(paths.dir).isDirectory())
      throw new UserError(`${paths.dir} exists and is not a folder; choose another --dir.`, 2);
    if (readdirSync(paths.dir).length > 0)
      throw new UserError(
        `${paths.dir} already holds files; choose another --dir, or continue that incident with "talos-dr resume ${dir}".`,
        2,
      );
  }
  try {
    mkdirSync(paths.dir, { recursive: true, mode: 0o700 });
    chmodSync(paths.dir, 0o700);
    mkdirSync(paths.snapshots, { mode: 0o700 });
    mkdirSync(paths.configs, { mode: 0o700 });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    throw new UserError(
      `Cannot create the incident folder ${paths.dir} (${code}); choose a writable place with --dir.`,
      1,
    );
  }
  return paths;
}

/** The newest incident folder (by its UTC stamp, then mtime) directly in `cwd`, or null. */
export function newestIncidentDir(cwd: string): string | null {
  let entries: string[];
  try {
    entries = readdirSync(cwd);
  } catch {
    return null;
  }
  const candidates = entries
    .filter((name) => name.startsWith(INCIDENT_PREFIX))
    .map((name) => join(cwd, name))
    .filter((path) => {
      try {
        return statSync(path).isDirectory() && existsSync(join(path, 'state.json'));
      } catch {
        return false;
      }
    })
    .map((path) => ({ path, stamp: path.match(/(\d{8}T\d{6}Z)$/)?.[1] ?? '', mtime: statSync(path).mtimeMs }))
    .sort((a, b) => (a.stamp === b.stamp ? a.mtime - b.mtime : a.stamp < b.stamp ? -1 : 1));
  return candidates.at(-1)?.path ?? null;
}

/**
 * Removes the partial files (`*.part`) an interrupted run left in the incident folder: a download cut by a crash or a
 * hang-up that could not clean up. They are never evidence (a snapshot is placed under its name only once verified)
 * and one left behind blocks the re-run. Only called with the incident's lock held, so no other process writes them.
 * Returns the paths removed.
 */
export function removeStaleParts(dir: string): string[] {
  const removed: string[] = [];
  const visit = (folder: string, depth: number) => {
    let entries: Dirent[];
    try {
      entries = readdirSync(folder, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const path = join(folder, e.name);
      if (e.isDirectory() && depth < 3) visit(path, depth + 1);
      else if (e.isFile() && e.name.endsWith('.part')) {
        try {
          unlinkSync(path);
          removed.push(path);
        } catch {
          // the re-run's own exclusive create names it if it is still there
        }
      }
    }
  };
  visit(resolve(dir), 0);
  return removed;
}
