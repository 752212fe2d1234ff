/**
 * Node-controlled text (issue 18, item 10): escape sequences, controls and bidi overrides are stripped before the text
 * is shown, journalled or reported, and its length is bounded. The journal and the report are checked as files.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { nodeText } from '../../src/text/sanitize.js';
import { Journal, readJournal } from '../../src/journal/journal.js';
import { renderReport } from '../../src/journal/report.js';

// eslint-disable-next-line no-control-regex
const UNSAFE_BUT_NEWLINE = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/;

describe('nodeText', () => {
  it.each([
    ['CSI: clear screen, home, colour', '\u001b[2J\u001b[H\u001b[1;31mfailed\u001b[0m', 'failed'],
    ['OSC window title ended by BEL', 'a\u001b]0;pwned\u0007b', 'ab'],
    ['OSC hyperlink ended by ST', 'x\u001b]8;;http://evil\u001b\\link\u001b]8;;\u001b\\y', 'xlinky'],
    ['C1 CSI', 'ok\u009b2Jdone', 'okdone'],
    ['carriage return hiding a warning', 'WARNING: data loss\rall good        ', 'WARNING: data loss all good        '],
    ['line breaks and tabs', 'one\ntwo\r\nthree\tfour\u2028five', 'one two three four five'],
    ['bidi override', 'abc\u202edcba\u202c', 'abcdcba'],
    ['NUL, BEL, DEL', 'a\u0000b\u0007c\u007fd', 'abcd'],
    ['lone surrogate', 'a\ud800b', 'a\ufffdb'],
    ['plain text and non-Latin scripts are kept', 'nœud 10.0.0.2 — ノード ✓', 'nœud 10.0.0.2 — ノード ✓'],
  ])('%s', (_name, input, expected) => {
    expect(nodeText(input)).toBe(expected);
  });

  it('bounds the length, with an ellipsis, never splitting a surrogate pair', () => {
    expect(nodeText('x'.repeat(10_000))).toHaveLength(500);
    expect(nodeText('x'.repeat(10_000), 20)).toBe(`${'x'.repeat(19)}…`);
    const cut = nodeText(`${'x'.repeat(18)}😀😀😀`, 20);
    expect(cut).toBe(`${'x'.repeat(18)}…`);
  });
});

describe('the journal and the report', () => {
  it('keep no escape sequence or control a node sent, and stay one line per entry', () => {
    const dir = mkdtempSync(join(tmpdir(), 'talos-dr-sanitize-'));
    const journal = new Journal(dir);
    const hostile = '\u001b[2J\u001b[Hetcd healthy\r\n\u001b]0;x\u0007\u202eevil';
    journal.append({ kind: 'session', what: 'drill started', by: 'trainee' });
    journal.append({ kind: 'action', phase: 'after', what: 'reset', node: hostile, ok: false, result: hostile });
    journal.append({ kind: 'warning', what: 'warning', result: hostile, data: { hostname: hostile } });
    journal.close();
    for (const r of readJournal(dir)) expect(JSON.stringify(r)).not.toMatch(/\\u00|\\u20|\\[nrt]/);
    const report = renderReport(dir);
    // the report is markdown: its own line breaks stay, nothing else below U+0020
    expect(report).not.toMatch(UNSAFE_BUT_NEWLINE);
    expect(report).toContain('etcd healthy');
    // a journal written before this check (or edited by hand) is cleaned when rendered
    const raw = renderReport(dir, [{ t: new Date().toISOString(), kind: 'warning', what: 'w', result: hostile }]);
    expect(raw).not.toMatch(UNSAFE_BUT_NEWLINE);
    expect(readFileSync(join(dir, 'journal.jsonl'), 'utf8').split('\n').filter(Boolean)).toHaveLength(3);
  });
});
