// Bundles the CLI after tsc: dist/src/cli.js (the path users, the README and the tests run) is rewritten as one small
// entry plus chunks in dist/src/chunks/, with our modules and their dependencies inlined. Node then loads a few files
// instead of some 350 small ESM modules (ours, Ink's, xstate's, yaml's ...): on Node 20, which has no compile cache,
// resolving, reading and linking each of them was a good part of the wizard's first frame and of every CLI start
// (bench/startup.mjs, issue 14).
//
// What stays as it was:
// - the commands are still loaded lazily: every `import()` becomes a chunk of its own, so `--help` loads the entry and
//   none of Ink, grpc or the simulator;
// - the worker threads (etcd/digest-worker.js, etcd/walk-worker.js, backups/zstd-worker.js) run from tsc's own files
//   next to the bundle: `new URL('./x-worker.js', import.meta.url)` is rewritten to the same file seen from the chunk;
// - native addons (@node-rs/crc32) and the packages loaded by a computed name stay in node_modules: grpc-js (required
//   on first use, src/talos/grpc-lib.ts), proto-loader and protobufjs (protobufjs finds `require` through eval), and
//   the AWS SDK (only for an s3:// location);
// - names: functions and classes keep their `name` (src/wizard/drill.ts tells a SimStartError by its constructor's).
//
// Each module exists once per process (one UserError class for the entry's instanceof, one xstate for the machines'
// actors), as long as nothing imports tsc's unbundled copies: a dynamic import whose path is a variable cannot be
// followed by the bundler, so every import() names its module literally (the build fails otherwise).
//
// Run by `npm run build` (and so by `prepare` on `npm ci`) right after tsc, which writes dist/src/cli.js afresh.
import { readFileSync, rmSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { rolldown } from 'rolldown';
import { NARROW_TEXT } from './narrow-text.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const distSrc = join(root, 'dist', 'src');
const entry = join(distSrc, 'cli.js');
const chunksDir = 'chunks';
const MARK = '#!/usr/bin/env node\n// talos-dr: bundled by scripts/bundle-cli.mjs';

const source = readFileSync(entry, 'utf8');
if (source.startsWith(MARK)) {
  console.error(`${entry} is bundled already; run "npm run build" (tsc first, then this script).`);
  process.exit(1);
}

const posix = (p) => p.split(sep).join('/');

/** Packages that stay in node_modules, loaded by Node as before. */
const EXTERNAL = [/^@node-rs\//, /^@grpc\//, /^protobufjs(\/|$)/, /^@aws-sdk\//, /^@smithy\//, /^react-devtools-core$/];

const keepExternal = {
  name: 'keep-external',
  resolveId(id) {
    return EXTERNAL.some((re) => re.test(id)) ? { id, external: true } : null;
  },
};

/**
 * Every dynamic import must name its module literally, so that the bundler follows it: one whose path is a variable
 * would load tsc's unbundled copy at run time (a second UserError, a second xstate). The build fails on one.
 */
const literalImports = {
  name: 'literal-dynamic-imports',
  transform(code, id) {
    if (!id.startsWith(join(root, 'dist') + sep)) return null;
    const computed = /\bimport\((?!\s*['"`])/.exec(code.replace(/\/\/.*$|\/\*[\s\S]*?\*\//gm, ''));
    if (computed) throw new Error(`bundle-cli: ${id} imports a module by a computed path; make it a literal import()`);
    return null;
  },
};

/**
 * `new URL('./x.js', import.meta.url)` names a file next to the module (the worker threads): after bundling the code
 * runs from dist/src/ or dist/src/chunks/, so the path is written relative to dist/src here and made relative to the
 * chunk's own folder once the chunk's name is known.
 */
const FROM_DIST_SRC = '__TALOS_DR_DIST_SRC__/';
const siblingUrls = {
  name: 'sibling-urls',
  transform(code, id) {
    if (!id.startsWith(distSrc + sep) || !code.includes('import.meta.url')) return null;
    const out = code.replace(/new URL\((['"])(\.\.?\/[^'"]+)\1, import\.meta\.url\)/g, (_, q, path) => {
      const target = posix(relative(distSrc, resolve(dirname(id), path)));
      if (target.startsWith('..')) throw new Error(`bundle-cli: ${id} names ${path}, outside dist/src`);
      return `new URL(${JSON.stringify(FROM_DIST_SRC + target)}, import.meta.url)`;
    });
    return out === code ? null : out;
  },
  renderChunk(code, chunk) {
    if (!code.includes(FROM_DIST_SRC)) return null;
    const up = posix(relative(dirname(join(distSrc, chunk.fileName)), distSrc)) || '.';
    return code.replaceAll(FROM_DIST_SRC, `${up}/`);
  },
};

/**
 * CommonJS code reads `__filename` and `__dirname` (write-file-atomic names its temporary files after its own file):
 * in an ES module they are the chunk's own.
 */
const BANNER = MARK.slice('#!/usr/bin/env node\n'.length);
const commonJsPaths = {
  name: 'commonjs-paths',
  renderChunk(code) {
    const names = ['__filename', '__dirname'].filter((n) => new RegExp(`\\b${n}\\b`).test(code));
    if (names.length === 0) return null;
    if (!code.includes(`${BANNER}\n`)) throw new Error('bundle-cli: a chunk without the banner');
    const shim = [
      "import { fileURLToPath as __talosDrFileOf } from 'node:url';",
      'const __filename = __talosDrFileOf(import.meta.url);',
      ...(names.includes('__dirname') ? ["const __dirname = __filename.replace(/[\\/][^\\/]*$/, '');"] : []),
    ].join('\n');
    return code.replace(`${BANNER}\n`, `${BANNER}\n${shim}\n`);
  },
};

/**
 * With DEV=true Ink reads its own package.json next to its module (new URL('../package.json', import.meta.url)), a
 * path that no longer exists once Ink lives inside dist/: its name and version are written in at build time.
 */
const inkPackageJsonInline = {
  name: 'ink-package-json-inline',
  transform(code, id) {
    if (!posix(id).endsWith('/node_modules/ink/build/reconciler.js')) return null;
    const read = "fs.readFileSync(new URL('../package.json', import.meta.url), 'utf8')";
    if (!code.includes(read)) throw new Error(`Ink's reconciler no longer reads its package.json as ${read}`);
    const pkg = JSON.parse(readFileSync(join(dirname(id), '..', 'package.json'), 'utf8'));
    return code.replace(read, JSON.stringify(JSON.stringify({ name: pkg.name, version: pkg.version })));
  },
};

/**
 * Yoga (Ink's layout engine) carries its WebAssembly as a data: URL and, when `fetch` exists, fetches it: on Node that
 * loads undici (~25 ms of CPU before the first frame) to decode a string. Its own synchronous base64 decoding (the
 * path it takes where there is no fetch) gives the same bytes.
 */
const yogaWithoutFetch = {
  name: 'yoga-without-fetch',
  transform(code, id) {
    if (!posix(id).endsWith('/node_modules/yoga-layout/dist/binaries/yoga-wasm-base64-esm.js')) return null;
    const from = 'function ya(){return w||"function"!=typeof fetch?';
    if (!code.includes(from)) throw new Error(`yoga-layout no longer reads its wasm as ${from}`);
    return code.replace(from, 'function ya(){return w||"function"!=typeof fetch||ua(H)?');
  },
};

/**
 * React, its reconciler and scheduler choose their production or development build by NODE_ENV when they load; the
 * bundle held both, and the development ones (~630 KB, 45% of the screens' chunk) were compiled before every first
 * frame though the entry runs production unless NODE_ENV says otherwise (src/cli.ts). The bundled CLI always takes
 * the production builds, as a user gets them: a NODE_ENV=test or development inherited from a shell or a test runner
 * no longer puts React's slower development build and its warnings under the wizard.
 */
const REACT_ENTRIES = /\/node_modules\/(react|react-reconciler|scheduler)\/[a-z-]+\.js$/;
const reactProduction = {
  name: 'react-production',
  transform(code, id) {
    if (!REACT_ENTRIES.test(posix(id))) return null;
    const choice = "process.env.NODE_ENV === 'production'";
    if (!code.includes(choice)) return null;
    return code.replaceAll(choice, 'true');
  },
};

/**
 * The width of the screens' text without Unicode's heaviest tables. string-width (Ink's, and wrap-ansi's own older
 * copy) measures any text beyond ASCII by grapheme cluster, against the RGI emoji regexp: compiling that regexp alone
 * took 30-50 ms of CPU before the first frame, for lines whose non-ASCII glyphs (· … — ✓ ▸ ⠏ ▌) are one column each.
 * A text made only of NARROW_TEXT (scripts/narrow-text.mjs: printable ASCII and BMP glyphs that are each their own cluster, one column wide,
 * no emoji: checked glyph by glyph against both string-width copies by test/build/cli-bundle.test.ts) is as wide as
 * it is long; anything else is measured as before. Ambiguous-width glyphs count one column only by default
 * (ambiguousIsNarrow), so the shortcut is taken only then.
 */
const STRING_WIDTHS = {
  // string-width 8: beside its own printable-ASCII shortcut
  '/node_modules/string-width/index.js': [
    'if (/^[\\u0020-\\u007E]*$/.test(string)) {',
    `if (/^[\\u0020-\\u007E]*$/.test(string) || (ambiguousIsNarrow && /${NARROW_TEXT}/.test(string))) {`,
  ],
  // string-width 7 (wrap-ansi's): after the ANSI codes are stripped
  '/node_modules/wrap-ansi/node_modules/string-width/index.js': [
    '\tlet width = 0;\n\tconst eastAsianWidthOptions = {ambiguousAsWide: !ambiguousIsNarrow};\n\n\tfor (const {segment: character} of segmenter.segment(string)) {',
    `\tif (ambiguousIsNarrow && /${NARROW_TEXT}/.test(string)) {\n\t\treturn string.length;\n\t}\n\n` +
      '\tlet width = 0;\n\tconst eastAsianWidthOptions = {ambiguousAsWide: !ambiguousIsNarrow};\n\n\tfor (const {segment: character} of segmenter.segment(string)) {',
  ],
};
const narrowTextWidth = {
  name: 'narrow-text-width',
  transform(code, id) {
    // the longest suffix first: wrap-ansi's copy also ends in /node_modules/string-width/index.js
    const file = Object.keys(STRING_WIDTHS)
      .sort((a, b) => b.length - a.length)
      .find((f) => posix(id).endsWith(f));
    if (!file) return null;
    const [from, to] = STRING_WIDTHS[file];
    if (!code.includes(from)) throw new Error(`bundle-cli: ${id} no longer contains ${from}`);
    return code.replace(from, to);
  },
};

// the chunks of an earlier build (tsc writes none there)
rmSync(join(distSrc, chunksDir), { recursive: true, force: true });
const build = await rolldown({
  input: entry,
  platform: 'node',
  plugins: [
    keepExternal,
    literalImports,
    siblingUrls,
    commonJsPaths,
    inkPackageJsonInline,
    yogaWithoutFetch,
    narrowTextWidth,
    reactProduction,
  ],
  logLevel: 'warn',
});
try {
  await build.write({
    dir: distSrc,
    entryFileNames: 'cli.js',
    chunkFileNames: `${chunksDir}/[name]-[hash].js`,
    format: 'esm',
    banner: BANNER,
    keepNames: true,
    sourcemap: false,
  });
} finally {
  await build.close();
}
