import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: string | undefined;

/**
 * The package's own folder (where package.json, protos/ and scenarios/ are), found from this module's location so
 * that it works from the TypeScript sources under vitest and from the compiled dist/ alike.
 */
export function findPackageRoot(): string {
  if (cached) return cached;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'protos'))) return (cached = dir);
    const parent = dirname(dir);
    if (parent === dir) throw new Error('talos-dr cannot find its own package folder (package.json and protos/).');
    dir = parent;
  }
}

export const protosDir = (): string => join(findPackageRoot(), 'protos');
export const scenariosDir = (): string => join(findPackageRoot(), 'scenarios');

/**
 * The shipped scenarios' names: the YAML files in scenarios/, read without the YAML parser or the simulator (the
 * drill checks a name before its first frame; the simulator validates the file itself when it loads it).
 */
export function listScenarioNames(): string[] {
  const dir = scenariosDir();
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => f.slice(0, -'.yaml'.length))
    .sort();
}
