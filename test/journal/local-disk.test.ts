/**
 * Local I/O failures (issue 18, item 8) were reported as "continue with resume", and a local write failure during the
 * config backup was taken as the node's failure, so every live config was replaced by the older given/ backups. A
 * local write failure stops the procedure with a sentence about the local disk and never changes a decision about the
 * cluster.
 */
import { mkdtempSync, readFileSync, rmdirSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Journal, readJournal } from '../../src/journal/journal.js';
import { LocalDiskError } from '../../src/journal/local-disk.js';
import { journalReaches, start, started } from './crash-helpers.js';

describe('a local disk failure', () => {
  it('during the config backup stops the drill with the disk sentence; no given/ backup replaces a live config', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'talos-dr-localdisk-')), 'incident');
    const run = start(['drill', '--autopilot', '--scenario', 'lost-quorum', '--dir', dir]);
    expect(await journalReaches(dir, run, started(1))).toBe(true);
    // the backups' folder becomes unusable (as a folder deleted or replaced under the run would be)
    rmdirSync(join(dir, 'configs'));
    writeFileSync(join(dir, 'configs'), '');
    const r = await run.done;
    expect(r.code).toBe(1);
    const sentence = r.stderr.trim();
    expect(sentence.split('\n')).toHaveLength(1);
    expect(sentence).toMatch(
      /^The local disk failed while backing up the machine configurations: a part of the path is not a folder for .*configs\/.* on the disk /,
    );
    expect(sentence).toContain('nothing about the cluster was decided from this failure');
    expect(sentence).not.toContain('unexpected');
    const journal = readJournal(dir);
    // no backup was taken from given/, and nothing was sent after the snapshot (which came before the backup)
    const sentAfter = journal.filter(
      (j) => j.kind === 'action' && j.phase === 'before' && !j.opId?.startsWith('snapshot:'),
    );
    expect(sentAfter).toEqual([]);
    expect(journal.some((j) => /given/.test(`${j.what} ${j.result ?? ''}`))).toBe(false);
    // the journal says why the run stopped, in the same sentence
    expect(journal.at(-1)).toMatchObject({ kind: 'warning', what: 'local disk failure', result: sentence });
    const sim = JSON.parse(readFileSync(join(dir, 'sim-state.json'), 'utf8')) as {
      nodes: { calls: { reset: number; bootstrap: number } }[];
    };
    for (const n of sim.nodes) expect(n.calls.reset + n.calls.bootstrap).toBe(0);
  }, 90_000);

  it('of the journal is a LocalDiskError naming the journal, its folder and the disk', () => {
    const dir = mkdtempSync(join(tmpdir(), 'talos-dr-localdisk-'));
    const incident = join(dir, 'incident');
    mkdirSync(incident);
    const journal = new Journal(incident);
    rmSync(incident, { recursive: true });
    let error: unknown;
    try {
      journal.append({ kind: 'step', what: 'step 1 started' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(LocalDiskError);
    expect((error as Error).message).toMatch(
      /^The local disk failed while writing the journal: the folder no longer exists for .*incident\/journal\.jsonl on the disk /,
    );
  });
});
