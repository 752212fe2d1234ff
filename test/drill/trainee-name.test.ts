/**
 * One trainee, one name in the journal: `drill` journals "drill <s> started" by the trainee (USER, or 'trainee'
 * without it), and `resume` of that drill journals "drill <s> resumed" by the same name. Before, resume named the
 * system user (USER ?? the login name ?? 'operator'), so with USER unset the same trainee showed as 'trainee' and
 * then e.g. 'root'. Both commands run in this process with a terminal; the wizard's screen is replaced by one that
 * stops at once (as q would), so the drill is left to resume.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import drill from '../../src/commands/drill.js';
import resume from '../../src/commands/resume.js';
import type { CommandContext } from '../../src/commands/types.js';
import { SPEED } from './harness.js';

// no Ink here: no first frame, and a wizard that the trainee leaves straight away
vi.mock('../../src/commands/interactive.js', () => ({
  openStartingScreen: () => null,
  closeStartingScreen: async () => {},
  wizardScreen: () => async () => 130,
}));

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function ctxFor(args: string[], env: NodeJS.ProcessEnv): CommandContext {
  const sink = () =>
    Object.assign(
      new Writable({
        write(_c, _e, cb) {
          cb();
        },
      }),
      { isTTY: true, columns: 80, rows: 24 },
    );
  return {
    args,
    global: {},
    io: { stdout: sink(), stderr: sink(), stdinIsTTY: true, env, cwd: tmpdir() },
    signal: new AbortController().signal,
  };
}

interface Line {
  kind: string;
  what?: string;
  by?: string;
}

describe('the trainee of a drill, started and resumed', () => {
  it('with USER unset, "started" and "resumed" both name the trainee "trainee"', async () => {
    const home = mkdtempSync(join(tmpdir(), 'talos-dr-trainee-'));
    dirs.push(home);
    const dir = join(home, 'incident');
    // no USER (and no CI: the commands need a terminal)
    const env: NodeJS.ProcessEnv = { TALOS_DR_DRILL_SPEED: String(SPEED), XDG_STATE_HOME: home };
    await drill(ctxFor(['--scenario', 'lost-quorum', '--dir', dir], env));
    await resume(ctxFor([dir], env));
    const sessions = readFileSync(join(dir, 'journal.jsonl'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Line)
      .filter((l) => l.kind === 'session' && /^drill lost-quorum (started|resumed)$/.test(l.what ?? ''))
      .map((l) => `${l.what} by ${l.by}`);
    expect(sessions).toEqual(['drill lost-quorum started by trainee', 'drill lost-quorum resumed by trainee']);
  }, 60_000);
});
