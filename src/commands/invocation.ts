/**
 * How this process was invoked, as a command a person can paste into another shell: `talos-dr` when that name on
 * PATH is this very program (a global install), else `node /abs/path/dist/src/cli.js` (after `npm ci` in a clone
 * `talos-dr` is not on PATH, and `npx talos-dr` only works inside the checkout). Every printed follow-up command
 * (resume, report) starts with it.
 */
import { existsSync, realpathSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { shellWord } from '../../components/shell-word.js';

function onPath(name: string, env: NodeJS.ProcessEnv): string | null {
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      if (existsSync(candidate)) return realpathSync(candidate);
    } catch {
      // an unreadable PATH entry is skipped, as the shell skips it
    }
  }
  return null;
}

const real = (path: string): string => {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
};

export function invokedAs(env: NodeJS.ProcessEnv, argv: readonly string[] = process.argv): string {
  const script = argv[1];
  if (!script) return 'talos-dr';
  const self = real(script);
  if (onPath('talos-dr', env) === self) return 'talos-dr';
  const node = onPath('node', env) === real(process.execPath) ? 'node' : shellWord(process.execPath);
  return `${node} ${shellWord(self)}`;
}
