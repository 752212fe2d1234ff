import { afterEach, describe, expect, it, vi } from 'vitest';
import { render, cleanup } from 'ink-testing-library';
import { renderToString, Text } from 'ink';
import { Header } from '../../components/Header.js';
import { StepList, StepLine } from '../../components/StepList.js';
import { NodeTable } from '../../components/NodeTable.js';
import { StepPanel } from '../../components/StepPanel.js';
import { TransferProgress } from '../../components/TransferProgress.js';
import { WaitSpinner } from '../../components/WaitSpinner.js';
import { HelpOverlay } from '../../components/HelpOverlay.js';
import { QuitNotice } from '../../components/QuitNotice.js';
import { Summary } from '../../components/Summary.js';
import { NOW, nodes, steps } from './fixtures.js';
import { widest } from './helpers.js';

afterEach(cleanup);

describe('Header', () => {
  it('says where I am: context, endpoint, step n of m and the time since the assessment', () => {
    const { lastFrame } = render(
      <Header
        context="prod-eu"
        endpoint="10.0.0.2:50000"
        stepNumber={3}
        stepCount={9}
        stepTitle="Snapshot"
        sinceAssessmentMs={125_000}
      />,
    );
    const f = lastFrame() ?? '';
    expect(f).toContain('context prod-eu');
    expect(f).toContain('endpoint 10.0.0.2:50000');
    expect(f).toContain('step 3 of 9: Snapshot');
    expect(f).toContain('2:05 since assessment');
    expect(f).not.toContain('DRILL');
  });

  it('shows a drill banner naming the scenario so nobody mistakes it for the real cluster', () => {
    const { lastFrame } = render(
      <Header
        context="talos-dr-sim"
        stepNumber={1}
        stepCount={9}
        stepTitle="Connect"
        drill={{ scenario: 'lost-quorum', timeLimitSec: 900 }}
      />,
    );
    const f = lastFrame() ?? '';
    expect(f).toMatch(/DRILL · simulated cluster · scenario lost-quorum · time limit 15:00/);
    expect(f).toContain('endpoint connecting…');
    expect(f).toContain('not assessed yet');
  });

  it('fits 80 columns', () => {
    const f = renderToString(
      <Header
        context="a-very-long-context-name-for-a-cluster"
        endpoint="192.168.100.200:50000"
        stepNumber={7}
        stepCount={9}
        stepTitle="Wait for every node to reach Preparing"
        sinceAssessmentMs={3_725_000}
        drill={{ scenario: 'stuck-waiting' }}
      />,
      { columns: 80 },
    );
    expect(widest(f)).toBeLessThanOrEqual(80);
    expect(f).toContain('1:02:05 since assessment');
  });
});

describe('StepList', () => {
  it('marks done, current and pending steps with symbols and gives each finished step its result', () => {
    const { lastFrame } = render(<StepList steps={steps} stepCount={9} />);
    const lines = (lastFrame() ?? '').split('\n');
    expect(lines[0]).toBe('✓ 1/9 Connect — 3 nodes answer, Talos v1.11.2 (420ms)');
    expect(lines[1]).toContain('✓ 2/9 Assess — quorum lost: 1 of 3 members healthy (1.8s)');
    expect(lines[2]).toBe('▸ 3/9 Snapshot');
    expect(lines[3]).toBe('· 4/9 Back up configs');
    expect(lines).toHaveLength(9);
  });

  it('shows a failed step with a cross and its reason', () => {
    const { lastFrame } = render(
      <StepLine
        step={{
          n: 8,
          title: 'Bootstrap',
          status: 'failed',
          result: '127.0.0.2 refused: etcd data directory is not empty',
        }}
        stepCount={9}
      />,
    );
    expect(lastFrame()).toBe('✗ 8/9 Bootstrap — 127.0.0.2 refused: etcd data directory is not empty');
  });

  it('folds pending steps into one "next" line when compact', () => {
    const { lastFrame } = render(<StepList steps={steps.slice(2)} stepCount={9} compact />);
    const lines = (lastFrame() ?? '').split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toBe('▸ 3/9 Snapshot');
    expect(lines[1]).toMatch(/^· next: 4 Back up configs · 5 Init nodes/);
  });
});

