/**
 * connection.json in a real recovery's incident folder: how the cluster was reached (the talosconfig's path, the
 * context's name, the endpoints and nodes given), so `talos-dr resume DIR` reaches the same cluster without the
 * flags being typed again. No secret is kept: the talosconfig stays where it is and is read again on resume.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import writeFileAtomic from 'write-file-atomic';
import type { GlobalFlags } from '../talos/global-flags.js';
import type { TalosContextConfig } from '../talos/talosconfig.js';

export const CONNECTION_FILE = 'connection.json';

export interface SavedConnection {
  talosconfig: string;
  context: string;
  endpoints: string[];
  nodes: string[];
  /** the age identity file's path given with --identity (the path only: the key stays in its file) */
  identity?: string;
}

export function saveConnection(dir: string, config: TalosContextConfig, cwd: string, identity?: string): void {
  const saved: SavedConnection = {
    talosconfig: resolve(cwd, config.path),
    context: config.contextName,
    endpoints: config.endpoints.map((e) => e.address),
    nodes: config.nodes,
    ...(identity ? { identity } : {}),
  };
  writeFileAtomic.sync(join(dir, CONNECTION_FILE), `${JSON.stringify(saved, null, 2)}\n`, {
    mode: 0o600,
    fsync: true,
  });
}

const strings = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');

/** The flags saved with the incident, or null (a folder from an older version, or no such file). */
export function loadConnection(dir: string): GlobalFlags | null {
  let parsed: Partial<SavedConnection>;
  try {
    parsed = JSON.parse(readFileSync(join(dir, CONNECTION_FILE), 'utf8')) as Partial<SavedConnection>;
  } catch {
    return null;
  }
  if (typeof parsed.talosconfig !== 'string' || typeof parsed.context !== 'string') return null;
  return {
    talosconfig: parsed.talosconfig,
    context: parsed.context,
    ...(strings(parsed.endpoints) && parsed.endpoints.length > 0 ? { endpoints: parsed.endpoints } : {}),
    ...(strings(parsed.nodes) && parsed.nodes.length > 0 ? { nodes: parsed.nodes } : {}),
  };
}

/** The age identity file's path the recovery started with, or undefined. */
export function loadSavedIdentity(dir: string): string | undefined {
  try {
    const parsed = JSON.parse(readFileSync(join(dir, CONNECTION_FILE), 'utf8')) as Partial<SavedConnection>;
    return typeof parsed.identity === 'string' ? parsed.identity : undefined;
  } catch {
    return undefined;
  }
}

/** Flags given on the command line win over the saved ones, one by one. */
export function withSaved(given: GlobalFlags, saved: GlobalFlags | null): GlobalFlags {
  if (!saved) return given;
  const pick = <K extends keyof GlobalFlags>(k: K) =>
    given[k] !== undefined ? { [k]: given[k] } : saved[k] !== undefined ? { [k]: saved[k] } : {};
  return { ...pick('talosconfig'), ...pick('context'), ...pick('endpoints'), ...pick('nodes') };
}
