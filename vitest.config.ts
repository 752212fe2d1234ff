import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { defineConfig } from 'vitest/config';

const INCLUDE = [
  'src/**/*.test.ts',
  'src/**/*.test.tsx',
  'machines/**/*.test.ts',
  'components/**/*.test.tsx',
  'test/**/*.test.ts',
  'test/**/*.test.tsx',
];

/**
 * What makes a test file run alone: it starts a simulated cluster, spawns processes (the CLI, etcd, tmux, S3), or
 * serves gRPC/HTTP on loopback. Those files' scenario time limits, deadlines and idle timers are wall-clock; on a
 * 2-core CI machine two of them side by side starved each other into spurious time-outs. Looked for in the file and
 * in every test helper it imports (test/**, followed through relative imports), so a new file is sorted by what it
 * does, not by a list someone must remember to update.
 */
const RUNS_ALONE =
  /\bchild_process\b|\bstartSimulator\(|\bstartGround\(|\brunScenario\(|\bkillAndResume\(|\.listen\(|\bbindAsync\(|\bcreateServer\(/;

const root = import.meta.dirname;
const seen = new Map<string, boolean>();

/** Whether a test file (or a helper it imports from test/, transitively) does any of the above. */
function runsAlone(file: string): boolean {
  const known = seen.get(file);
  if (known !== undefined) return known;
  seen.set(file, false); // an import cycle adds nothing
  let source = '';
  try {
    source = readFileSync(file, 'utf8');
  } catch {
    return false;
  }
  const helpers = [...source.matchAll(/from '(\.{1,2}\/[^']+)'/g)]
    .map((m) => resolve(dirname(file), m[1]!.replace(/\.js$/, '.ts')))
    .filter((path) => relative(join(root, 'test'), path).split('/')[0] !== '..');
  const alone = RUNS_ALONE.test(source) || helpers.some((h) => runsAlone(h) || runsAlone(h.replace(/\.ts$/, '.tsx')));
  seen.set(file, alone);
  return alone;
}

function testFiles(dir: string): string[] {
  return readdirSync(join(root, dir), { recursive: true, encoding: 'utf8' })
    .filter((f) => /\.test\.tsx?$/.test(f) && !f.split('/').includes('node_modules'))
    .map((f) => join(dir, f));
}

/** Files that only compute in memory (machines, screens, parsers): these run two at a time. */
const IN_MEMORY = ['test', 'src', 'machines', 'components']
  .flatMap((d) => {
    try {
      return testFiles(d);
    } catch {
      return [];
    }
  })
  .filter((f) => !runsAlone(join(root, f)));

const shared = {
  setupFiles: ['test/setup.ts'],
  testTimeout: 30_000,
  hookTimeout: 60_000,
  pool: 'forks' as const,
};

export default defineConfig({
  test: {
    reporters: ['default'],
    projects: [
      {
        test: {
          ...shared,
          name: 'in-memory',
          include: IN_MEMORY,
          maxWorkers: 2,
          sequence: { groupOrder: 0 },
        },
      },
      {
        test: {
          ...shared,
          name: 'one at a time',
          include: INCLUDE,
          exclude: IN_MEMORY,
          // One file at a time, after the in-memory files: drills, crash-resume and real-etcd suites spawn clusters
          // and child processes whose timings are wall-clock (see RUNS_ALONE).
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
