// Bundles the screens into the module that draws them, after tsc: dist/src/commands/interactive.js (the one module the
// entry and the commands load when a screen is needed) is rewritten with components/, Ink, React and their
// dependencies inlined. Node loads one file instead of some 250 small ESM modules (Ink's es-toolkit alone was ~0.5 s
// of CPU on a loaded 2-core machine), which is most of the wizard's first frame (bench/startup.mjs).
//
// Everything else of ours (src/, machines/) and xstate stay modules of their own, imported by their relative paths,
// so each exists once per process: interactive.js's first frame is the one the commands take over, UserError is the
// class the entry checks with instanceof, and the actors @xstate/react renders are the machines' own xstate.
//
// Run by `npm run build` (and so by `prepare` on `npm ci`) right after tsc; tsc writes interactive.js afresh each time.
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { rolldown } from 'rolldown';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist') + sep;
const entry = join(root, 'dist', 'src', 'commands', 'interactive.js');
const bundled = join(root, 'dist', 'components') + sep;
const MARK = '// talos-dr: screens bundled by scripts/bundle-screens.mjs';

const source = readFileSync(entry, 'utf8');
if (source.startsWith(MARK)) {
  console.error(`${entry} is bundled already; run "npm run build" (tsc first, then this script).`);
  process.exit(1);
}

/** Our own modules outside components/ stay external, imported by their path relative to the bundle. */
const keepOursApart = {
  name: 'keep-our-modules-apart',
  resolveId(id, importer) {
    if (importer?.startsWith(dist) && (id.startsWith('./') || id.startsWith('../'))) {
      const target = resolve(dirname(importer), id);
      if (target === entry || target.startsWith(bundled)) return null;
      return { id: target, external: true };
    }
    // one xstate per process (the machines' actors); Ink's optional devtools are never installed
    if (id === 'xstate' || id.startsWith('xstate/') || id === 'react-devtools-core') return { id, external: true };
    return null;
  },
};

/**
 * With DEV=true Ink reads its own package.json next to its module (new URL('../package.json', import.meta.url)), a
 * path that no longer exists once Ink lives inside dist/: its name and version are written in at build time.
 */
const inkPackageJsonInline = {
  name: 'ink-package-json-inline',
  transform(code, id) {
    if (!id.split(sep).join('/').endsWith('/node_modules/ink/build/reconciler.js')) return null;
    const read = "fs.readFileSync(new URL('../package.json', import.meta.url), 'utf8')";
    if (!code.includes(read)) throw new Error(`Ink's reconciler no longer reads its package.json as ${read}`);
    const pkg = JSON.parse(readFileSync(join(dirname(id), '..', 'package.json'), 'utf8'));
    return code.replace(read, JSON.stringify(JSON.stringify({ name: pkg.name, version: pkg.version })));
  },
};

// Ink's devtools (DEV=true) stay a chunk of their own behind its dynamic import: react-devtools-core is not installed,
// and Ink says so when asked for them, as it did unbundled.
const CHUNKS = /^interactive-chunk-.*\.js$/;
for (const old of readdirSync(dirname(entry)).filter((f) => CHUNKS.test(f))) rmSync(join(dirname(entry), old));
const build = await rolldown({
  input: entry,
  platform: 'node',
  plugins: [keepOursApart, inkPackageJsonInline],
  logLevel: 'warn',
});
try {
  await build.write({
    dir: dirname(entry),
    entryFileNames: 'interactive.js',
    chunkFileNames: 'interactive-chunk-[name]-[hash].js',
    format: 'esm',
    banner: MARK,
    sourcemap: false,
  });
} finally {
  await build.close();
}
