/**
 * Issue 16, freshness before anything is wiped, over the real wire: etcd is down on every node (the members' raw
 * copies are read at step 3) and last night's snapshot file is at hand, 40 revisions behind the newest member. Choosing
 * that file after the raw copies says how much newer the live data is (on screen, in the journal) and makes restoring
 * it an explicit decision: "no" goes back to the choice with the file marked, "yes" goes on with a warning that stays
 * on screen up to the upload. Before: the file was used with no word about the members' newer data.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { waitFor } from 'xstate';
import { readJournal } from '../../src/journal/journal.js';
import type { Session } from '../../src/wizard/session.js';
import { closeGrounds, startGround, startSessionOn } from '../drill/harness.js';

const scratch = mkdtempSync(join(tmpdir(), 'talos-dr-older-'));
afterAll(async () => {
  await closeGrounds();
  rmSync(scratch, { recursive: true, force: true });
});

/** etcd-down-raw-copy with last night's snapshot in given/: 40 revisions behind the newest member (cp-2). */
function withNightlySnapshot(): string {
  const shipped = readFileSync(join(import.meta.dirname, '../../scenarios/etcd-down-raw-copy.yaml'), 'utf8');
  const file = join(scratch, 'etcd-down-with-nightly.yaml');
  writeFileSync(
    file,
    shipped
      .replace(/^name: .*$/m, 'name: etcd-down-with-nightly')
      .replace(
        /^given:\n {2}configs: .*$/m,
        (given) => `${given}\n  snapshot: { name: etcd-nightly.snapshot, revisionsBehind: 40, ageMinutes: 540 }`,
      ),
  );
  return file;
}

async function prompt(session: Session, id: string) {
  const snap = await waitFor(session.actor, (s) => s.context.prompt?.id === id || s.status === 'done', {
    timeout: 20_000,
  });
  if (!snap.context.prompt) throw new Error(`no prompt ${id}; outcome ${snap.context.outcome}`);
  return snap.context.prompt;
}

/** Up to the older-snapshot question: the raw copies read (skip-hash-check refused), then the nightly file chosen. */
async function chooseNightlyAfterRawCopies() {
  const g = await startGround(withNightlySnapshot());
  const session = startSessionOn(g);
  const { actor } = session;
  await prompt(session, 'confirm-nodes');
  actor.send({ type: 'answer.yes' });
  const source = await prompt(session, 'snapshot-source');
  expect(source.recommended).toEqual({ type: 'choose', option: 'raw:every-member' });
  actor.send({ type: 'choose', option: 'raw:every-member' });
  await prompt(session, 'skip-hash-check');
  actor.send({ type: 'answer.no' });
  const again = await prompt(session, 'snapshot-source');
  const nightly = again.options?.find((o) => o.id.startsWith('file:') && o.id.endsWith('etcd-nightly.snapshot'));
  expect(nightly).toBeDefined();
  actor.send({ type: 'choose', option: nightly?.id as string });
  const older = await prompt(session, 'older-snapshot');
  return { g, session, older, nightly: nightly?.id as string };
}

describe('a snapshot older than the live data is an explicit decision', () => {
  it('says how much newer the live data is; "no" goes back to the choice and the file is not used', async () => {
    const { g, session, older, nightly } = await chooseNightlyAfterRawCopies();
    const cp2 = g.sim.nodes[1] as string;
    expect(older.kind).toBe('acknowledge');
    expect(older.detail).toMatch(
      new RegExp(
        `^The live data is newer than the snapshot: ${cp2.replace(/\./g, '\\.')} holds revision \\d+ in a raw copy of its database, 40 revisions past the snapshot's \\d+, taken 9 h( \\d+ min)? ago; restoring it loses those writes\\.$`,
      ),
    );
    expect(older.risk).toMatch(/^The 40 revisions written after it are lost for good/);
    // what autopilot would answer: not the older file
    expect(older.recommended).toEqual({ type: 'answer.no' });
    session.actor.send({ type: 'answer.no' });
    const back = await prompt(session, 'snapshot-source');
    expect(back.options?.some((o) => o.id === nightly)).toBe(false);
    const marked = session.actor.getSnapshot().context.snapshotOptions.find((o) => o.id === nightly);
    expect(marked?.failed).toBe(`older than the data on ${cp2}: not chosen`);
    const journal = readJournal(g.incident.dir);
    expect(journal.some((r) => r.kind === 'warning' && /freshness of .*etcd-nightly.*: older/.test(r.what))).toBe(true);
    expect(journal.some((r) => r.kind === 'confirmation' && /although a member holds newer data/.test(r.what))).toBe(
      true,
    );
    // nothing was wiped
    expect(Object.values(g.sim.destructiveCalls().reset).every((n) => n === 0)).toBe(true);
  }, 60_000);

  it('accepted with a reason: journalled, and the warning stays on screen for the upload', async () => {
    const { g, session } = await chooseNightlyAfterRawCopies();
    session.actor.send({ type: 'acknowledge', reason: 'the members disks are failing; last night is what we trust' });
    await waitFor(session.actor, (s) => s.matches({ procedure: 'backup' }) || s.status === 'done', {
      timeout: 20_000,
    });
    const context = session.actor.getSnapshot().context;
    expect(context.snapshot?.file).toMatch(/given-etcd-nightly\.snapshot$/);
    expect(context.warnings.at(-1)).toMatch(/^The live data is newer than the snapshot: .* 40 revisions past/);
    const confirmation = readJournal(g.incident.dir).find(
      (r) => r.kind === 'confirmation' && /although a member holds newer data/.test(r.what),
    );
    expect(JSON.stringify(confirmation)).toContain('last night is what we trust');
  }, 60_000);
});
