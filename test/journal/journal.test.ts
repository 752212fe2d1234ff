import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  Journal,
  createIncidentDir,
  defaultIncidentDir,
  ledgerState,
  newestIncidentDir,
  readJournal,
  readState,
  renderReport,
  writeState,
  type JournalRecord,
} from '../../src/journal/index.js';
import { UserError } from '../../src/errors.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'talos-dr-journal-'));
const mode = (p: string) => statSync(p).mode & 0o777;

describe('incident folder', () => {
  it('is created 0700 with snapshots/ and configs/, named after the context and UTC time', () => {
    const dir = defaultIncidentDir(tmp(), 'prod cluster', new Date('2026-11-24T01:02:03.456Z'));
    expect(dir).toMatch(/talos-dr-prod_cluster-20261124T010203Z$/);
    const paths = createIncidentDir(dir);
    expect(mode(paths.dir)).toBe(0o700);
    expect(mode(paths.snapshots)).toBe(0o700);
    expect(mode(paths.configs)).toBe(0o700);
  });

  it('never writes a new incident into a folder that already holds files', () => {
    const dir = tmp();
    writeFileSync(join(dir, 'evidence.txt'), 'keep me');
    let caught: unknown;
    try {
      createIncidentDir(dir);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(UserError);
    expect((caught as UserError).exitCode).toBe(2);
    expect((caught as UserError).message).toMatch(/talos-dr resume/);
    expect(readFileSync(join(dir, 'evidence.txt'), 'utf8')).toBe('keep me');
  });

  it('resume finds the newest incident folder that has a state.json', () => {
    const cwd = tmp();
    for (const stamp of ['20261124T010000Z', '20261124T020000Z', '20261124T030000Z']) {
      const d = join(cwd, `talos-dr-ctx-${stamp}`);
      mkdirSync(d);
      if (stamp !== '20261124T030000Z') writeState(d, { mode: 'recover', nodes: [], snapshot: {} });
    }
    expect(newestIncidentDir(cwd)).toBe(join(cwd, 'talos-dr-ctx-20261124T020000Z'));
    expect(newestIncidentDir(tmp())).toBeNull();
  });
});

describe('journal.jsonl', () => {
  it('appends records that read back in order, file mode 0600', () => {
    const dir = tmp();
    const j = new Journal(dir);
    j.append({ kind: 'step', what: 'step 1 started', step: 'connect' });
    j.append({ kind: 'confirmation', what: 'wipe 10.0.0.2', by: 'alice', node: '10.0.0.2', result: 'typed 10.0.0.2' });
    j.close();
    const records = readJournal(dir);
    expect(records.map((r) => r.what)).toEqual(['step 1 started', 'wipe 10.0.0.2']);
    expect(records[1]).toMatchObject({ by: 'alice', node: '10.0.0.2' });
    expect(Date.parse(records[0]!.t)).not.toBeNaN();
    expect(mode(join(dir, 'journal.jsonl'))).toBe(0o600);
  });

  it('keeps secrets out: PEM blocks, machine configurations and secret-named fields are withheld', () => {
    const dir = tmp();
    const j = new Journal(dir);
    j.append({
      kind: 'observation',
      what: 'config',
      result: '-----BEGIN ED25519 PRIVATE KEY-----\nabc\n-----END ED25519 PRIVATE KEY-----',
      data: {
        key: 'c2VjcmV0',
        nested: { token: 'abcdef.0123456789abcdef' },
        yaml: 'version: v1alpha1\nmachine:\n  type: controlplane',
      },
    });
    const text = readFileSync(join(dir, 'journal.jsonl'), 'utf8');
    expect(text).not.toMatch(/BEGIN|c2VjcmV0|0123456789abcdef|type: controlplane/);
    expect(text).toContain('[withheld');
  });

  it('skips a line torn by a crash mid-append and keeps everything before it', () => {
    const dir = tmp();
    new Journal(dir).append({ kind: 'step', what: 'step 1 started' });
    appendFileSync(join(dir, 'journal.jsonl'), '{"t":"2026-11-24T00:00:00Z","kind":"act');
    expect(readJournal(dir).map((r) => r.what)).toEqual(['step 1 started']);
  });

  it('the ledger tells a sent-but-unanswered action from a finished or failed one', () => {
    const rec = (phase: 'before' | 'after', ok?: boolean): JournalRecord => ({
      t: '2026-11-24T00:00:00Z',
      kind: 'action',
      phase,
      opId: 'reset:a:0',
      what: 'reset',
      ...(ok === undefined ? {} : { ok }),
    });
    expect(ledgerState([], 'reset:a:0')).toBe('new');
    expect(ledgerState([rec('before')], 'reset:a:0')).toBe('interrupted');
    expect(ledgerState([rec('before'), rec('after', true)], 'reset:a:0')).toBe('done');
    expect(ledgerState([rec('before'), rec('after', false)], 'reset:a:0')).toBe('new');
    expect(ledgerState([rec('before')], 'reset:b:0')).toBe('new');
  });
});

describe('state.json', () => {
  it('round-trips the persisted machine in a versioned envelope, mode 0600', () => {
    const dir = tmp();
    const snapshot = {
      status: 'active',
      value: 'x',
      context: {
        nodes: ['127.0.0.2'],
        steps: [{ n: 1, name: 'connect', status: 'done' }],
        rows: {},
        startedAt: 1,
        prompt: null,
      },
    };
    writeState(dir, { mode: 'drill', scenario: 'lost-quorum', nodes: ['127.0.0.2'], snapshot });
    const r = readState(dir);
    expect(r.ok).toBe(true);
    if (r.ok)
      expect(r.envelope).toMatchObject({
        v: 1,
        kind: 'talos-dr-state',
        scenario: 'lost-quorum',
        snapshot: { value: 'x' },
      });
    expect(mode(join(dir, 'state.json'))).toBe(0o600);
  });

  it('refuses a missing, foreign, unreadable or other-version file with a reason', () => {
    const dir = tmp();
    expect(readState(dir)).toMatchObject({ ok: false, reason: expect.stringMatching(/nothing to resume/) });
    writeFileSync(join(dir, 'state.json'), '{not json');
    expect(readState(dir)).toMatchObject({ ok: false, reason: expect.stringMatching(/not readable JSON/) });
    writeFileSync(join(dir, 'state.json'), '{"v":1}');
    expect(readState(dir)).toMatchObject({ ok: false, reason: expect.stringMatching(/not written by talos-dr/) });
    writeFileSync(join(dir, 'state.json'), '{"v":99,"kind":"talos-dr-state"}');
    expect(readState(dir)).toMatchObject({ ok: false, reason: expect.stringMatching(/another talos-dr version/) });
  });
});

describe('report.md', () => {
  const t = (s: number) => new Date(Date.UTC(2026, 10, 24, 3, 0, s)).toISOString();
  const records: JournalRecord[] = [
    { t: t(0), kind: 'session', what: 'recovery of context prod started', by: 'alice' },
    { t: t(1), kind: 'step', step: 'assess', what: 'step 2 started' },
    {
      t: t(4),
      kind: 'decision',
      step: 'assess',
      what: 'quorum verdict: lost',
      result: 'Quorum is lost: 0 of 3 healthy.',
    },
    { t: t(5), kind: 'step', step: 'assess', what: 'step 2 done', result: 'quorum lost' },
    {
      t: t(20),
      kind: 'observation',
      what: 'snapshot api /x/etcd.snapshot',
      result: 'usable, integrity verified',
      data: { file: '/x/etcd.snapshot', revision: 4193, totalKeys: 1287, sha256: 'ab'.repeat(32), takenAt: t(10) },
    },
    { t: t(30), kind: 'confirmation', what: 'Wipe 10.0.0.3?', node: '10.0.0.3', by: 'alice', result: 'typed 10.0.0.3' },
    { t: t(31), kind: 'override', what: 'full recovery', by: 'alice', result: 'status lies, node 2 is dead' },
    {
      t: t(32),
      kind: 'action',
      phase: 'after',
      opId: 'reset:10.0.0.3:0',
      node: '10.0.0.3',
      what: 'reset EPHEMERAL',
      ok: true,
    },
    { t: t(95), kind: 'outcome', what: 'outcome', result: 'recovered' },
  ];

  it('renders the timeline: assessment, step durations, confirmations, snapshot revision and age, time to recovery', () => {
    const md = renderReport('/x', records);
    expect(md).toContain('Outage assessed: 2026-11-24 03:00:04 UTC');
    expect(md).toMatch(/\| 2\. assess \| 2026-11-24 03:00:01 UTC \| 4 s \| done \| quorum lost \|/);
    expect(md).toContain('revision 4193, 1287 keys, 10 s old when chosen');
    expect(md).toContain('Wipe 10.0.0.3? [10.0.0.3] → typed 10.0.0.3 (by alice)');
    expect(md).toContain('**override** of full recovery, reason: "status lies, node 2 is dead"');
    expect(md).toContain('Outcome: **recovered**');
    // no state.json here: the machine's time to recover is not known, the journal's span is
    expect(md).toContain('Total time: 1 min 35 s');
    expect(md).toContain('talosctl health');
  });

  it('an unfinished incident says how to continue', () => {
    expect(renderReport('/x', records.slice(0, 4))).toContain('talos-dr resume /x');
  });

  it('`talos-dr report DIR` prints it and writes report.md; a folder that is not an incident gets one sentence', () => {
    const dir = tmp();
    const j = new Journal(dir);
    for (const r of records) j.append(r);
    const cli = join(process.cwd(), 'dist', 'src', 'cli.js');
    const ok = spawnSync(process.execPath, [cli, 'report', dir], { encoding: 'utf8' });
    expect(ok.status).toBe(0);
    expect(ok.stdout).toContain('# talos-dr incident report');
    expect(readFileSync(join(dir, 'report.md'), 'utf8')).toBe(ok.stdout);
    const bad = spawnSync(process.execPath, [cli, 'report', tmp()], { encoding: 'utf8' });
    expect(bad.status).toBe(1);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toMatch(/not an incident folder/);
  });
});
