/**
 * Issue 17, the drill as a trainer runs it: a briefing before anything is asked (the scenario's name, what happened,
 * the Talos version, the time limit, what the trainee is asked to do, the incident folder; never the right answer
 * or the expected outcome), one key to begin; and at the end the trainer's verdict on the final screen, within 80×24.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { renderToString } from 'ink';
import { StartingScreen } from '../../components/StartingScreen.js';
import { Summary } from '../../components/Summary.js';
import { ThemeProvider } from '../../components/theme.js';
import { openStartingScreen, closeStartingScreen } from '../../src/commands/interactive.js';
import { briefingOf } from '../../src/commands/drill.js';
import { listScenarios } from '../../src/sim/scenario.js';
import { FOLLOW_UP } from '../../machines/recovery/context.js';
import {
  cleanupSized,
  type FakeStdout,
  fakeTerminal,
  flush,
  frameMatching,
  KEYS,
  press,
  renderSized,
  widest,
} from './helpers.js';

afterEach(async () => {
  cleanupSized();
  await closeStartingScreen();
});

const INCIDENT = '/tmp/talos-dr-drills-1000/talos-dr-sim-2026-12-03T01-00-00Z';

function briefing(name: string, onBegin = () => {}, onQuit = () => {}) {
  const info = listScenarios().find((s) => s.name === name);
  if (!info) throw new Error(`no scenario ${name}`);
  const screen = renderSized(
    <ThemeProvider color={false}>
      <StartingScreen
        context="talos-dr-sim"
        drill={{ scenario: name }}
        status="Starting the drill cluster"
        since={Date.now()}
        onQuit={onQuit}
        briefing={{ view: briefingOf(info, 1, false), incidentDir: INCIDENT, onBegin }}
      />
    </ThemeProvider>,
    { columns: 80, rows: 24 },
  );
  return { info, screen };
}

/* eslint-disable no-control-regex */
const ESC = /\u001B\[[0-9;?]*[A-Za-z]/g;
/* eslint-enable no-control-regex */
/** Everything written so far as a terminal shows it (Ink writes only what changed): escape sequences removed. */
const written = (out: FakeStdout) => out.frames.join('').replace(ESC, '');

/** Waits (condition-based) until `ok` holds: frames arrive after Ink's throttle. */
async function until(ok: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok() && Date.now() < end) await flush();
  if (!ok()) throw new Error('never happened');
}

/** The frame as one line of words: the screen wraps sentences at 80 columns. */
const words = (frame: string) => frame.replace(/\s+/g, ' ');

