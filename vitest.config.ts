import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: [
      'src/**/*.test.ts',
      'src/**/*.test.tsx',
      'machines/**/*.test.ts',
      'components/**/*.test.tsx',
      'test/**/*.test.ts',
      'test/**/*.test.tsx',
    ],
    setupFiles: ['test/setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // One test file at a time: the drill, crash-resume and real-etcd suites spawn clusters and child processes whose
    // timings (scenario time limits, deadlines) are wall-clock; on a 2-core CI machine, files side by side starve each
    // other into spurious time-outs, and running them in parallel saved almost nothing.
    fileParallelism: false,
    reporters: ['default'],
  },
});
