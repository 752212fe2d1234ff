/* eslint-disable no-control-regex -- these tests look for ANSI escape codes on purpose */
/**
 * Colour on, colour off. test/setup.ts pins FORCE_COLOR=0 for every other file; this one turns colour on before it
 * imports Ink (chalk reads the level once, at import; vitest gives each file its own module graph), to prove that
 * NO_COLOR leaves no colour code and that a changed node-table cell is the one highlighted.
 */
import { describe, expect, it } from 'vitest';
import type { NodeRow as Row } from '../../components/view-model.js';

process.env.FORCE_COLOR = '3';
const { renderToString } = await import('ink');
const { NodeTable } = await import('../../components/NodeTable.js');
const { Summary } = await import('../../components/Summary.js');
const { ThemeProvider } = await import('../../components/theme.js');
const { cellKey } = await import('../../components/view-model.js');
const { NOW, nodes } = await import('./fixtures.js');
const { render } = await import('ink-testing-library');
const { useNodeTracking } = await import('../../components/use-node-tracking.js');
const { QuitNotice } = await import('../../components/QuitNotice.js');
const { WizardScreen } = await import('../../components/WizardScreen.js');

/** The table as the App drives it: rows from the latest read, changes found by comparing with the previous one. */
function LiveTable({ rows, now }: { rows: readonly Row[]; now: number }) {
  const tracked = useNodeTracking(rows, now);
  return <NodeTable rows={tracked.rows} changed={tracked.changed} now={now} width={100} />;
}

// SGR colour codes: 30–37, 90–97 (foreground), 38;… (extended); bold is 1.
const COLOUR = /\u001B\[(3[0-8]|9[0-7])[;m]/;
const strip = (s: string) => s.replace(/\u001B\[[0-9;]*m/g, '');

describe('colour', () => {
  it('highlights exactly the cell that changed, bold and underlined in the terminal colour, text identical', () => {
    const changed = new Set([cellKey('127.0.0.2', 'raftAppliedIndex')]);
    const marked = renderToString(<NodeTable rows={nodes} now={NOW} width={100} changed={changed} />, {
      columns: 100,
    });
    const plain = renderToString(<NodeTable rows={nodes} now={NOW} width={100} />, { columns: 100 });
    expect(strip(marked)).toBe(strip(plain));
    const row = marked.split('\n')[1] ?? '';
    expect(row).toMatch(/\u001B\[4m\u001B\[1m48213/);
    // no bright yellow: unreadable on a light background
    expect(marked).not.toMatch(/\u001B\[93m/);
    expect(plain.split('\n')[1]).not.toMatch(/\u001B\[1m/);
  });

  it('the live table highlights what changed since the previous read, and nothing on the first read', async () => {
    const { lastFrame, rerender, unmount } = render(<LiveTable rows={nodes} now={NOW} />);
    // (a silent node's "no" is always bold red; the changed-cell underline appears nowhere yet)
    expect(lastFrame()).not.toMatch(/\u001B\[4m/);
    const next = nodes.map((n) => (n.address === '127.0.0.3' ? { ...n, etcdService: 'Preparing' } : n));
    rerender(<LiveTable rows={next} now={NOW + 1000} />);
    await new Promise((r) => setTimeout(r, 20));
    const row = (lastFrame() ?? '').split('\n').find((l) => l.includes('127.0.0.3')) ?? '';
    expect(row).toMatch(/\u001B\[4m\u001B\[1mPreparing/);
    expect((lastFrame() ?? '').split('\n').find((l) => l.includes('127.0.0.2'))).not.toMatch(/\u001B\[4m/);
    unmount();
  });

  it('uses colour by default and none at all with NO_COLOR (the theme off)', () => {
    const summary = <Summary outcome={{ kind: 'failed', reason: 'x' }} incidentDir="/x" />;
    expect(renderToString(summary)).toMatch(COLOUR);
    const off = renderToString(
      <ThemeProvider color={false}>
        <NodeTable rows={nodes} now={NOW} width={100} changed={new Set([cellKey('127.0.0.3', 'healthy')])} />
        {summary}
      </ThemeProvider>,
      { columns: 100 },
    );
    expect(off).not.toMatch(COLOUR);
    expect(strip(off)).toContain('outcome: failed: x');
  });

  it('yellow marks a warning and labels it, never colours a whole sentence (unreadable on a light background)', () => {
    const yellowRuns = (out: string) =>
      [...out.matchAll(/\u001B\[(?:33|93)m((?:(?!\u001B\[39m).)*)\u001B\[39m/gs)].map((m) => strip(m[1] ?? '').trim());
    const screens = [
      renderToString(<QuitNotice incidentDir="/tmp/inc" stoppedAt="step 3 of 9: Snapshot" />, { columns: 80 }),
      renderToString(<Summary outcome={{ kind: 'stopped-quorum-intact' }} incidentDir="/tmp/inc" />, { columns: 80 }),
      renderToString(
        <WizardScreen
          header={{ context: 'c', stepNumber: 3, stepCount: 9, stepTitle: 'Snapshot' }}
          upcoming={[]}
          stepCount={9}
          nodes={nodes}
          changed={new Set()}
          explanation={null}
          keys={[]}
          notices={['127.0.0.3 holds newer data than this snapshot; a snapshot from 127.0.0.3 loses less.']}
          showHelp={false}
          incidentDir="/tmp/inc"
          now={NOW}
          columns={80}
          rows={24}
          liveLines={2}
          drill={false}
        />,
        { columns: 80 },
      ),
    ];
    for (const out of screens) {
      expect(strip(out)).toMatch(/Stopped at|Quorum holds|holds newer data/);
      for (const run of yellowRuns(out)) expect(run.length).toBeLessThanOrEqual(13);
    }
  });
});
