import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { BaseSequencer, type TestSpecification } from 'vitest/node';
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
 * What puts a test file in the second group: it starts a simulated cluster, spawns processes (the CLI, etcd, tmux,
 * S3), or serves gRPC/HTTP on loopback. Such files mostly wait (a lost-quorum drill is ~14 s of wall time for ~2 s of
 * CPU), so they run several at a time, after the CPU-bound in-memory files. Looked for in the file and in every test
 * helper it imports (test/**, followed through relative imports), so a new file is sorted by what it does, not by a
 * list someone must remember to update.
 */
const SPAWNS_OR_LISTENS =
  /\bchild_process\b|\bstartSimulator\(|\bstartGround\(|\brunScenario\(|\bkillAndResume\(|\.listen\(|\bbindAsync\(|\bcreateServer\(/;

const root = import.meta.dirname;
const seen = new Map<string, boolean>();

/** Whether a test file (or a helper it imports from test/, transitively) does any of the above. */
function spawnsOrListens(file: string): boolean {
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
  const found =
    SPAWNS_OR_LISTENS.test(source) ||
    helpers.some((h) => spawnsOrListens(h) || spawnsOrListens(h.replace(/\.ts$/, '.tsx')));
  seen.set(file, found);
  return found;
}

function testFiles(dir: string): string[] {
  return readdirSync(join(root, dir), { recursive: true, encoding: 'utf8' })
    .filter((f) => /\.test\.tsx?$/.test(f) && !f.split('/').includes('node_modules'))
    .map((f) => join(dir, f));
}

/** Files that only compute in memory (machines, screens, parsers). */
const IN_MEMORY = ['test', 'src', 'machines', 'components']
  .flatMap((d) => {
    try {
      return testFiles(d);
    } catch {
      return [];
    }
  })
  .filter((f) => !spawnsOrListens(join(root, f)));

/**
 * An in-memory file that arranges what a module reads once, at import, before importing it (a top-level
 * `await import(...)`: colour.test.tsx turns colour on before chalk reads FORCE_COLOR, redraw.test.tsx asks Ink for
 * live drawing before it reads CI). It needs a module graph of its own; the other in-memory files share one.
 */
const arrangesImports = (file: string) =>
  /^(const|let) .*= await import\(/m.test(readFileSync(join(root, file), 'utf8'));

/**
 * The in-memory files share their worker threads and the modules loaded in them (isolate: false): each file otherwise
 * starts a worker (~0.25 s of CPU) and loads Ink, React, xstate and the machines again (~0.2 s, ~0.9 s for a screen).
 * The in-memory files alone, interleaved runs at load 7-10: 71 s of CPU (forks, isolated, 4 runs) -> 44 s (2 runs);
 * threads alone 69 s, shared forks 49 s. A file that leaves module state behind must undo it (afterEach/afterAll),
 * as the fake timers in off-path and transfer-line do.
 */
const IN_MEMORY_SHARED = IN_MEMORY.filter((f) => !arrangesImports(f));
const IN_MEMORY_OWN = IN_MEMORY.filter(arrangesImports);

/**
 * A loopback file that needs a process of its own: it imports modules as it runs (as above); changes its process
 * (process.env, `process.chdir`, vi.stubEnv/stubGlobal); measures it (`memoryUsage`, `resourceUsage`, V8's heap
 * statistics: in a shared worker the earlier files' garbage has already grown the heap, so a "no growth" check could
 * not fail); or sets process-wide state that nothing clears (src/journal/local-disk.ts records the run's first disk
 * failure: later runs in that worker would end with its sentence). The other loopback files share their processes and
 * loaded modules (isolate: false), as the in-memory ones do. Whole suite, clean clones of one commit (194 files) at
 * load 9-14: 523.2 s of CPU (543 s wall) isolated, 404.1 s (480 s wall) shared; earlier pair 492.1 -> 398.5 s.
 */
const NEEDS_OWN_PROCESS = new RegExp(
  [
    /await import\(/,
    /process\.chdir/,
    /process\.env(\.[A-Z0-9_]+|\[[^\]]+\]) =[^=]/,
    /delete process\.env/,
    /Object\.assign\(process\.env/,
    /vi\.stub(Env|Global)\(/,
    /memoryUsage|resourceUsage|getHeapSpaceStatistics|getHeapStatistics|setFlagsFromString/,
    /journal\/local-disk\.js'/,
  ]
    .map((r) => r.source)
    .join('|'),
);
const LOOPBACK_OWN = ['test', 'src', 'machines', 'components']
  .flatMap((d) => {
    try {
      return testFiles(d);
    } catch {
      return [];
    }
  })
  .filter((f) => !IN_MEMORY.includes(f))
  .filter((f) => NEEDS_OWN_PROCESS.test(readFileSync(join(root, f), 'utf8')));

/**
 * How many test files run side by side: the in-memory and the loopback files share one pool (vitest runs projects of
 * one group order together only with the same maxWorkers). The loopback files wait far more than they compute and the
 * in-memory ones compute, so eight fit on a 2-core machine: with four, a quiet run used 130% of the two cores (511 s of
 * CPU in 391 s); six used more of the idle part; since the files share processes (less CPU a file), eight: a clean
 * clone of c2cf294 at load 1-7, 198 files, all passed: 8 side by side 219 s and 216 s wall (363 s, 369 s of CPU),
 * 6 side by side 267 s (401 s of CPU) between them. Every wall-clock limit the loopback files meet (test time-outs,
 * scenario deadlines, status reads) must hold beside them. TALOS_DR_TEST_FILES overrides it (1 = one file at a time).
 */
const FILES_SIDE_BY_SIDE = Number(process.env.TALOS_DR_TEST_FILES ?? 8);

/**
 * The files that take longest start first, so the last slots do not end on a long file while the others idle.
 * Seconds each, measured with 6 files side by side in a clean-clone CI run (the vitest run 343 s); a file missing here
 * only starts later, in path order.
 */
const LONGEST_FIRST = [
  'test/real-etcd/drills-restore.test.ts', // 161
  'test/real-etcd/drills.test.ts', // 138
  'test/drill/scenarios.test.ts', // 113
  'test/drill/random-kills.test.ts', // 89
  'test/machines/golden.test.ts', // 49
  'test/drill/replace-member-keys.test.tsx', // 43
  'test/machines/guards.test.ts', // 34
  'test/drill/replace-member.test.ts', // 34
  'test/drill/crash-resume.test.ts', // 25
  'test/drill/after-restore-no-discovery.test.ts', // 22
  'test/etcd/piece-ring.test.ts', // 22
  'test/etcd/snapshot-stall-cli.test.ts', // 21
  'test/backups/import.test.ts', // 18
  'test/components/app.test.tsx', // 18
  'test/drill/nospace-resume.test.ts', // 18
  'test/peers/reboot.test.ts', // 18
  'test/peers/talosctl.test.ts', // 17
  'test/e2e/drill-tmux.test.ts', // 17
  'test/journal/lock.test.ts', // 16
];

/** Orders files the same way in CI (no cache) and locally: the longest first, then by path. */
class LongestFirst extends BaseSequencer {
  override sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const rank = (spec: TestSpecification) => {
      const i = LONGEST_FIRST.indexOf(relative(root, spec.moduleId));
      return i === -1 ? LONGEST_FIRST.length : i;
    };
    // one project's unranked files together: a shared worker takes the next file only when it is of its project
    const order = (a: TestSpecification, b: TestSpecification) =>
      a.project.config.sequence.groupOrder - b.project.config.sequence.groupOrder ||
      rank(a) - rank(b) ||
      a.project.name.localeCompare(b.project.name) ||
      a.moduleId.localeCompare(b.moduleId);
    return Promise.resolve([...files].sort(order));
  }
}

const shared = {
  setupFiles: ['test/setup.ts'],
  testTimeout: 30_000,
  hookTimeout: 60_000,
  pool: 'forks' as const,
};

export default defineConfig({
  test: {
    reporters: ['default'],
    globalSetup: ['test/global-setup.ts'],
    sequence: { sequencer: LongestFirst },
    projects: [
      {
        test: {
          ...shared,
          name: 'in-memory',
          include: IN_MEMORY_SHARED,
          pool: 'threads',
          isolate: false,
          maxWorkers: FILES_SIDE_BY_SIDE,
          // beside the loopback files, on the same two cores: a screen test's frames wait for CPU the drills share
          testTimeout: 60_000,
          sequence: { groupOrder: 0 },
        },
      },
      {
        test: {
          ...shared,
          name: 'in-memory-own-modules',
          include: IN_MEMORY_OWN,
          maxWorkers: FILES_SIDE_BY_SIDE,
          testTimeout: 60_000,
          sequence: { groupOrder: 0 },
        },
      },
      {
        test: {
          ...shared,
          name: 'loopback-own-process',
          include: LOOPBACK_OWN,
          maxWorkers: FILES_SIDE_BY_SIDE,
          testTimeout: 120_000,
          sequence: { groupOrder: 0 },
        },
      },
      {
        test: {
          ...shared,
          name: 'loopback',
          include: INCLUDE,
          exclude: [...IN_MEMORY, ...LOOPBACK_OWN],
          isolate: false,
          maxWorkers: FILES_SIDE_BY_SIDE,
          // A whole drill under the default 30 s took 19 s with 3 files side by side at load 14
          // (freshest-raw-copy): the default limit is generous here, so a slow machine is not a failure; a test that
          // hangs still fails. Limits a test sets itself stand.
          testTimeout: 120_000,
          // beside the in-memory files (the loopback files mostly wait, the in-memory ones mostly compute)
          sequence: { groupOrder: 0 },
        },
      },
    ],
  },
});
