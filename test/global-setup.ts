// Runs once, in vitest's own process, before any test file. Every test file, and every process a test starts (the
// CLI, the simulator, real etcd members, tmux), makes its folders under the system temp folder; real etcd members
// alone preallocate ~120 MB of WAL each, and a run left ~5 GB behind (a shared machine's disk filled after a few
// dozen runs). So the whole run gets one temp folder of its own (TMPDIR, which os.tmpdir() and the programs we start
// read), removed when the run ends — unless a test failed (its message may name a folder in it: a drill's incident,
// with its journal) or TALOS_DR_KEEP_TEST_TMP=1.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';

export default function setup(project: TestProject): () => void {
  const runDir = mkdtempSync(join(tmpdir(), 'talos-dr-suite-'));
  process.env.TMPDIR = runDir;
  return () => {
    const failed = project.vitest.state.getCountOfFailedTests();
    if (failed > 0 || process.env.TALOS_DR_KEEP_TEST_TMP === '1') {
      console.log(`test temp folder kept${failed > 0 ? ' (a test failed)' : ''}: ${runDir}`);
      return;
    }
    rmSync(runDir, { recursive: true, force: true, maxRetries: 3 });
  };
}
