/**
 * `npm run build` bundles the CLI (scripts/bundle-cli.mjs): dist/src/cli.js loads its commands, the screens and their
 * dependencies from a few chunks instead of some 350 modules one by one (issue 14: the wizard's first frame and every
 * CLI start the suite spawns). And the shortcut the bundle gives string-width for the screens' glyphs
 * (scripts/narrow-text.mjs) measures every one of them as string-width itself does. Needs `npm run build` first.
 */
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { findPackageRoot } from '../../src/paths.js';

const root = findPackageRoot();
const cli = join(root, 'dist/src/cli.js');

/** Every file URL Node resolves while the built CLI runs `args` (bench/load-trace.mjs), and its stdout. */
function filesLoadedBy(args: string[]): { files: string[]; out: string } {
  const dir = mkdtempSync(join(tmpdir(), 'cli-bundle-'));
  const trace = join(dir, 'modules.txt');
  try {
    const out = execFileSync(
      process.execPath,
      ['--import', pathToFileURL(join(root, 'bench/load-trace.mjs')).href, cli, ...args],
      { encoding: 'utf8', env: { ...process.env, BENCH_LOAD_TRACE: trace } },
    );
    const urls = readFileSync(trace, 'utf8').trim().split('\n');
    return { files: [...new Set(urls.filter((u) => u.startsWith('file:')))], out };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('the built CLI', () => {
  it('loads a drill (its command, the machines, the scenarios) from a few bundled files, not module by module', () => {
    const { files, out } = filesLoadedBy(['drill', '--list']);
    expect(out).toContain('lost-quorum');
    const ours = files.filter((u) => !u.includes('/node_modules/'));
    // the entry and its chunks only: none of tsc's own files under dist/ (before the bundle: 79 of them, and 8 files
    // from node_modules)
    expect(ours.filter((u) => !/\/dist\/src\/(cli\.js|chunks\/[^/]+\.js)$/.test(u))).toEqual([]);
    expect(ours.length).toBeLessThan(30);
    // and nothing from node_modules but what stays apart on purpose (native addons, grpc, the AWS SDK)
    expect(files.filter((u) => u.includes('/node_modules/') && !/\/node_modules\/(@node-rs|@grpc)\//.test(u))).toEqual(
      [],
    );
  });

  it("holds React's production builds only, whatever NODE_ENV the CLI inherits", () => {
    // the development builds were compiled before every first frame (about half of the screens' chunk)
    const chunks = readdirSync(join(root, 'dist/src/chunks')).map((f) =>
      readFileSync(join(root, 'dist/src/chunks', f), 'utf8'),
    );
    expect(chunks.some((c) => c.includes('react-reconciler.production.js'))).toBe(true);
    expect(chunks.filter((c) => /(react|react-reconciler|scheduler)[a-z-]*\.development\.js/.test(c))).toEqual([]);
  });

  it('finds the worker threads (sha256, walk, zstd) next to it: every file a chunk names by its own URL exists', () => {
    // a worker found missing is not an error: inspect would walk in one thread and import decode zstd in the main one
    const dir = join(root, 'dist/src/chunks');
    const named = readdirSync(dir).flatMap((f) =>
      [...readFileSync(join(dir, f), 'utf8').matchAll(/new URL\("([^"]+)", import\.meta\.url\)/g)].map((m) =>
        fileURLToPath(new URL(m[1]!, pathToFileURL(join(dir, f)))),
      ),
    );
    expect(named.map((p) => p.slice(root.length)).sort()).toEqual([
      '/dist/src/backups/zstd-worker.js',
      '/dist/src/etcd/digest-worker.js',
      '/dist/src/etcd/walk-worker.js',
    ]);
    for (const p of named) expect(existsSync(p), p).toBe(true);
  });

  it('keeps --help free of the commands, the screens and the client', () => {
    const { files, out } = filesLoadedBy(['--help']);
    expect(out).toContain('talos-dr recover');
    expect(files.filter((u) => u.includes('/node_modules/'))).toEqual([]);
    expect(files.length).toBeLessThan(10);
  });
});

describe("the screens' glyphs in the bundled string-width", () => {
  it('are each one column wide, their own grapheme cluster and no emoji, for both string-width copies', async () => {
    const { NARROW_TEXT } = (await import(pathToFileURL(join(root, 'scripts/narrow-text.mjs')).href)) as {
      NARROW_TEXT: string;
    };
    type Width = (s: string, o?: { ambiguousIsNarrow?: boolean }) => number;
    const widths = await Promise.all(
      ['node_modules/string-width/index.js', 'node_modules/wrap-ansi/node_modules/string-width/index.js'].map(
        async (p) => ((await import(pathToFileURL(join(root, p)).href)) as { default: Width }).default,
      ),
    );
    const narrow = new RegExp(NARROW_TEXT);
    const segmenter = new Intl.Segmenter();
    const glyphs: string[] = [];
    for (let cp = 0; cp <= 0xffff; cp++) if (narrow.test(String.fromCharCode(cp))) glyphs.push(String.fromCharCode(cp));
    expect(glyphs.length).toBeGreaterThan(1000);
    const wrong: string[] = [];
    for (const g of glyphs) {
      const text = `a${g}${g}b`;
      if (widths.some((w) => w(g) !== 1 || w(text) !== 4) || [...segmenter.segment(text)].length !== 4)
        wrong.push(`U+${g.charCodeAt(0).toString(16).toUpperCase()}`);
    }
    expect(wrong).toEqual([]);
    // the glyphs the screens draw are all in it (else the shortcut does not spare the first frame anything)
    expect('· … — – ’ × § ✓ ✗ ▸ ▌ ▏ ░ █ • ❯ ↑ ↓ → ⠋ ⠙ ⠹ ⠸ ⠼ ⠴ ⠦ ⠧ ⠇ ⠏').toMatch(narrow);
    // an emoji, a wide glyph or a combining mark is not: measured as before
    for (const other of ['✅', '中', 'e\u0301', '©', '\u00ad']) expect(other).not.toMatch(narrow);
  });
});
