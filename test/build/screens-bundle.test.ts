/**
 * `npm run build` bundles the screens (scripts/bundle-screens.mjs): the module the entry loads for the wizard's first
 * frame comes as a few files instead of Ink's ~250 small modules (es-toolkit alone cost ~0.5 s of CPU on a loaded
 * machine), while our own modules and xstate stay single: one first frame the commands take over, one UserError class
 * for the entry's instanceof, one xstate for the machines' actors. Needs `npm run build` first (as `npm test` does).
 */
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { findPackageRoot } from '../../src/paths.js';

const root = findPackageRoot();
const screens = join(root, 'dist/src/commands/interactive.js');

/** Every module URL Node resolves while it loads `program` (bench/load-trace.mjs), and what the program printed. */
function modulesLoadedBy(program: string): { urls: string[]; out: string } {
  const dir = mkdtempSync(join(tmpdir(), 'screens-bundle-'));
  const trace = join(dir, 'modules.txt');
  try {
    const out = execFileSync(
      process.execPath,
      ['--import', pathToFileURL(join(root, 'bench/load-trace.mjs')).href, '--input-type=module', '-e', program],
      { encoding: 'utf8', env: { ...process.env, BENCH_LOAD_TRACE: trace, NODE_ENV: 'production' } },
    );
    return { urls: readFileSync(trace, 'utf8').trim().split('\n'), out };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('the built screens', () => {
  it('load Ink and React from the bundle, not module by module from node_modules', () => {
    const { urls } = modulesLoadedBy(`await import(${JSON.stringify(pathToFileURL(screens).href)});`);
    const fromNodeModules = urls.filter((u) =>
      /\/node_modules\/(ink|react|react-reconciler|es-toolkit|yoga-layout)\//.test(u),
    );
    expect(fromNodeModules).toEqual([]);
    expect(urls.filter((u) => u.includes('/node_modules/')).length).toBeLessThan(10);
  });

  it("share the entry's own modules: the errors the entry checks and the first frame the commands take over", () => {
    const { out } = modulesLoadedBy(
      [
        `const screens = await import(${JSON.stringify(pathToFileURL(screens).href)});`,
        `const errors = await import(${JSON.stringify(pathToFileURL(join(root, 'dist/src/errors.js')).href)});`,
        // the screens refuse a missing terminal with the entry's own UsageError (interactive.tsx runInteractive)
        `const thrown = await screens.runInteractive({ actor: { getSnapshot() {}, subscribe() {} }, incidentDir: '/nonexistent', context: 'x', stdin: { isTTY: false }, stdout: { isTTY: false } }).catch((e) => e);`,
        `console.log(thrown instanceof errors.UsageError, thrown instanceof errors.UserError);`,
      ].join('\n'),
    );
    expect(out.trim()).toBe('true true');
  });
});