describe('NodeTable', () => {
  it('shows every node with address, hostname, reachability, type, etcd state, health, members, applied index', () => {
    const f = renderToString(<NodeTable rows={nodes} now={NOW} width={100} />, { columns: 100 });
    const [head, a, b, c] = f.split('\n');
    expect(head).toMatch(/NODE\s+HOST\s+UP\s+TYPE\s+ETCD\s+HEALTH\s+MEMB\s+APPLIED\s+LAST EVENT/);
    expect(a).toMatch(/127\.0\.0\.2\s+cp-1\s+yes\s+cp\s+Running\s+ok\s+3\s+48213\s+Health check successful/);
    expect(b).toMatch(/127\.0\.0\.3\s+cp-2\s+yes\s+cp\s+Failed\s+bad\s+3\s+47990\s+Error running/);
    // a node that stopped answering says how long ago it last did
    expect(c).toMatch(/127\.0\.0\.4\s+—\s+no 42s\s+\?\s+—/);
  });

  it('fits 80 columns by truncating the last event, and drops columns when compact', () => {
    const f = renderToString(<NodeTable rows={nodes} now={NOW} width={80} />, { columns: 80 });
    expect(widest(f)).toBeLessThanOrEqual(80);
    expect(f).toContain('Error running Con');
    expect(f).not.toContain('exit status 2');
    const compact = renderToString(<NodeTable rows={nodes} now={NOW} width={80} compact />, { columns: 80 });
    expect(compact).not.toContain('HOST');
    expect(compact).not.toContain('LAST EVENT');
    expect(compact).toContain('48213');
  });

  it('says when no node has been asked yet', () => {
    expect(renderToString(<NodeTable rows={[]} now={NOW} width={80} />)).toBe('No node has been asked yet.');
  });
});

describe('StepPanel', () => {
  const explanation = {
    why: 'Every later step needs a verified copy of the data; nothing is wiped before it exists on local disk.',
    whatHappens: 'Take a consistent snapshot from 127.0.0.2 (the freshest member) and verify it offline.',
    talosctl: ['talosctl -n 127.0.0.2 etcd snapshot db.snapshot'],
  };
  const keys = [
    { key: 'Enter', does: 'take the snapshot' },
    { key: 'q', does: 'quit (saved)' },
    { key: '?', does: 'help' },
  ];

  it('explains why, what happens next, the talosctl equivalent and the keys', () => {
    const f = renderToString(<StepPanel explanation={explanation} keys={keys} />, { columns: 80 });
    expect(f).toContain('Why: Every later step needs a verified copy');
    expect(f).toContain('Next: Take a consistent snapshot from 127.0.0.2');
    expect(f).toContain('by hand: talosctl -n 127.0.0.2 etcd snapshot db.snapshot');
    expect(f).toContain('Enter take the snapshot · q quit (saved) · ? help');
    expect(widest(f)).toBeLessThanOrEqual(80);
  });

  it('drops the why when compact, and shows its live part', () => {
    const f = renderToString(
      <StepPanel explanation={explanation} keys={keys} compact>
        <Text>live part</Text>
      </StepPanel>,
      { columns: 80 },
    );
    expect(f).not.toContain('Why:');
    expect(f).toContain('live part');
  });

  it('shows a talosctl line given twice (list, disarm, list again) both times, across redraws, without a React warning', () => {
    const list = 'talosctl -n 127.0.0.2 etcd alarm list';
    const twice = { ...explanation, talosctl: [list, 'talosctl -n 127.0.0.2 etcd alarm disarm', list] };
    const warnings: unknown[] = [];
    const spy = vi.spyOn(console, 'error').mockImplementation((...args: unknown[]) => void warnings.push(args));
    try {
      const { lastFrame, rerender } = render(<StepPanel explanation={twice} keys={keys} />);
      rerender(<StepPanel explanation={{ ...twice, talosctl: [list] }} keys={keys} />);
      rerender(<StepPanel explanation={twice} keys={keys} />);
      const byHand = (lastFrame() ?? '').split('\n').filter((l) => l.includes('by hand: '));
      expect(
        byHand.map((l) =>
          l
            .replace(/.*by hand: /, '')
            .replace(/│/g, '')
            .trim(),
        ),
      ).toEqual(twice.talosctl);
      expect(warnings).toEqual([]);
    } finally {
      spy.mockRestore();
    }
  });
});

