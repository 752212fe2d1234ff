/**
 * `talos-dr resume` of a real recovery draws the wizard's first frame before it reads the talosconfig and loads the
 * Talos client, as `recover` does (issue 14: the first frame within 5× `node -e 0`, resume included), and erases it
 * before an error sentence. The built CLI (dist/, `npm run build` first) in a pseudo-terminal (util-linux script).
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findPackageRoot } from '../../src/paths.js';
import { writeState } from '../../src/journal/state.js';

const cli = join(findPackageRoot(), 'dist/src/cli.js');
const hasScript = spawnSync('script', ['--version']).status === 0;

describe('resume of a recovery', () => {
  it.skipIf(!hasScript)(
    'in a terminal draws the first frame before the talosconfig is read, and erases it before the error sentence',
    () => {
      const home = mkdtempSync(join(tmpdir(), 'talos-dr-home-'));
      const dir = mkdtempSync(join(tmpdir(), 'talos-dr-resume-frame-'));
      try {
        // an interrupted recovery of context prod, whose talosconfig is gone by now
        writeState(dir, {
          mode: 'recover',
          context: 'prod',
          nodes: ['10.5.0.2'],
          // shaped as the machine persists itself (resume refuses a damaged state.json before any frame)
          snapshot: {
            status: 'active',
            value: { connect: 'reading' },
            context: {
              nodes: ['10.5.0.2'],
              steps: [{ n: 1, name: 'connect', status: 'active' }],
              rows: {},
              startedAt: Date.now(),
              prompt: null,
            },
          },
        });
        const env: NodeJS.ProcessEnv = {
          ...process.env,
          TERM: 'xterm',
          NO_COLOR: '1',
          TALOSCONFIG: '/nonexistent/talosconfig',
          // talosctl skips a $TALOSCONFIG that does not exist and looks in ~/.talos/config: an empty home has none
          HOME: home,
        };
        delete env.CI;
        delete env.CONTINUOUS_INTEGRATION;
        const r = spawnSync(
          'script',
          ['-qfec', `stty cols 80 rows 24; exec ${process.execPath} ${cli} resume ${dir}`, '/dev/null'],
          { encoding: 'utf8', env, input: '' },
        );
        const out = r.stdout;
        const sentence = `No talosconfig found at /nonexistent/talosconfig (TALOSCONFIG) nor at ${home}/.talos/config`;
        expect(out).toContain(`resuming the recovery in ${dir}`);
        const frameAt = out.indexOf('Reading the talosconfig and loading the Talos client');
        expect(frameAt).toBeGreaterThanOrEqual(0);
        expect(out).toContain('context prod');
        expect(out).toContain('step 1 of 10: Connect');
        // erase-line sequences between the frame and the sentence, and nothing of the frame drawn after it
        const erased = out.lastIndexOf('\u001B[2K');
        expect(erased).toBeGreaterThan(frameAt);
        expect(out.indexOf(sentence)).toBeGreaterThan(erased);
        expect(out.slice(out.indexOf(sentence))).not.toContain('Connect');
        expect(r.status).toBe(1);
      } finally {
        rmSync(dir, { recursive: true, force: true });
        rmSync(home, { recursive: true, force: true });
      }
    },
  );
});
