/**
 * A state.json that parses but is wrongly shaped (issue 18, item 7) crashed `resume` with an unexpected error that
 * recommended `resume`. It is said to be damaged, with what the journal still allows: the report, and a new run that
 * reads the cluster afresh.
 */
import { mkdtempSync, readFileSync, writeFileSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { journalReaches, runCli, sent, start } from './crash-helpers.js';

type Json = Record<string, unknown>;

let stopped = '';
beforeAll(async () => {
  // a real drill's incident folder, stopped by the user after the snapshot was taken
  stopped = join(mkdtempSync(join(tmpdir(), 'talos-dr-shape-')), 'incident');
  const run = start(['drill', '--autopilot', '--scenario', 'lost-quorum', '--dir', stopped]);
  expect(await journalReaches(stopped, run, sent('snapshot:'))).toBe(true);
  run.child.kill('SIGINT');
  expect((await run.done).code).toBe(3);
}, 90_000);

const DAMAGE: [string, (s: Json) => void, RegExp][] = [
  [
    'steps is text',
    (s) => (((s.snapshot as Json).context as Json).steps = 'x'),
    /snapshot\.context\.steps is not a list/,
  ],
  ['nodes is a number', (s) => (s.nodes = 5), /nodes is not a list/],
  ['the context is gone', (s) => delete (s.snapshot as Json).context, /snapshot\.context is missing/],
  [
    'a step is null',
    (s) => ((((s.snapshot as Json).context as Json).steps as unknown[])[1] = null),
    /step 2 is not an object/,
  ],
  ['the snapshot is a list', (s) => (s.snapshot = []), /snapshot is not an object/],
  ['the status is unknown', (s) => ((s.snapshot as Json).status = 42), /snapshot\.status is not a machine status/],
];

describe('resume with a state.json that parses but is wrongly shaped', () => {
  for (const [name, damage, said] of DAMAGE) {
    it(`${name}: said to be damaged, with what the journal still allows`, async () => {
      const dir = join(mkdtempSync(join(tmpdir(), 'talos-dr-shape-')), 'incident');
      cpSync(stopped, dir, { recursive: true });
      const state = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')) as Json;
      damage(state);
      writeFileSync(join(dir, 'state.json'), JSON.stringify(state));
      const r = await runCli(['resume', dir]);
      expect(r.code).toBe(1);
      const sentence = r.stderr.trim();
      expect(sentence.split('\n')).toHaveLength(1);
      expect(sentence).toMatch(said);
      expect(sentence).toContain(`${join(dir, 'state.json')} is damaged`);
      expect(sentence).toContain(`"talos-dr report ${dir}"`);
      expect(sentence).toContain('a new "talos-dr drill"');
      expect(sentence).not.toMatch(/unexpected|talos-dr resume/);
    }, 60_000);
  }
});
