/**
 * The commands' edges a user meets first: interactive commands refuse without a terminal and name the headless
 * alternative (exit 2), drill lists its scenarios and refuses an unknown one, resume and report without an incident
 * folder say so in one sentence. Spawns the built CLI (npm test builds first).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const CLI = join(process.cwd(), 'dist', 'src', 'cli.js');
function cli(args: string[], env: Record<string, string> = {}) {
  const cwd = mkdtempSync(join(tmpdir(), 'talos-dr-cmd-'));
  const r = spawnSync(process.execPath, [CLI, ...args], {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, ...env },
    input: '',
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr.trim() };
}

describe('interactive commands without a terminal', () => {
  it('drill refuses and names drill --autopilot', () => {
    const r = cli(['drill']);
    expect(r.code).toBe(2);
    expect(r.stderr.split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/talos-dr drill --autopilot/);
  });
  it('recover refuses and names status, snapshot and drill --autopilot', () => {
    const r = cli(['recover']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/talos-dr status.*talos-dr snapshot.*talos-dr drill --autopilot/);
  });
});

describe('drill and resume edges', () => {
  it('drill --list names every shipped scenario', () => {
    const r = cli(['drill', '--list']);
    expect(r.code).toBe(0);
    for (const s of [
      'lost-quorum',
      'lost-quorum-5',
      'etcd-down-raw-copy',
      'hardware-failure',
      'init-node',
      'quorum-intact',
      'single-node',
      'stuck-waiting',
      'flaky-network',
      'member-crashloop',
      'member-crashloop-5',
      'member-hardware',
      'member-unreachable',
      'nospace',
      'planned-swap',
      'lost-quorum-no-discovery',
    ])
      expect(r.stdout).toMatch(new RegExp(`^${s} `, 'm'));
    // the list tells a trainee what happened, never which procedure is the right answer
    expect(r.stdout).not.toMatch(/replace-member|full-recovery|nospace-cleared|member-replaced/);
  });
  it('an unknown scenario is a usage error naming the list', () => {
    const r = cli(['drill', '--autopilot', '--scenario', 'no-such-thing']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/no scenario "no-such-thing".*drill --list/);
  });
  it('an unknown flag is a usage error, never a stack trace', () => {
    const r = cli(['drill', '--autopliot']);
    expect(r.code).toBe(2);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
  it('resume without an incident folder says where to look', () => {
    const r = cli(['resume']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/no incident folder .* talos-dr resume DIR/);
  });
});

describe("drill's first frame", () => {
  const hasScript = spawnSync('script', ['--version']).status === 0;
  /** The drill in a pseudo-terminal (util-linux `script`), as a trainee's shell runs it. */
  function inTerminal(args: string[]) {
    const cwd = mkdtempSync(join(tmpdir(), 'talos-dr-cmd-'));
    const env: NodeJS.ProcessEnv = { ...process.env, TERM: 'xterm', NO_COLOR: '1' };
    delete env.CI;
    delete env.CONTINUOUS_INTEGRATION;
    const r = spawnSync(
      'script',
      ['-qfec', `stty cols 80 rows 24; exec ${process.execPath} ${CLI} ${args.join(' ')}`, '/dev/null'],
      {
        cwd,
        encoding: 'utf8',
        env,
        input: '',
      },
    );
    return { code: r.status, out: r.stdout };
  }

  it.skipIf(!hasScript)(
    'an unknown scenario is refused before any frame is drawn (checked without the simulator)',
    () => {
      const r = inTerminal(['drill', '--scenario', 'no-such-thing']);
      expect(r.code).toBe(2);
      expect(r.out).toMatch(/no scenario "no-such-thing".*drill --list/);
      expect(r.out).not.toContain('DRILL');
    },
  );
});
