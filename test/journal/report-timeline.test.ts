/**
 * Issue 17, the report an SRE pastes into the review: a timeline (detection → assessment → snapshot → restore →
 * healthy, with durations, stops and resumes), and each step's time split into the machine's and the time its
 * questions waited for a person (journalled with each answer by the session).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderReport } from '../../src/journal/report.js';
import type { JournalRecord } from '../../src/journal/journal.js';

const T0 = Date.parse('2026-12-03T01:00:00Z');
const at = (s: number) => new Date(T0 + s * 1000).toISOString();
const step = (s: number, n: number, name: string, verb: string, result?: string): JournalRecord => ({
  t: at(s),
  kind: 'step',
  step: name,
  what: `step ${n} ${verb}`,
  ...(result ? { result } : {}),
});

const JOURNAL: JournalRecord[] = [
  { t: at(0), kind: 'session', what: 'recover started', by: 'alice' },
  step(2, 1, 'connect', 'started'),
  step(4, 1, 'connect', 'done', '3 of 3 answered'),
  {
    t: at(34),
    kind: 'confirmation',
    what: 'Recover etcd on these nodes?',
    by: 'alice',
    result: 'answered yes',
    data: { waitedMs: 30_000 },
  },
  step(35, 2, 'assess', 'started'),
  step(40, 2, 'assess', 'done', 'quorum lost'),
  step(40, 3, 'snapshot', 'started'),
  // the source question stood on screen 90 s of the step's 100 s
  {
    t: at(130),
    kind: 'confirmation',
    what: 'Where should the snapshot come from?',
    by: 'alice',
    result: 'chose "take a consistent snapshot"',
    data: { waitedMs: 90_000 },
  },
  {
    t: at(135),
    kind: 'confirmation',
    what: 'stop',
    by: 'alice',
    result: 'stopped (q): the recovery can be resumed',
    data: { waitedMs: 1000 },
  },
  { t: at(600), kind: 'session', what: 'recover resumed', by: 'bob' },
  step(602, 3, 'snapshot', 'started'),
  step(610, 3, 'snapshot', 'done', 'revision 185'),
  step(700, 8, 'bootstrap', 'started'),
  // the typed address for the upload stood on screen 45 s of the step's 60 s
  {
    t: at(750),
    kind: 'confirmation',
    what: 'Upload the snapshot to 127.0.0.2',
    node: '127.0.0.2',
    by: 'bob',
    result: 'typed 127.0.0.2',
    data: { waitedMs: 45_000 },
  },
  step(760, 8, 'bootstrap', 'done', 'bootstrapped'),
  step(760, 9, 'verify', 'started'),
  step(800, 9, 'verify', 'done', 'healthy'),
  { t: at(801), kind: 'outcome', what: 'outcome', result: 'recovered', by: 'bob' },
];

describe('report.md timeline and step times', () => {
  const text = renderReport(mkdtempSync(join(tmpdir(), 'talos-dr-report-')), JOURNAL);

  it('a timeline from detection to healthy, with the time since the point before, stops and resumes included', () => {
    const timeline = text.slice(text.indexOf('## Timeline'), text.indexOf('## Steps'));
    const labels = timeline
      .split('\n')
      .filter((l) => l.startsWith('- '))
      .map((l) => l.replace(/^- \S+ \S+ UTC — /, ''));
    expect(labels).toEqual([
      'the tool started (detection)',
      'assessment started (+35 s)',
      'outage assessed (+5 s)',
      'stopped by alice (+1 min 35 s)',
      'recover resumed (by bob) (+7 min 45 s)',
      'snapshot verified (+10 s)',
      'restored (bootstrap answered) (+2 min 30 s)',
      'healthy (verified) (+40 s)',
      'ended: recovered (+1 s)',
    ]);
  });

  it("each step's duration is split into the machine's time and the time waiting for a person", () => {
    expect(text).toContain('| step | started | duration | status | result | machine | waiting for a person |');
    expect(text).toMatch(/\| 8\. bootstrap \| [^|]+ \| 1 min 0 s \| done \| bootstrapped \| 15 s \| 45 s \|/);
    // a step cut by the stop has no end to split
    expect(text).toMatch(/\| 3\. snapshot \| [^|]+ \| interrupted \| [^|]+ \| [^|]* \| — \| — \|/);
    expect(text).toMatch(/\| 3\. snapshot \| [^|]+ \| 8 s \| done \| revision 185 \| 8 s \| 0 s \|/);
    expect(text).toMatch(/\| 9\. verify \| [^|]+ \| 40 s \| done \| healthy \| 40 s \| 0 s \|/);
  });
});