describe('the drill briefing', () => {
  it('names the scenario, what happened, the Talos version, the time limit, the task and the incident folder', async () => {
    const { info, screen } = briefing('lost-quorum');
    const f = await frameMatching(screen.lastFrame, (x) => x.includes('Briefing'));
    expect(f).toContain(
      `Briefing — lost-quorum · Talos ${info.talosVersion} · ${info.nodeCount} nodes · time limit 30:00`,
    );
    expect(words(f)).toContain(info.description);
    expect(words(f)).toContain('Your task: Find out what is wrong with etcd on this cluster');
    // the folder is whole on one line, to copy
    expect(f.split('\n').map((l) => l.trim())).toContain(INCIDENT);
    expect(f).toMatch(/Enter begin the drill · q quit/);
  });

  it('gives away neither the right answer nor the expected outcome, for every scenario, and fits 80×24', async () => {
    for (const info of listScenarios()) {
      const { screen } = briefing(info.name);
      const f = await frameMatching(screen.lastFrame, (x) => x.includes('Briefing'));
      const said = words(f);
      expect(said).not.toContain(info.rightAnswer);
      expect(said).not.toContain(info.expectedOutcome);
      // the procedure's name, where it is not an everyday word ("wait")
      if (info.procedure.includes('-')) expect(said).not.toContain(info.procedure);
      expect(said).not.toMatch(/right answer|expected outcome/i);
      expect(f.split('\n').length).toBeLessThan(24);
      expect(widest(f)).toBeLessThanOrEqual(80);
      cleanupSized();
    }
  });

  it('Enter begins (once); q quits instead', async () => {
    const onBegin = vi.fn();
    const onQuit = vi.fn();
    const a = briefing('quorum-intact', onBegin, onQuit);
    await frameMatching(a.screen.lastFrame, (x) => x.includes('Briefing'));
    await press(a.screen.stdin, 'x');
    expect(onBegin).not.toHaveBeenCalled();
    await press(a.screen.stdin, KEYS.enter);
    expect(onBegin).toHaveBeenCalledTimes(1);
    expect(onQuit).not.toHaveBeenCalled();
    cleanupSized();
    const b = briefing('quorum-intact', onBegin, onQuit);
    await frameMatching(b.screen.lastFrame, (x) => x.includes('Briefing'));
    await press(b.screen.stdin, 'q');
    expect(onQuit).toHaveBeenCalledTimes(1);
    expect(onBegin).toHaveBeenCalledTimes(1);
  });

  it("the drill command's first frame: brief() waits for Enter, then the frame says what is being done again", async () => {
    const { stdin, stdout, streams } = fakeTerminal();
    const onQuit = vi.fn();
    const handle = openStartingScreen({
      context: 'talos-dr-sim',
      drill: { scenario: 'member-unreachable' },
      status: 'Starting the drill cluster',
      onQuit,
      ...streams,
    });
    if (!handle) throw new Error('no first frame');
    const info = listScenarios().find((s) => s.name === 'member-unreachable');
    let begun: boolean | null = null;
    void handle.brief(briefingOf(info!, 10, false), INCIDENT).then((b) => (begun = b));
    await until(() => written(stdout).includes('Briefing — member-unreachable'));
    // compressed with the drill's speed, as the wizard's header will show it (at least a minute)
    expect(written(stdout)).toContain('time limit 1:30');
    expect(begun).toBeNull();
    await press(stdin, KEYS.enter);
    await flush();
    expect(begun).toBe(true);
    handle.update('Connecting to the drill cluster');
    const before = written(stdout).length;
    await until(() => written(stdout).slice(before).includes('Connecting to the drill cluster…'));
    expect(written(stdout).slice(before)).not.toContain('Briefing');
    expect(onQuit).not.toHaveBeenCalled();
    await handle.close();
  });

  it('q at the briefing ends it as not begun and asks the command to stop (it saves and names resume)', async () => {
    const { stdin, stdout, streams } = fakeTerminal();
    const onQuit = vi.fn();
    const handle = openStartingScreen({
      context: 'talos-dr-sim',
      drill: { scenario: 'lost-quorum' },
      status: 'Starting the drill cluster',
      onQuit,
      ...streams,
    });
    const info = listScenarios().find((s) => s.name === 'lost-quorum');
    const begun = handle!.brief(briefingOf(info!, 1, false), INCIDENT);
    await until(() => written(stdout).includes('Briefing — lost-quorum'));
    await press(stdin, 'q');
    expect(await begun).toBe(false);
    expect(onQuit).toHaveBeenCalledTimes(1);
    await handle!.close();
  });
});

describe('the verdict on the final screen', () => {
  const score = {
    scenario: 'stuck-waiting',
    timeToRecoverMs: 184_000,
    timeLimitSec: 1200,
    dataLost: '40 revisions (last write 240, restored 200)',
    mistakesStopped: ['You typed "127.0.0.3", but this step acts on 127.0.0.2. (SAFETY rule 3).'],
  };

  it('a wrong call: ✗ with the concrete reason and the right answer, the outcome still last, within 80×24', () => {
    const info = listScenarios().find((s) => s.name === 'stuck-waiting')!;
    const f = renderToString(
      <ThemeProvider color={false}>
        <Summary
          outcome={{ kind: 'recovered' }}
          incidentDir={INCIDENT}
          followUp={[...FOLLOW_UP]}
          score={{
            ...score,
            verdict: {
              correct: false,
              line: '✗ a fresher snapshot was available: 40 revisions lost',
              rightAnswer: info.rightAnswer,
            },
          }}
        />
      </ThemeProvider>,
      { columns: 80 },
    );
    expect(f).toContain('  ✗ a fresher snapshot was available: 40 revisions lost');
    expect(words(f)).toContain(`right answer: ${info.rightAnswer}`);
    expect(f.trimEnd().split('\n').at(-1)).toBe('outcome: recovered');
    // the whole final frame stays shorter than the terminal: a full one makes Ink clear the scrollback
    expect(f.trimEnd().split('\n').length).toBeLessThan(24);
    expect(widest(f)).toBeLessThanOrEqual(80);
  });

  it('a right wait: ✓ and time to recover "none needed", not "not recovered"', () => {
    const f = renderToString(
      <ThemeProvider color={false}>
        <Summary
          outcome={{ kind: 'nothing-to-do' }}
          incidentDir={INCIDENT}
          score={{
            ...score,
            scenario: 'member-unreachable',
            timeToRecoverMs: null,
            dataLost: 'nothing restored',
            mistakesStopped: [],
            verdict: {
              correct: true,
              line: '✓ correct call: quorum held and you waited: the member came back by itself, nothing removed or wiped',
              rightAnswer: 'wait for cp-3',
            },
          }}
        />
      </ThemeProvider>,
      { columns: 80 },
    );
    expect(words(f)).toContain('✓ correct call: quorum held and you waited');
    expect(f).toContain('time to recover: none needed');
    expect(f).not.toContain('not recovered');
    expect(f).not.toContain('right answer');
  });
});