describe('TransferProgress', () => {
  it('shows a bar with bytes, rate and ETA', () => {
    const f = renderToString(
      <TransferProgress
        transfer={{
          label: 'Uploading snapshot to 127.0.0.2',
          bytes: 4 * 1024 * 1024,
          total: 8 * 1024 * 1024,
          startedAt: NOW - 2000,
        }}
        now={NOW}
        width={80}
      />,
      { columns: 80 },
    );
    expect(f).toContain('Uploading snapshot to 127.0.0.2');
    expect(f).toMatch(/█+░+\s+50%/);
    expect(f).toContain('4.0 MiB / 8.0 MiB  2.0 MiB/s  ETA 0:02');
  });

  it('shows bytes and rate when the total is unknown', () => {
    const f = renderToString(
      <TransferProgress transfer={{ label: 'Downloading', bytes: 2048, startedAt: NOW - 1000 }} now={NOW} width={80} />,
    );
    expect(f).toContain('2.0 KiB so far  2.0 KiB/s');
    expect(f).not.toContain('ETA');
  });
});

describe('WaitSpinner', () => {
  it('says what is awaited, for how long and the latest state, without animation off a terminal', () => {
    const { lastFrame } = render(
      <WaitSpinner
        wait={{
          awaiting: "every node's etcd to reach Preparing",
          latest: '127.0.0.3 Waiting: time not in sync',
          since: NOW - 65_000,
        }}
        now={NOW}
        animate={false}
      />,
    );
    expect(lastFrame()).toBe(
      "… Waiting for every node's etcd to reach Preparing (1:05)\n  latest: 127.0.0.3 Waiting: time not in sync",
    );
  });
});

describe('HelpOverlay and QuitNotice', () => {
  it('lists the keys and says that quitting is safe and how to resume', () => {
    const f = renderToString(
      <HelpOverlay keys={[{ key: 'Enter', does: 'continue' }]} incidentDir="./talos-dr-prod-20261124T031200Z" />,
      { columns: 100 },
    );
    expect(f).toContain('Enter continue');
    expect(f).toContain('Ctrl-C same as q');
    expect(f).toContain('talos-dr resume ./talos-dr-prod-20261124T031200Z');
  });

  it('after q, names the folder and the exact resume command', () => {
    const f = renderToString(<QuitNotice incidentDir="/tmp/inc" stoppedAt="step 6 of 9: Prepare nodes" />);
    expect(f).toContain('Stopped at step 6 of 9: Prepare nodes. Your progress is saved in /tmp/inc.');
    expect(f).toMatch(/To continue:\n *talos-dr resume \/tmp\/inc(\n|$)/);
  });
});

describe('Summary', () => {
  it('ends a drill with the score and then the outcome line as its last line', () => {
    const f = renderToString(
      <Summary
        outcome={{ kind: 'recovered' }}
        incidentDir="/tmp/inc"
        followUp={['Restart kubelets and controllers.', 'Run talosctl health.']}
        score={{
          scenario: 'lost-quorum',
          timeToRecoverMs: 184_000,
          timeLimitSec: 900,
          dataLost: 'none',
          mistakesStopped: ['typed 127.0.0.3 to wipe 127.0.0.2'],
        }}
      />,
      { columns: 80 },
    );
    expect(f).toContain('✓ etcd recovered');
    expect(f).toContain('time to recover: 3 min 4 s (limit 15 min 0 s)');
    expect(f).toContain('data lost: none');
    expect(f).toContain('mistakes the guards stopped: 1');
    expect(f).toContain('  • Run talosctl health.');
    expect(f.trimEnd().split('\n').at(-1)).toBe('outcome: recovered');
  });

  it('gives the reason of a failure in the outcome line', () => {
    const f = renderToString(
      <Summary outcome={{ kind: 'failed', reason: '127.0.0.3 still Waiting: time not in sync' }} incidentDir="/x" />,
    );
    expect(f).toContain('✗ The recovery did not finish.');
    expect(f.trimEnd().split('\n').at(-1)).toBe('outcome: failed: 127.0.0.3 still Waiting: time not in sync');
  });
});
